package openaisim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Profile names of Config.Profile.
const (
	ProfileOpenAI   = "openai"
	ProfileAzure    = "azure"
	ProfileVLLM     = "vllm"
	ProfileOllama   = "ollama"
	ProfileLlamaCpp = "llamacpp"
	ProfileLiteLLM  = "litellm"
)

// Profiles lists the profile names.
func Profiles() []string {
	return []string{ProfileOpenAI, ProfileAzure, ProfileVLLM, ProfileOllama, ProfileLlamaCpp, ProfileLiteLLM}
}

// Ways a server treats a request option.
const (
	// Honour does what the option asks.
	Honour = "honour"
	// Ignore accepts the option and does as if it was not there.
	Ignore = "ignore"
	// Refuse answers an error.
	Refuse = "refuse"
)

// Quirks are the ways a compatible server departs from the OpenAI API. The
// zero value is the OpenAI API; an empty way is Honour.
type Quirks struct {
	// Base64 is how encoding_format base64 is treated; Ignore answers
	// floats (llama-cpp-python's server, older Ollama).
	Base64 string
	// Dimensions is how the dimensions field is treated; Refuse answers
	// 400 "This model does not support specifying dimensions."
	Dimensions string
	// JSONSchema is how response_format json_schema is treated; Refuse
	// answers JSONSchemaStatus.
	JSONSchema string
	// JSONSchemaStatus is the status of a refused json_schema: 400 for
	// OpenAI models without Structured Outputs, 500 for
	// llama-cpp-python's validation error.
	JSONSchemaStatus int
	// JSONObject is how response_format json_object is treated.
	JSONObject string
	// Stream is how stream: true is treated; Honour answers server-sent
	// events.
	Stream string
	// N is how n > 1 is treated; Honour answers n choices.
	N string
	// HeaderPrefix is put before the rate-limit and retry headers, as
	// LiteLLM's proxy does with the headers of its upstream
	// ("llm_provider-").
	HeaderPrefix string
	// AzureRoutes serves /openai/deployments/{deployment}/... with a
	// required api-version query parameter instead of /v1/...; json_schema
	// is refused for api-versions before 2024-08-01-preview.
	AzureRoutes bool
	// NoRateLimitHeaders leaves out the x-ratelimit-* headers.
	NoRateLimitHeaders bool
}

// ProfileQuirks returns the quirks of a profile: "openai" (the default, the
// API as documented), "azure", "vllm", "ollama", "llamacpp"
// (llama-cpp-python's server) or "litellm" (LiteLLM's proxy in front of
// OpenAI).
func ProfileQuirks(name string) (Quirks, error) {
	q := Quirks{Base64: Honour, Dimensions: Honour, JSONSchema: Honour, JSONObject: Honour,
		Stream: Honour, N: Honour}
	switch name {
	case "", ProfileOpenAI:
	case ProfileAzure:
		q.AzureRoutes = true
	case ProfileVLLM:
		q.Dimensions = Refuse
		q.NoRateLimitHeaders = true
	case ProfileOllama:
		q.Base64, q.Dimensions = Ignore, Ignore
		q.N = Ignore
		q.NoRateLimitHeaders = true
	case ProfileLlamaCpp:
		q.Base64, q.Dimensions = Ignore, Ignore
		q.JSONSchema, q.JSONSchemaStatus = Refuse, http.StatusInternalServerError
		q.N = Refuse
		q.NoRateLimitHeaders = true
	case ProfileLiteLLM:
		q.HeaderPrefix = "llm_provider-"
	default:
		return Quirks{}, fmt.Errorf("unknown profile %q: want one of %s", name, strings.Join(Profiles(), ", "))
	}
	return q, nil
}

// apiVersionKey is the context key of the Azure api-version of a request.
type apiVersionKey struct{}

// azureRoutes registers the Azure deployment routes on mux.
func (s *Server) azureRoutes(mux *http.ServeMux) {
	route := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			v := r.URL.Query().Get("api-version")
			if v == "" {
				writeError(w, http.StatusNotFound, "Resource not found", "", "", "404")
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), apiVersionKey{}, v)))
		}
	}
	mux.HandleFunc("POST /openai/deployments/{deployment}/embeddings", route(s.track(s.handleEmbeddings)))
	mux.HandleFunc("POST /openai/deployments/{deployment}/chat/completions", route(s.track(s.handleChat)))
}

// azureJSONSchemaSince is the first api-version with Structured Outputs.
const azureJSONSchemaSince = "2024-08-01-preview"

// refuseFormat returns the error a server of the profile answers for a
// response_format type, or nil.
func (s *Server) refuseFormat(ctx context.Context, typ string) *requestError {
	q := s.cfg.Quirks
	switch typ {
	case "json_schema":
		if v, ok := ctx.Value(apiVersionKey{}).(string); ok && v < azureJSONSchemaSince {
			return invalid("response_format", "", "response_format value as json_schema is enabled only for api versions %s and later", azureJSONSchemaSince)
		}
		if q.JSONSchema != Refuse {
			return nil
		}
		if q.JSONSchemaStatus == http.StatusInternalServerError {
			return &requestError{status: http.StatusInternalServerError,
				msg: "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', 'ctx': {'expected': \"'text' or 'json_object'\"}}]"}
		}
		return invalid("response_format", "", "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.")
	case "json_object":
		if q.JSONObject == Refuse {
			return invalid("response_format", "", "Invalid parameter: 'response_format' of type 'json_object' is not supported with this model.")
		}
	}
	return nil
}

// prefixed returns the rate-limit headers as the profile sends them.
func (s *Server) prefixed(kv map[string]string) map[string]string {
	q := s.cfg.Quirks
	if q.NoRateLimitHeaders {
		return nil
	}
	if q.HeaderPrefix == "" || len(kv) == 0 {
		return kv
	}
	out := make(map[string]string, len(kv))
	for k, v := range kv {
		out[q.HeaderPrefix+k] = v
	}
	return out
}

// Content markers: a text holding one makes the chat answer of its whole
// request unusable in that way, like real models do for some inputs.
const (
	// MarkRefusal answers a refusal.
	MarkRefusal = "[sim:refusal]"
	// MarkContentFilter answers finish_reason content_filter.
	MarkContentFilter = "[sim:content_filter]"
	// MarkLength answers a cut answer with finish_reason length.
	MarkLength = "[sim:length]"
	// MarkGarbage answers text that is not JSON.
	MarkGarbage = "[sim:garbage]"
	// MarkFence wraps the answer in a ```json code fence.
	MarkFence = "[sim:fence]"
	// MarkThink puts a <think>...</think> block before the answer.
	MarkThink = "[sim:think]"
)

// marks returns the content markers found in the texts.
func marks(texts []string) []string {
	var out []string
	for _, m := range []string{MarkRefusal, MarkContentFilter, MarkLength, MarkGarbage, MarkFence, MarkThink} {
		if slices.ContainsFunc(texts, func(t string) bool { return strings.Contains(t, m) }) {
			out = append(out, m)
		}
	}
	return out
}

// applyMarks changes a chat answer for the markers: it returns the content,
// the refusal (or "") and the finish reason.
func applyMarks(content string, ms []string) (string, string, string) {
	finish := "stop"
	for _, m := range ms {
		switch m {
		case MarkRefusal:
			return "", "I'm sorry, but I can't help with that request.", "stop"
		case MarkContentFilter:
			return "", "", "content_filter"
		case MarkLength:
			return content[:len(content)/2], "", "length"
		case MarkGarbage:
			return "Sure! Here are the sentiments you asked for: mostly positive.", "", "stop"
		case MarkFence:
			content = "```json\n" + content + "\n```"
		case MarkThink:
			content = "<think>\nThe user wants sentiment labels. Let me look at each text.\n</think>\n\n" + content
		}
	}
	return content, "", finish
}
