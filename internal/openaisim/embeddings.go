package openaisim

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
)

// requestError is a 4xx answer to an invalid request.
type requestError struct {
	status int
	msg    string
	param  string
	code   string
}

func (e *requestError) Error() string { return e.msg }

func invalid(param, code, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...), param: param, code: code}
}

// embeddingRequest is the body of POST /v1/embeddings.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
	User           string          `json:"user"`
}

// embeddingJob is a validated embeddings request.
type embeddingJob struct {
	model  string
	dims   int
	native int
	base64 bool
	// texts holds the inputs; token arrays are decoded to text when their
	// ids are in the vocabulary, so they embed like the same string.
	texts  []string
	tokens int
}

// parseEmbeddingRequest decodes and validates an embeddings body like the
// real API does. lookup returns the native dimensions of a model.
func (s *Server) parseEmbeddingRequest(body []byte) (embeddingJob, *requestError) {
	var req embeddingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return embeddingJob{}, invalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	if req.Model == "" {
		return embeddingJob{}, invalid("model", "", "you must provide a model parameter")
	}
	native, ok := s.lookupEmbeddingModel(req.Model)
	if !ok {
		return embeddingJob{}, &requestError{status: http.StatusNotFound, msg: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model), param: "model", code: "model_not_found"}
	}
	job := embeddingJob{model: req.Model, native: native, dims: native}
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		job.base64 = s.cfg.Quirks.Base64 != Ignore
	default:
		return embeddingJob{}, invalid("encoding_format", "", "Invalid value for 'encoding_format': %q. Supported values are: 'float' and 'base64'.", req.EncodingFormat)
	}
	if req.Dimensions != nil && s.cfg.Quirks.Dimensions == Refuse {
		return embeddingJob{}, invalid("dimensions", "", "This model does not support specifying dimensions.")
	}
	if req.Dimensions != nil && s.cfg.Quirks.Dimensions != Ignore {
		d := *req.Dimensions
		switch {
		case req.Model == "text-embedding-ada-002":
			return embeddingJob{}, invalid("dimensions", "", "This model does not support specifying dimensions.")
		case d < 1:
			return embeddingJob{}, invalid("dimensions", "integer_below_min_value", "Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got %d instead.", d)
		case d > native:
			return embeddingJob{}, invalid("dimensions", "", "This model's maximum dimensions is %d. Please reduce the dimensions of your request.", native)
		}
		job.dims = d
	}
	inputs, rerr := decodeInputs(req.Input)
	if rerr != nil {
		return embeddingJob{}, rerr
	}
	job.texts = make([]string, len(inputs))
	for i, in := range inputs {
		n := len(in.ids)
		text := in.text
		if in.ids == nil {
			n = s.tok.count(in.text)
		} else if decoded, ok := s.tok.decode(in.ids); ok {
			text = decoded
		} else {
			text = fmt.Sprint(in.ids)
		}
		if n > MaxTokensPerInput {
			return embeddingJob{}, invalid("input", "context_length_exceeded", "This model's maximum context length is %d tokens, however you requested %d tokens (%d in your prompt; 0 for the completion). Please reduce your prompt; or completion length.", MaxTokensPerInput, n, n)
		}
		job.tokens += n
		job.texts[i] = text
	}
	if job.tokens > MaxTokensPerRequest {
		return embeddingJob{}, invalid("input", "max_tokens_per_request", "Requested %d tokens, max %d tokens per request", job.tokens, MaxTokensPerRequest)
	}
	return job, nil
}

// rawInput is one embeddings input: text, or token ids when ids is not nil.
type rawInput struct {
	text string
	ids  []int
}

// decodeInputs accepts a string, an array of strings, an array of token
// ids, or an array of token-id arrays.
func decodeInputs(raw json.RawMessage) ([]rawInput, *requestError) {
	raw = bytes.TrimSpace(raw)
	bad := invalid("input", "", "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, invalid("input", "", "'input' is a required property")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return nil, bad
		}
		return []rawInput{{text: s}}, nil
	case '[':
	default:
		return nil, bad
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return nil, bad
	}
	if first := bytes.TrimSpace(items[0]); len(first) > 0 && (first[0] == '-' || (first[0] >= '0' && first[0] <= '9')) {
		ids, ok := decodeIDs(raw)
		if !ok {
			return nil, bad
		}
		return []rawInput{{ids: ids}}, nil
	}
	if len(items) > MaxEmbeddingInputs {
		return nil, invalid("input", "", "Too many inputs. The max number of inputs is %d. We recommend sending smaller batches.", MaxEmbeddingInputs)
	}
	out := make([]rawInput, len(items))
	for i, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) == 0 {
			return nil, bad
		}
		switch it[0] {
		case '"':
			var s string
			if err := json.Unmarshal(it, &s); err != nil || s == "" {
				return nil, invalid("input", "", "'$.input[%d]' is invalid: inputs must be non-empty strings.", i)
			}
			out[i] = rawInput{text: s}
		case '[':
			ids, ok := decodeIDs(it)
			if !ok {
				return nil, invalid("input", "", "'$.input[%d]' is invalid: token arrays must be non-empty arrays of non-negative integers.", i)
			}
			out[i] = rawInput{ids: ids}
		default:
			return nil, bad
		}
	}
	return out, nil
}

func decodeIDs(raw json.RawMessage) ([]int, bool) {
	var ids []int
	if err := json.Unmarshal(raw, &ids); err != nil || len(ids) == 0 {
		return nil, false
	}
	for _, id := range ids {
		if id < 0 {
			return nil, false
		}
	}
	return ids, true
}

// Embedding returns the deterministic unit-norm vector of text with native
// dimensions native, reduced to dims dimensions and normalised again, the
// way the real API shortens vectors.
func Embedding(text string, native, dims int) []float32 {
	h := hashText(text)
	rng := rand.New(rand.NewPCG(h, h^0x9e3779b97f4a7c15)) //nolint:gosec // Vectors must be reproducible, not secret.
	full := make([]float64, native)
	for i := range full {
		full[i] = rng.NormFloat64()
	}
	return normalize(full[:min(dims, native)], dims)
}

// normalize scales v to unit length and pads it with zeros to n values.
func normalize(v []float64, n int) []float32 {
	var sum float64
	for _, x := range v {
		sum += x * x
	}
	norm := math.Sqrt(sum)
	out := make([]float32, n)
	for i, x := range v {
		if norm > 0 {
			out[i] = float32(x / norm)
		}
	}
	return out
}

// EncodeBase64 encodes v as little-endian float32 values in base64, like
// encoding_format "base64".
func EncodeBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

type embeddingData struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type embeddingResponse struct {
	Object string          `json:"object"`
	Data   []embeddingData `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	e := s.emb
	defer e.counters.begin()()
	job, ok := readJob(s, w, r, e, s.parseEmbeddingRequest)
	if !ok {
		return
	}
	e.counters.inputs.Add(int64(len(job.texts)))
	e.counters.promptTokens.Add(int64(job.tokens))
	e.countDistinct(job.texts)

	d := e.draws(s.cfg.Seed)
	fault, headers, ok := s.admit(w, e, d, job.model, job.tokens)
	if !ok {
		return
	}
	w.Header().Set("x-request-id", requestID(d))
	w.Header().Set("openai-model", job.model)
	if !s.delay(r.Context(), e, d, job.tokens) {
		e.counters.canceled.Add(1)
		return
	}
	if s.preFault(w, r, e, d, fault) {
		return
	}
	s.writeBody(w, e, fault, headers, s.embeddingAnswer(e, job, fault))
}

// embeddingAnswer computes the response body for job, damaged by fault
// when it is FaultBadValues or FaultWrongCount. The HTTP handler and the
// batch worker share it.
func (s *Server) embeddingAnswer(e *endpoint, job embeddingJob, fault string) embeddingResponse {
	dims := job.dims
	if fault == FaultBadValues {
		e.counters.faults[faultIndex(FaultBadValues)].Add(1)
		if dims > 1 {
			dims--
		} else {
			dims++
		}
	}
	n := len(job.texts)
	if fault == FaultWrongCount {
		e.counters.faults[faultIndex(FaultWrongCount)].Add(1)
		n--
	}
	resp := embeddingResponse{
		Object: "list",
		Data:   make([]embeddingData, n),
		Model:  job.model,
		Usage:  embeddingUsage{PromptTokens: job.tokens, TotalTokens: job.tokens},
	}
	for i := range n {
		v := Embedding(job.texts[i], max(job.native, dims), dims)
		var emb any = v
		if job.base64 {
			emb = EncodeBase64(v)
		}
		resp.Data[i] = embeddingData{Object: "embedding", Index: i, Embedding: emb}
	}
	return resp
}
