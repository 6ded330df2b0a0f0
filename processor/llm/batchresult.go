package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/textpulse/textpulse/processor/enrich"
)

// batchOutputLine is one line of a batch output or error file.
type batchOutputLine struct {
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// ok reports whether l is a 200 answer.
func (l batchOutputLine) ok() bool {
	return l.Error == nil && l.Response != nil && l.Response.StatusCode == http.StatusOK
}

// collect settles the items of f from the end of its batch b: a failed
// batch (its input did not validate) fails them all for good; otherwise
// the answers of the output and error files are mapped back by custom_id,
// and the requests without one (an expired or cancelled batch) fail with a
// retryable error.
func (p *batchAPI[R]) collect(ctx context.Context, b openai.Batch, f *batchFile[R]) {
	p.m.batches.WithLabelValues(b.Status).Inc()
	p.log.Info("llm batch ended", "stage", p.name, "batch", b.ID, "status", b.Status,
		"completed", b.RequestCounts.Completed, "failed", b.RequestCounts.Failed)
	if b.Status == batchFailed {
		err := &RequestError{Op: "run batch", Attempts: 1, Kind: ErrRejected,
			Err: fmt.Errorf("batch %s failed: %s", b.ID, batchErrorText(b))}
		p.fail(f.reqs, err)
		return
	}
	lines, err := p.download(ctx, b)
	if err != nil {
		p.fail(f.reqs, err)
		return
	}
	for cid, req := range f.reqs {
		l, ok := lines[cid]
		if !ok {
			p.m.batchRequests.WithLabelValues("error").Inc()
			settle(req, 1, &RequestError{Op: "run batch", Attempts: 1, Kind: ErrUnavailable,
				Err: fmt.Errorf("batch %s ended %s without an answer to %s", b.ID, b.Status, cid)})
			continue
		}
		p.answer(req, l, f.mode)
	}
}

// fail settles every request of reqs with err.
func (p *batchAPI[R]) fail(reqs map[string][]*enrich.Item[R], err error) {
	for _, req := range reqs {
		p.m.batchRequests.WithLabelValues("error").Inc()
		settle(req, 1, err)
	}
}

// answer settles the items of one request sent in mode from its output
// line.
func (p *batchAPI[R]) answer(req []*enrich.Item[R], l batchOutputLine, mode string) {
	if !l.ok() {
		p.m.batchRequests.WithLabelValues("error").Inc()
		settle(req, 1, p.refused(lineError(l), mode))
		return
	}
	res, usage, err := p.decode(l.Response.Body, len(req))
	p.m.tokens.WithLabelValues("prompt").Add(float64(usage.PromptTokens))
	p.m.tokens.WithLabelValues("completion").Add(float64(usage.CompletionTokens))
	if err != nil {
		kind, reason := error(ErrInvalidAnswer), "invalid"
		var ae *AnswerError
		if errors.As(err, &ae) {
			kind, reason = ae.Kind, ae.Reason
		}
		p.m.unusable.WithLabelValues(reason).Inc()
		p.m.batchRequests.WithLabelValues("error").Inc()
		settle(req, 1, &RequestError{Op: "decode batch answer", Status: http.StatusOK, Attempts: 1, Kind: kind, Err: err})
		return
	}
	p.m.batchRequests.WithLabelValues("ok").Inc()
	for i, it := range req {
		it.Result, it.Done, it.Attempts = res[i], true, 1
	}
}

// refused returns re, the failure of a request sent in mode, after the
// capability check of the synchronous path: a refusal of the parameter of
// the modes moves auto modes on and makes re retryable, so that the engine
// submits the texts again in the next mode; any other refused parameter,
// or one with no mode left, makes re endpoint-wide.
func (p *batchAPI[R]) refused(re *RequestError, mode string) *RequestError {
	switch {
	case re.Unsupported == "":
	case re.Unsupported == p.modeParam && p.modes.fallBack(mode):
		re.Kind = ErrUnavailable
	default:
		re.Kind, re.Wide = ErrRejected, true
	}
	return re
}

// lineError is the failure of a request that l answers with an error: a
// 4xx other than 408 and 429 is ErrRejected, anything else (a 5xx, 408,
// 429, an expiry without a response) ErrUnavailable, which the engine may
// try again. Unsupported names the parameter the error says the endpoint
// does not support, as for a synchronous request.
func lineError(l batchOutputLine) *RequestError {
	status, msg, text := 0, "no response", ""
	if l.Response != nil {
		status = l.Response.StatusCode
		var body struct {
			Error *struct {
				Message string  `json:"message"`
				Code    any     `json:"code"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
			} `json:"error"`
		}
		if json.Unmarshal(l.Response.Body, &body) == nil && body.Error != nil {
			e := body.Error
			msg = fmt.Sprintf("%v: %s", e.Code, e.Message)
			text = strings.ToLower(fmt.Sprintf("%s %v %s %s", e.Message, e.Code, e.Type, ptrValue(e.Param)))
		}
	}
	if l.Error != nil {
		msg = l.Error.Code + ": " + l.Error.Message
	}
	kind := ErrUnavailable
	if status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
		kind = ErrRejected
	}
	return &RequestError{Op: "batch request", Status: status, Attempts: 1, Kind: kind, Err: errors.New(msg),
		Unsupported: unsupportedParam(status, text)}
}

// ptrValue returns *p, or "" for nil.
func ptrValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// download reads the output and error files of b into their lines by
// custom_id; a 200 answer wins over an error for the same custom_id.
// Lines that are not JSON or lack a custom_id are skipped: their requests
// count as unanswered.
func (p *batchAPI[R]) download(ctx context.Context, b openai.Batch) (map[string]batchOutputLine, error) {
	out := make(map[string]batchOutputLine)
	for _, id := range []*string{b.OutputFileID, b.ErrorFileID} {
		if id == nil || *id == "" {
			continue
		}
		data, err := p.fileContent(ctx, *id)
		if err != nil {
			return nil, err
		}
		skipped := 0
		for raw := range bytes.SplitSeq(data, []byte("\n")) {
			if len(bytes.TrimSpace(raw)) == 0 {
				continue
			}
			var l batchOutputLine
			if err := json.Unmarshal(raw, &l); err != nil || l.CustomID == "" {
				skipped++
				continue
			}
			if prev, ok := out[l.CustomID]; !ok || !prev.ok() {
				out[l.CustomID] = l
			}
		}
		if skipped > 0 {
			p.log.Warn("llm batch file has unreadable lines", "stage", p.name, "batch", b.ID, "file", *id, "lines", skipped)
		}
	}
	return out, nil
}

// fileContent downloads the content of file id.
func (p *batchAPI[R]) fileContent(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	_, err := p.c.do(ctx, call{op: "download batch file", send: func(ctx context.Context) (openai.Usage, error) {
		raw, err := p.c.api.GetFileContent(ctx, id)
		if err != nil {
			return openai.Usage{}, err
		}
		defer func() { _ = raw.Close() }()
		data, err = io.ReadAll(raw)
		return openai.Usage{}, err
	}})
	return data, err
}

// batchErrorText lists the validation errors of a failed batch.
func batchErrorText(b openai.Batch) string {
	if b.Errors == nil || len(b.Errors.Data) == 0 {
		return "no errors given"
	}
	parts := make([]string, 0, len(b.Errors.Data))
	for _, e := range b.Errors.Data {
		s := e.Code + ": " + e.Message
		if e.Line != nil {
			s = fmt.Sprintf("line %d: %s", *e.Line, s)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
