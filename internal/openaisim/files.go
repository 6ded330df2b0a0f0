package openaisim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// File purposes the Files API accepts or creates.
const (
	PurposeBatch       = "batch"
	PurposeBatchOutput = "batch_output"
)

// fileObject is a file of the Files API.
type fileObject struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Bytes     int    `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
}

type storedFile struct {
	meta fileObject
	data []byte
}

// store holds the files and batches of a server.
type store struct {
	seq atomic.Uint64

	mu         sync.Mutex
	files      map[string]*storedFile
	fileOrder  []string
	batches    map[string]*batchState
	batchOrder []string
	// closed is set by Server.Close: batches created later stop at once.
	closed bool
}

func newStore() *store {
	return &store{files: make(map[string]*storedFile), batches: make(map[string]*batchState)}
}

// newID returns a unique identifier with prefix, reproducible for a seed.
func (st *store) newID(prefix string, seed uint64) string {
	n := st.seq.Add(1)
	return fmt.Sprintf("%s%08x%016x", prefix, n, hashText(strconv.FormatUint(seed^n, 16)))
}

// addFile stores data as a processed file and returns its object.
func (s *Server) addFile(name, purpose string, data []byte) fileObject {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return s.addFileLocked(name, purpose, data)
}

// addFileLocked is addFile for a caller holding store.mu.
func (s *Server) addFileLocked(name, purpose string, data []byte) fileObject {
	f := &storedFile{data: data, meta: fileObject{
		ID: s.store.newID("file-", s.cfg.Seed), Object: "file", Bytes: len(data), CreatedAt: s.now().Unix(),
		Filename: name, Purpose: purpose, Status: "processed",
	}}
	s.store.files[f.meta.ID] = f
	s.store.fileOrder = append(s.store.fileOrder, f.meta.ID)
	return f.meta
}

func (s *Server) file(id string) (*storedFile, bool) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	f, ok := s.store.files[id]
	return f, ok
}

// handleUploadFile serves POST /v1/files: a multipart form with the
// fields purpose and file.
func (s *Server) handleUploadFile(w http.ResponseWriter, r *http.Request) {
	limit := s.cfg.Batch.maxBytes()
	r.Body = http.MaxBytesReader(w, r.Body, limit+1<<20)
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("File is too large. The maximum size is %d bytes.", limit), "invalid_request_error", "file", "file_too_large")
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read multipart form: %v", err), "invalid_request_error", "", "")
		return
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	purpose := r.FormValue("purpose")
	if purpose != PurposeBatch {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'purpose': %q. This server accepts only 'batch'.", purpose), "invalid_request_error", "purpose", "invalid_value")
		return
	}
	part, header, err := r.FormFile("file")
	if err != nil {
		writeError(w, http.StatusBadRequest, "Missing required parameter: 'file'.", "invalid_request_error", "file", "missing_required_parameter")
		return
	}
	defer func() { _ = part.Close() }()
	data, err := io.ReadAll(io.LimitReader(part, limit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read file: %v", err), "invalid_request_error", "file", "")
		return
	}
	if int64(len(data)) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("File is too large. The maximum size is %d bytes.", limit), "invalid_request_error", "file", "file_too_large")
		return
	}
	writeJSON(w, http.StatusOK, s.addFile(header.Filename, purpose, data))
}

func (s *Server) handleGetFile(w http.ResponseWriter, r *http.Request) {
	f, ok := s.file(r.PathValue("id"))
	if !ok {
		writeNoFile(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, f.meta)
}

func (s *Server) handleFileContent(w http.ResponseWriter, r *http.Request) {
	f, ok := s.file(r.PathValue("id"))
	if !ok {
		writeNoFile(w, r.PathValue("id"))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.data)
}

func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.store.mu.Lock()
	_, ok := s.store.files[id]
	if ok {
		delete(s.store.files, id)
		for i, fid := range s.store.fileOrder {
			if fid == id {
				s.store.fileOrder = append(s.store.fileOrder[:i], s.store.fileOrder[i+1:]...)
				break
			}
		}
	}
	s.store.mu.Unlock()
	if !ok {
		writeNoFile(w, id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "file", "deleted": true})
}

// handleListFiles serves GET /v1/files, newest first, optionally only the
// files of the purpose query parameter.
func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) {
	purpose := r.URL.Query().Get("purpose")
	s.store.mu.Lock()
	data := make([]fileObject, 0, len(s.store.fileOrder))
	for i := len(s.store.fileOrder) - 1; i >= 0; i-- {
		f := s.store.files[s.store.fileOrder[i]]
		if purpose == "" || f.meta.Purpose == purpose {
			data = append(data, f.meta)
		}
	}
	s.store.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false})
}

func writeNoFile(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("No such File object: %s", id), "invalid_request_error", "id", "")
}
