package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// Support outcomes of a probed option.
const (
	// SupportYes means the endpoint did what the option asks.
	SupportYes = "supported"
	// SupportIgnored means the endpoint accepted the option and did not
	// do it (floats for base64, the native size for dimensions).
	SupportIgnored = "ignored"
	// SupportRefused means the endpoint answered that it does not support
	// the option.
	SupportRefused = "refused"
	// SupportInvalid means the endpoint answered, but not usably.
	SupportInvalid = "answered invalid"
	// SupportNotAsked means the option is not configured.
	SupportNotAsked = "not configured"
)

// Probe is what one tiny request per option found out about an endpoint.
type Probe struct {
	// Options maps each probed option (for example "encoding_format
	// base64", "response_format json_schema") to a Support outcome, or to
	// the error of the request.
	Options map[string]string
	// Order lists the keys of Options in probing order.
	Order []string
	// VectorSize is the size of the vectors answered, for embeddings.
	VectorSize int
	// RateLimitHeaders are the names of the rate-limit and retry headers
	// seen in the answers, lowercased.
	RateLimitHeaders []string
	// Err is set when the endpoint cannot serve the stage at all.
	Err error
}

func (p *Probe) set(option, outcome string) {
	if p.Options == nil {
		p.Options = map[string]string{}
	}
	if _, ok := p.Options[option]; !ok {
		p.Order = append(p.Order, option)
	}
	p.Options[option] = outcome
}

// String is one line: option outcomes, vector size and headers.
func (p *Probe) String() string {
	parts := make([]string, 0, len(p.Order)+2)
	for _, o := range p.Order {
		parts = append(parts, o+": "+p.Options[o])
	}
	if p.VectorSize > 0 {
		parts = append(parts, fmt.Sprintf("vectors of %d dimensions", p.VectorSize))
	}
	if len(p.RateLimitHeaders) > 0 {
		parts = append(parts, "rate-limit headers: "+strings.Join(p.RateLimitHeaders, " "))
	} else {
		parts = append(parts, "no rate-limit headers")
	}
	return strings.Join(parts, "; ")
}

// seen adds the rate-limit and retry header names of rec.
func (p *Probe) seen(rec *responseRecord) {
	for k := range rec.header {
		k = strings.ToLower(k)
		base := strings.TrimPrefix(k, litellmPrefix)
		if (strings.HasPrefix(base, "x-ratelimit-") || strings.HasPrefix(base, "retry-after")) && !slices.Contains(p.RateLimitHeaders, k) {
			p.RateLimitHeaders = append(p.RateLimitHeaders, k)
		}
	}
	slices.Sort(p.RateLimitHeaders)
}

// once sends one attempt of a request, without budgets or retries, and
// returns what the transport recorded.
func (cl *client) once(ctx context.Context, embedFormat string, send func(ctx context.Context) error) (*responseRecord, error) {
	rec := &responseRecord{embedFormat: embedFormat}
	actx, cancel := context.WithTimeout(context.WithValue(ctx, recordKey{}, rec), cl.cfg.Timeout)
	defer cancel()
	return rec, send(actx)
}

// outcome turns the error of a probe request into a Support outcome.
func outcome(err error) string {
	if err == nil {
		return SupportYes
	}
	f := classify(err, nil)
	switch {
	case f.unsupported != "":
		return SupportRefused
	case errors.Is(err, ErrInvalidAnswer), errors.Is(err, ErrRefused), errors.Is(err, ErrCutAnswer):
		return SupportInvalid
	}
	return err.Error()
}

// Probe sends one tiny embeddings request per option: base64, float, and
// the configured dimensions. Err is set when no encoding works.
func (s *EmbeddingStage) Probe(ctx context.Context) Probe {
	var p Probe
	embed := func(format string, dims int) (int, *responseRecord, error) {
		size := 0
		rec, err := s.c.once(ctx, format, func(ctx context.Context) error {
			resp, err := s.c.api.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
				Input: []string{"probe"}, Model: openai.EmbeddingModel(s.cfg.Model),
				EncodingFormat: openai.EmbeddingEncodingFormat(format), Dimensions: dims,
			})
			if err != nil {
				return err
			}
			if len(resp.Data) != 1 || len(resp.Data[0].Embedding) == 0 {
				return fmt.Errorf("%w: %d embeddings for 1 input", ErrInvalidAnswer, len(resp.Data))
			}
			size = len(resp.Data[0].Embedding)
			return nil
		})
		p.seen(rec)
		return size, rec, err
	}
	works := false
	for _, format := range []string{EncodingBase64, EncodingFloat} {
		size, rec, err := embed(format, 0)
		o := outcome(err)
		if err == nil {
			works = true
			p.VectorSize = size
			if rec.converted {
				answered := "floats"
				if format == EncodingFloat {
					answered = "base64"
				}
				o = SupportIgnored + " (answered " + answered + ")"
			}
		}
		p.set("encoding_format "+format, o)
		var re *RequestError
		if errors.As(err, &re) && re.EndpointWide() && re.Unsupported == "" {
			break
		}
	}
	if !works {
		p.Err = fmt.Errorf("embeddings: no encoding works: %s", p.String())
		return p
	}
	if s.cfg.Dimensions == 0 {
		p.set("dimensions", SupportNotAsked)
		return p
	}
	size, _, err := embed(EncodingFloat, s.cfg.Dimensions)
	o := outcome(err)
	switch {
	case err == nil && size == s.cfg.Dimensions:
		p.VectorSize = size
	case err == nil:
		o = fmt.Sprintf("%s (answered %d)", SupportIgnored, size)
		p.Err = fmt.Errorf("dimensions %d: the endpoint answers %d", s.cfg.Dimensions, size)
	default:
		p.Err = fmt.Errorf("dimensions %d: %s", s.cfg.Dimensions, o)
	}
	p.set(fmt.Sprintf("dimensions %d", s.cfg.Dimensions), o)
	return p
}

// Probe sends one tiny chat request per response_format mode and reports
// which work. Err is set when the configured mode does not (for auto: none
// of them).
func (s *SentimentStage) Probe(ctx context.Context) Probe {
	var p Probe
	user, err := json.Marshal(map[string]any{"items": []sentimentItem{{ID: 0, Text: "I love this, it works great."}}})
	if err != nil {
		p.Err = fmt.Errorf("encode probe: %w", err)
		return p
	}
	working := ""
	for _, mode := range []string{FormatJSONSchema, FormatJSONObject, FormatText} {
		req := sentimentRequest(s.cfg.Model, mode, string(user), 1)
		rec, err := s.c.once(ctx, "", func(ctx context.Context) error {
			resp, err := s.c.api.CreateChatCompletion(ctx, req)
			if err != nil {
				return err
			}
			_, err = parseSentiments(resp, 1)
			return err
		})
		p.seen(rec)
		p.set("response_format "+mode, outcome(err))
		if err == nil && working == "" && (s.cfg.ResponseFormat == FormatAuto || s.cfg.ResponseFormat == mode) {
			working = mode
		}
	}
	if working == "" {
		p.Err = fmt.Errorf("response_format %s: no usable answer: %s", s.cfg.ResponseFormat, p.String())
		return p
	}
	p.set("response_format in use", working)
	return p
}
