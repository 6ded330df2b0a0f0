package openaisim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Batch statuses, as the real API names them.
const (
	BatchValidating = "validating"
	BatchFailed     = "failed"
	BatchInProgress = "in_progress"
	BatchFinalizing = "finalizing"
	BatchCompleted  = "completed"
	BatchExpired    = "expired"
	BatchCancelling = "cancelling"
	BatchCancelled  = "cancelled"
)

// batchCompletionWindow is the only completion window the API accepts.
const batchCompletionWindow = "24h"

type batchErrorItem struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int    `json:"line"`
}

type batchErrors struct {
	Object string           `json:"object"`
	Data   []batchErrorItem `json:"data"`
}

type requestCounts struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// batchObject is a batch of the Batch API.
type batchObject struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Endpoint         string            `json:"endpoint"`
	Errors           *batchErrors      `json:"errors"`
	InputFileID      string            `json:"input_file_id"`
	CompletionWindow string            `json:"completion_window"`
	Status           string            `json:"status"`
	OutputFileID     *string           `json:"output_file_id"`
	ErrorFileID      *string           `json:"error_file_id"`
	CreatedAt        int64             `json:"created_at"`
	InProgressAt     *int64            `json:"in_progress_at"`
	ExpiresAt        *int64            `json:"expires_at"`
	FinalizingAt     *int64            `json:"finalizing_at"`
	CompletedAt      *int64            `json:"completed_at"`
	FailedAt         *int64            `json:"failed_at"`
	ExpiredAt        *int64            `json:"expired_at"`
	CancellingAt     *int64            `json:"cancelling_at"`
	CancelledAt      *int64            `json:"cancelled_at"`
	RequestCounts    requestCounts     `json:"request_counts"`
	Metadata         map[string]string `json:"metadata"`
}

// batchState is a batch and its work; obj and the result lines are
// guarded by store.mu.
type batchState struct {
	obj     batchObject
	created time.Time
	input   []byte
	cancel  context.CancelFunc
	done    chan struct{}
	// results and failures are the output and error file lines so far;
	// expired holds the custom_ids left unanswered by an expiry.
	results, failures [][]byte
	expired           []string
}

type createBatchRequest struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata"`
}

func unix(t time.Time) *int64 {
	u := t.Unix()
	return &u
}

// handleCreateBatch serves POST /v1/batches and starts the batch's work.
func (s *Server) handleCreateBatch(w http.ResponseWriter, r *http.Request) {
	var req createBatchRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "", "")
		return
	}
	switch {
	case req.Endpoint != "/v1/embeddings" && req.Endpoint != "/v1/chat/completions":
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'endpoint': %q. Supported values are: '/v1/chat/completions' and '/v1/embeddings'.", req.Endpoint), "invalid_request_error", "endpoint", "invalid_value")
		return
	case req.CompletionWindow != batchCompletionWindow:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'completion_window': %q. Supported values are: '24h'.", req.CompletionWindow), "invalid_request_error", "completion_window", "invalid_value")
		return
	case len(req.Metadata) > 16:
		writeError(w, http.StatusBadRequest, "Invalid 'metadata': too many properties. Expected an object with at most 16 properties.", "invalid_request_error", "metadata", "object_above_max_properties")
		return
	}
	f, ok := s.file(req.InputFileID)
	if !ok {
		writeNoFile(w, req.InputFileID)
		return
	}
	if f.meta.Purpose != PurposeBatch {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("The file %s has purpose %q; a batch input file needs purpose 'batch'.", f.meta.ID, f.meta.Purpose), "invalid_request_error", "input_file_id", "invalid_value")
		return
	}
	writeJSON(w, http.StatusOK, s.startBatch(req, f))
}

// startBatch registers a validating batch for req and starts its worker.
func (s *Server) startBatch(req createBatchRequest, f *storedFile) batchObject {
	now := s.now()
	ctx, cancel := context.WithCancel(context.Background())
	b := &batchState{created: now, input: f.data, cancel: cancel, done: make(chan struct{}), obj: batchObject{
		ID: s.store.newID("batch_", s.cfg.Seed), Object: "batch", Endpoint: req.Endpoint, InputFileID: f.meta.ID,
		CompletionWindow: req.CompletionWindow, Status: BatchValidating, CreatedAt: now.Unix(),
		ExpiresAt: unix(now.Add(24 * time.Hour)), Metadata: req.Metadata,
	}}
	s.store.mu.Lock()
	s.store.batches[b.obj.ID] = b
	s.store.batchOrder = append(s.store.batchOrder, b.obj.ID)
	if s.store.closed {
		cancel()
	}
	obj := b.obj
	s.store.mu.Unlock()
	s.batchStats.batches.Add(1)
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		defer close(b.done)
		defer cancel()
		s.runBatch(ctx, b)
	}()
	return obj
}

// lookupBatch returns the current object of batch id after advancing its
// status.
func (s *Server) lookupBatch(id string) (batchObject, bool) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	b, ok := s.store.batches[id]
	if !ok {
		return batchObject{}, false
	}
	s.advanceLocked(b)
	return b.obj, true
}

func (s *Server) handleGetBatch(w http.ResponseWriter, r *http.Request) {
	obj, ok := s.lookupBatch(r.PathValue("id"))
	if !ok {
		writeNoBatch(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

// handleCancelBatch serves POST /v1/batches/{id}/cancel: a batch still
// validating or in progress turns cancelling, then cancelled once its
// worker stopped.
func (s *Server) handleCancelBatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.store.mu.Lock()
	b, ok := s.store.batches[id]
	if !ok {
		s.store.mu.Unlock()
		writeNoBatch(w, id)
		return
	}
	s.advanceLocked(b)
	switch b.obj.Status {
	case BatchValidating, BatchInProgress:
		b.obj.Status = BatchCancelling
		b.obj.CancellingAt = unix(s.now())
		b.cancel()
	case BatchCancelling:
	default:
		status := b.obj.Status
		s.store.mu.Unlock()
		writeError(w, http.StatusConflict, fmt.Sprintf("Cannot cancel a batch with status '%s'.", status), "invalid_request_error", "", "")
		return
	}
	obj := b.obj
	s.store.mu.Unlock()
	writeJSON(w, http.StatusOK, obj)
}

// handleListBatches serves GET /v1/batches, newest first, with the limit
// (1 to 100, default 20) and after (a batch id) query parameters.
func (s *Server) handleListBatches(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid 'limit': %q. Expected an integer between 1 and 100.", v), "invalid_request_error", "limit", "invalid_value")
			return
		}
		limit = n
	}
	after := q.Get("after")
	s.store.mu.Lock()
	data := make([]batchObject, 0, limit)
	hasMore, skipping := false, after != ""
	for i := len(s.store.batchOrder) - 1; i >= 0; i-- {
		id := s.store.batchOrder[i]
		if skipping {
			skipping = id != after
			continue
		}
		if len(data) == limit {
			hasMore = true
			break
		}
		b := s.store.batches[id]
		s.advanceLocked(b)
		data = append(data, b.obj)
	}
	s.store.mu.Unlock()
	resp := map[string]any{"object": "list", "data": data, "has_more": hasMore, "first_id": nil, "last_id": nil}
	if len(data) > 0 {
		resp["first_id"], resp["last_id"] = data[0].ID, data[len(data)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeNoBatch(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("No batch found with id '%s'.", id), "invalid_request_error", "", "")
}

// Close stops the workers of batches still in progress and waits for them.
// The handler must not be served after Close.
func (s *Server) Close() {
	s.store.mu.Lock()
	s.store.closed = true
	for _, b := range s.store.batches {
		b.cancel()
	}
	s.store.mu.Unlock()
	s.workers.Wait()
}
