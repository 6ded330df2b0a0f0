package openaisim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"unicode"
)

// chatMessage is one message of a chat request. Content is a string or an
// array of content parts.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type responseFormat struct {
	Type       string          `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema"`
}

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	ResponseFormat      *responseFormat `json:"response_format"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
}

// SentimentRequest is the content of the last user message in the
// sentiment protocol.
type SentimentRequest struct {
	Items []SentimentItem `json:"items"`
}

// SentimentItem is one text to classify.
type SentimentItem struct {
	ID   int64  `json:"id"`
	Text string `json:"text"`
}

// SentimentResponse is the assistant message content in the sentiment
// protocol.
type SentimentResponse struct {
	Results []SentimentResult `json:"results"`
}

// SentimentResult is the sentiment of one item.
type SentimentResult struct {
	ID    int64   `json:"id"`
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// chatJob is a validated chat request.
type chatJob struct {
	model        string
	promptTokens int
	maxTokens    int
	jsonMode     bool
	format       string
	n            int
	stream       bool
	last         string
	sentiment    *SentimentRequest
}

func (s *Server) parseChatRequest(body []byte) (chatJob, *requestError) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return chatJob{}, invalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	if req.Model == "" {
		return chatJob{}, invalid("model", "", "you must provide a model parameter")
	}
	if !s.knownChatModel(req.Model) {
		return chatJob{}, &requestError{status: http.StatusNotFound, msg: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model), param: "model", code: "model_not_found"}
	}
	if len(req.Messages) == 0 {
		return chatJob{}, invalid("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	job := chatJob{model: req.Model, n: 1, stream: req.Stream}
	if req.N != nil {
		n, rerr := s.choiceCount(*req.N)
		if rerr != nil {
			return chatJob{}, rerr
		}
		job.n = n
	}
	if req.Stream && s.cfg.Quirks.Stream == Refuse {
		return chatJob{}, invalid("stream", "", "Streaming is not supported")
	}
	if rf := req.ResponseFormat; rf != nil {
		job.format = rf.Type
		jsonMode, rerr := responseFormatJSON(rf)
		if rerr != nil {
			return chatJob{}, rerr
		}
		job.jsonMode = jsonMode
	}
	for _, p := range []*int{req.MaxTokens, req.MaxCompletionTokens} {
		if p != nil {
			if *p < 1 {
				return chatJob{}, invalid("max_tokens", "integer_below_min_value", "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", *p)
			}
			job.maxTokens = *p
		}
	}
	lastUser, rerr := s.countMessages(&job, req.Messages)
	if rerr != nil {
		return chatJob{}, rerr
	}
	if lastUser < 0 {
		return job, nil
	}
	var sr SentimentRequest
	dec := json.NewDecoder(strings.NewReader(job.last))
	if err := dec.Decode(&sr); err == nil && sr.Items != nil && !dec.More() {
		job.sentiment = &sr
	}
	return job, nil
}

// choiceCount returns the number of choices a request for n gets under
// the n quirk.
func (s *Server) choiceCount(n int) (int, *requestError) {
	if n < 1 {
		return 0, invalid("n", "integer_below_min_value", "Invalid 'n': integer below minimum value. Expected a value >= 1, but got %d instead.", n)
	}
	switch s.cfg.Quirks.N {
	case Refuse:
		if n > 1 {
			return 0, invalid("n", "", "Only one completion choice is allowed")
		}
	case Ignore:
	default:
		return n, nil
	}
	return 1, nil
}

// responseFormatJSON reports whether response format rf asks for JSON.
func responseFormatJSON(rf *responseFormat) (bool, *requestError) {
	switch rf.Type {
	case "text":
		return false, nil
	case "json_object":
		return true, nil
	case "json_schema":
		if len(bytes.TrimSpace(rf.JSONSchema)) == 0 || bytes.Equal(bytes.TrimSpace(rf.JSONSchema), []byte("null")) {
			return false, invalid("response_format.json_schema", "missing_required_parameter", "Missing required parameter: 'response_format.json_schema'.")
		}
		return true, nil
	}
	return false, invalid("response_format.type", "invalid_value", "Invalid value: %q. Supported values are: 'json_object', 'json_schema', and 'text'.", rf.Type)
}

// countMessages checks the roles and contents of msgs, sets job's prompt
// tokens and last user text, and returns the index of the last user
// message, -1 when there is none.
func (s *Server) countMessages(job *chatJob, msgs []chatMessage) (int, *requestError) {
	job.promptTokens = 3
	lastUser := -1
	for i, m := range msgs {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return -1, invalid(fmt.Sprintf("messages[%d].role", i), "invalid_value", "Invalid value: %q. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.", m.Role)
		}
		text, ok := contentText(m.Content)
		if !ok {
			return -1, invalid(fmt.Sprintf("messages[%d].content", i), "", "Invalid type for 'messages[%d].content': expected a string or an array of content parts.", i)
		}
		job.promptTokens += 4 + s.tok.count(text) + s.tok.count(m.Role)
		if m.Role == "user" {
			lastUser = i
			job.last = text
		}
	}
	return lastUser, nil
}

// contentText returns the text of a message content: a string, null, or an
// array of parts whose "text" fields are joined.
func contentText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", true
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", false
		}
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
		}
		return b.String(), true
	}
	return "", false
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      chatOutMessage  `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type chatOutMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatResponse struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             chatUsage    `json:"usage"`
	SystemFingerprint string       `json:"system_fingerprint"`
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	e := s.chat
	defer e.counters.begin()()
	job, ok := readJob(s, w, r, e, s.parseChatRequest)
	if !ok {
		return
	}
	if rerr := s.refuseFormat(r.Context(), job.format); rerr != nil {
		e.counters.invalid.Add(1)
		writeError(w, rerr.status, rerr.msg, "invalid_request_error", rerr.param, rerr.code)
		return
	}
	e.counters.promptTokens.Add(int64(job.promptTokens))
	if job.sentiment != nil {
		e.counters.inputs.Add(int64(len(job.sentiment.Items)))
		e.countDistinct(sentimentTexts(job.sentiment))
	}

	d := e.draws(s.cfg.Seed)
	fault, headers, ok := s.admit(w, e, d, job.model, job.promptTokens+job.maxTokens)
	if !ok {
		return
	}
	id := requestID(d)
	w.Header().Set("x-request-id", id)
	resp := s.chatAnswer(e, d, job, fault, id)
	completion := resp.Usage.CompletionTokens
	e.counters.completionTokens.Add(int64(completion))
	if !s.delay(r.Context(), e, d, job.promptTokens+completion) {
		e.counters.canceled.Add(1)
		return
	}
	if s.preFault(w, r, e, d, fault) {
		return
	}
	resp.Created = s.now().Unix()
	if job.stream && fault == "" {
		s.writeStream(w, e, headers, resp)
		return
	}
	s.writeBody(w, e, fault, headers, resp)
}

// chatAnswer computes the response body for job with request id id,
// damaged by fault when it is FaultWrongCount or FaultBadValues. The HTTP
// handler and the batch worker share it.
func (s *Server) chatAnswer(e *endpoint, d draws, job chatJob, fault, id string) chatResponse {
	var content string
	var ms []string
	if job.sentiment != nil {
		content = s.sentimentContent(e, d, fault, job.sentiment.Items)
		ms = marks(sentimentTexts(job.sentiment))
	} else {
		content = plainAnswer(job.last)
		if job.jsonMode {
			b, _ := json.Marshal(map[string]string{"text": content})
			content = string(b)
		}
	}
	content, refusal, finish := applyMarks(content, ms)
	completion := s.tok.count(content)
	resp := chatResponse{
		ID:                "chatcmpl-" + strings.TrimPrefix(id, "req_"),
		Object:            "chat.completion",
		Created:           s.now().Unix(),
		Model:             job.model,
		Choices:           make([]chatChoice, job.n),
		Usage:             chatUsage{PromptTokens: job.promptTokens, CompletionTokens: completion, TotalTokens: job.promptTokens + completion},
		SystemFingerprint: "fp_openaisim",
	}
	for i := range resp.Choices {
		resp.Choices[i] = chatChoice{Index: i, Message: chatOutMessage{Role: "assistant", Content: content, Refusal: optional(refusal)},
			Logprobs: json.RawMessage("null"), FinishReason: finish}
	}
	return resp
}

func sentimentTexts(sr *SentimentRequest) []string {
	texts := make([]string, len(sr.Items))
	for i, it := range sr.Items {
		texts[i] = it.Text
	}
	return texts
}

// sentimentContent is the answer to a sentiment request's items, with the
// wrong-count or bad-values fault applied when fault names one.
func (s *Server) sentimentContent(e *endpoint, d draws, fault string, items []SentimentItem) string {
	res := SentimentResponse{Results: make([]SentimentResult, 0, len(items)+1)}
	for _, it := range items {
		label, score := Sentiment(it.Text)
		res.Results = append(res.Results, SentimentResult{ID: it.ID, Label: label, Score: score})
	}
	switch fault {
	case FaultWrongCount:
		e.counters.faults[faultIndex(FaultWrongCount)].Add(1)
		if len(res.Results) > 1 && d.rng.IntN(2) == 0 {
			res.Results = res.Results[:len(res.Results)-1]
		} else {
			var next int64
			for _, r := range res.Results {
				next = max(next, r.ID+1)
			}
			res.Results = append(res.Results, SentimentResult{ID: next, Label: "neutral", Score: 0})
		}
	case FaultBadValues:
		if len(res.Results) > 0 {
			e.counters.faults[faultIndex(FaultBadValues)].Add(1)
			i := d.rng.IntN(len(res.Results))
			if d.rng.IntN(2) == 0 {
				res.Results[i].Score = 1.5
			} else {
				res.Results[i].Label = "ecstatic"
			}
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		s.log.Error("encoding sentiment results", "err", err)
	}
	return string(b)
}

// writeStream writes resp as server-sent events: one chunk per choice with
// the whole content, one with the finish reason, and [DONE].
func (s *Server) writeStream(w http.ResponseWriter, e *endpoint, headers map[string]string, resp chatResponse) {
	e.counters.succeeded.Add(1)
	h := w.Header()
	setHeaders(h, headers)
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	chunk := func(choices []map[string]any) {
		b, _ := json.Marshal(map[string]any{"id": resp.ID, "object": "chat.completion.chunk", "created": resp.Created,
			"model": resp.Model, "system_fingerprint": resp.SystemFingerprint, "choices": choices})
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
	}
	for _, c := range resp.Choices {
		delta := map[string]any{"role": "assistant", "content": c.Message.Content}
		if c.Message.Refusal != nil {
			delta["refusal"] = *c.Message.Refusal
		}
		chunk([]map[string]any{{"index": c.Index, "delta": delta, "finish_reason": nil}})
		chunk([]map[string]any{{"index": c.Index, "delta": map[string]any{}, "finish_reason": c.FinishReason}})
	}
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
}

// plainAnswer is the deterministic reply to a message outside the
// sentiment protocol.
func plainAnswer(last string) string {
	label, score := Sentiment(last)
	return fmt.Sprintf("This is a simulated answer to a message of %d characters (sentiment %s, %.2f, hash %016x).", len([]rune(last)), label, score, hashText(last))
}

// Sentiment classifies text with a small English lexicon. A negation
// ("not", "no", "never", words ending in "n't") flips the next sentiment
// word within three words. The score is (pos-neg)/max(1,pos+neg) rounded
// to two decimals; the label is positive at 0.2 and above, negative at
// -0.2 and below, and neutral otherwise.
func Sentiment(text string) (string, float64) {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && r != '\'' && r != '’'
	})
	var pos, neg int
	negateFor := 0
	for _, w := range words {
		w = strings.Trim(strings.ReplaceAll(w, "’", "'"), "'")
		if isNegator(w) || strings.HasSuffix(w, "n't") {
			negateFor = 3
			continue
		}
		v := polarity(w)
		if negateFor > 0 {
			negateFor--
			v = -v
		}
		switch {
		case v > 0:
			pos++
		case v < 0:
			neg++
		}
	}
	score := float64(pos-neg) / float64(max(1, pos+neg))
	score = math.Max(-1, math.Min(1, math.Round(score*100)/100))
	switch {
	case score >= 0.2:
		return "positive", score
	case score <= -0.2:
		return "negative", score
	}
	return "neutral", score
}
