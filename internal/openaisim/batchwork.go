package openaisim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
)

// batchSalt separates the draws of batch requests from those of the
// synchronous endpoints.
const batchSalt = 0x6261746368

// batchCounters count the requests answered by batches, apart from the
// synchronous endpoints.
type batchCounters struct {
	batches, requests, failed      atomic.Int64
	promptTokens, completionTokens atomic.Int64
}

// batchLine is one request of a batch input file.
type batchLine struct {
	CustomID string          `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// batchResult is one line of a batch output or error file.
type batchResult struct {
	ID       string         `json:"id"`
	CustomID string         `json:"custom_id"`
	Response *batchResponse `json:"response"`
	Error    *batchLineErr  `json:"error"`
}

type batchResponse struct {
	StatusCode int    `json:"status_code"`
	RequestID  string `json:"request_id"`
	Body       any    `json:"body"`
}

type batchLineErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func lineError(line int, code, param, format string, args ...any) batchErrorItem {
	return batchErrorItem{Code: code, Message: fmt.Sprintf(format, args...), Param: optional(param), Line: &line}
}

// parseBatchInput splits a JSONL input file into requests for endpoint and
// returns the validation errors that fail the whole batch.
func parseBatchInput(data []byte, endpoint string, maxRequests int) ([]batchLine, []batchErrorItem) {
	var lines []batchLine
	var errs []batchErrorItem
	seen := make(map[string]bool)
	for i, raw := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		n := i + 1
		if len(lines)+len(errs) == maxRequests {
			return nil, []batchErrorItem{{Code: "too_many_requests", Message: fmt.Sprintf("The batch input file has more than the maximum of %d requests.", maxRequests)}}
		}
		var l batchLine
		switch err := json.Unmarshal(raw, &l); {
		case err != nil:
			errs = append(errs, lineError(n, "invalid_json_line", "", "This line is not parseable as valid JSON."))
		case l.CustomID == "":
			errs = append(errs, lineError(n, "missing_required_parameter", "custom_id", "Missing required parameter: 'custom_id'."))
		case seen[l.CustomID]:
			errs = append(errs, lineError(n, "duplicate_custom_id", "custom_id", "The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each individual request in a batch."))
		case l.Method != http.MethodPost:
			errs = append(errs, lineError(n, "invalid_method", "method", "The method %q is not supported. Only POST is supported.", l.Method))
		case l.URL != endpoint:
			errs = append(errs, lineError(n, "invalid_url", "url", "The URL provided for this request does not match the batch endpoint %s.", endpoint))
		default:
			lines = append(lines, l)
		}
		if l.CustomID != "" {
			seen[l.CustomID] = true
		}
	}
	if len(lines) == 0 && len(errs) == 0 {
		errs = append(errs, batchErrorItem{Code: "empty_file", Message: "The batch input file is empty."})
	}
	return lines, errs
}

// runBatch validates the input of b and answers its requests until ctx
// ends or the configured expiry stops it.
func (s *Server) runBatch(ctx context.Context, b *batchState) {
	lines, errs := parseBatchInput(b.input, b.obj.Endpoint, s.cfg.Batch.maxRequests())
	s.store.mu.Lock()
	b.input = nil
	if b.obj.Status != BatchValidating {
		s.store.mu.Unlock()
		return
	}
	now := unix(s.now())
	if len(errs) > 0 {
		b.obj.Status, b.obj.FailedAt = BatchFailed, now
		b.obj.Errors = &batchErrors{Object: "list", Data: errs}
		s.store.mu.Unlock()
		return
	}
	b.obj.Status, b.obj.InProgressAt = BatchInProgress, now
	b.obj.RequestCounts.Total = len(lines)
	s.store.mu.Unlock()

	stop := len(lines)
	if f := s.cfg.Batch.ExpireFraction; f > 0 {
		stop = int(math.Floor(f * float64(len(lines))))
	}
	for i, l := range lines {
		if i >= stop {
			s.store.mu.Lock()
			b.expired = append(b.expired, l.CustomID)
			s.store.mu.Unlock()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		out, failed := s.answerBatchLine(b.obj.ID, i, l)
		s.store.mu.Lock()
		if failed {
			b.failures = append(b.failures, out)
			b.obj.RequestCounts.Failed++
		} else {
			b.results = append(b.results, out)
			b.obj.RequestCounts.Completed++
		}
		s.store.mu.Unlock()
	}
}

// answerBatchLine answers one request of batch id with the logic of the
// synchronous endpoint and returns its output line and whether it failed.
func (s *Server) answerBatchLine(id string, i int, l batchLine) ([]byte, bool) {
	d := draws{rng: rand.New(rand.NewPCG(s.cfg.Seed^batchSalt, hashText(id)+uint64(i)))} //nolint:gosec // Draws must be reproducible for a seed, not secret.
	reqID := requestID(d)
	status, body := http.StatusOK, any(nil)
	var rerr *requestError
	switch {
	case d.rng.Float64() < s.cfg.Batch.FailureRate:
		rerr = &requestError{status: http.StatusInternalServerError, msg: "The server had an error while processing your request. Sorry about that!"}
	case l.URL == "/v1/embeddings":
		body, rerr = s.batchEmbedding(l.Body)
	default:
		body, rerr = s.batchChat(d, l.Body, reqID)
	}
	s.batchStats.requests.Add(1)
	if rerr != nil {
		s.batchStats.failed.Add(1)
		typ := "invalid_request_error"
		if rerr.status >= http.StatusInternalServerError {
			typ = "server_error"
		}
		status = rerr.status
		body = map[string]apiError{"error": {Message: rerr.msg, Type: typ, Param: optional(rerr.param), Code: optional(rerr.code)}}
	}
	out, err := json.Marshal(batchResult{ID: "batch_req_" + strings.TrimPrefix(reqID, "req_"), CustomID: l.CustomID,
		Response: &batchResponse{StatusCode: status, RequestID: reqID, Body: body}})
	if err != nil {
		s.log.Error("encoding batch result", "batch", id, "err", err)
	}
	return out, rerr != nil
}

func (s *Server) batchEmbedding(body []byte) (any, *requestError) {
	job, rerr := s.parseEmbeddingRequest(body)
	if rerr != nil {
		return nil, rerr
	}
	s.batchStats.promptTokens.Add(int64(job.tokens))
	return s.embeddingAnswer(s.emb, job, ""), nil
}

func (s *Server) batchChat(d draws, body []byte, reqID string) (any, *requestError) {
	job, rerr := s.parseChatRequest(body)
	if rerr != nil {
		return nil, rerr
	}
	if job.stream {
		return nil, invalid("stream", "", "Streaming is not supported in batches.")
	}
	if rerr := s.refuseFormat(context.Background(), job.format); rerr != nil {
		return nil, rerr
	}
	resp := s.chatAnswer(s.chat, d, job, "", reqID)
	s.batchStats.promptTokens.Add(int64(resp.Usage.PromptTokens))
	s.batchStats.completionTokens.Add(int64(resp.Usage.CompletionTokens))
	return resp, nil
}

// advanceLocked moves b on once its worker finished: an in-progress batch
// whose completion delay passed turns finalizing (or expired), a
// finalizing one completed, and a cancelling one cancelled. The caller
// holds store.mu.
func (s *Server) advanceLocked(b *batchState) {
	select {
	case <-b.done:
	default:
		return
	}
	now := s.now()
	switch b.obj.Status {
	case BatchInProgress:
		if now.Before(b.created.Add(s.cfg.Batch.CompletionDelay)) {
			return
		}
		s.writeResultsLocked(b)
		if len(b.expired) > 0 {
			b.obj.RequestCounts.Failed += len(b.expired)
			b.obj.Status, b.obj.ExpiredAt = BatchExpired, unix(now)
			return
		}
		b.obj.Status, b.obj.FinalizingAt = BatchFinalizing, unix(now)
	case BatchFinalizing:
		b.obj.Status, b.obj.CompletedAt = BatchCompleted, unix(now)
	case BatchCancelling:
		s.writeResultsLocked(b)
		b.obj.Status, b.obj.CancelledAt = BatchCancelled, unix(now)
	}
}

// writeResultsLocked stores the output and error files of b, each in an
// order shuffled by the seed, so that clients must map lines by custom_id.
func (s *Server) writeResultsLocked(b *batchState) {
	failures := b.failures
	for _, cid := range b.expired {
		line, err := json.Marshal(batchResult{ID: s.store.newID("batch_req_", s.cfg.Seed), CustomID: cid,
			Error: &batchLineErr{Code: "batch_expired", Message: "This request could not be executed before the completion window expired."}})
		if err != nil {
			s.log.Error("encoding expired request", "batch", b.obj.ID, "err", err)
			continue
		}
		failures = append(failures, line)
	}
	rng := rand.New(rand.NewPCG(s.cfg.Seed, hashText(b.obj.ID))) //nolint:gosec // The order must be reproducible for a seed, not secret.
	for _, f := range []struct {
		lines [][]byte
		id    **string
		name  string
	}{{b.results, &b.obj.OutputFileID, "batch_output.jsonl"}, {failures, &b.obj.ErrorFileID, "batch_errors.jsonl"}} {
		if len(f.lines) == 0 {
			continue
		}
		rng.Shuffle(len(f.lines), func(i, j int) { f.lines[i], f.lines[j] = f.lines[j], f.lines[i] })
		data := append(bytes.Join(f.lines, []byte("\n")), '\n')
		id := s.addFileLocked(b.obj.ID+"_"+f.name, PurposeBatchOutput, data).ID
		*f.id = &id
	}
}
