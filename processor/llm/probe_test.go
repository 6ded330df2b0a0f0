package llm

import (
	"strings"
	"testing"

	"github.com/textpulse/textpulse/internal/openaisim"
)

func TestProbe(t *testing.T) {
	tests := []struct {
		profile   string
		dims      int
		embedding map[string]string
		chat      map[string]string
		header    string // a rate-limit header that must be seen
		embErr    bool
	}{
		{openaisim.ProfileOpenAI, 256,
			map[string]string{"encoding_format base64": SupportYes, "encoding_format float": SupportYes, "dimensions 256": SupportYes},
			map[string]string{"response_format json_schema": SupportYes, "response_format json_object": SupportYes, "response_format in use": FormatJSONSchema},
			"x-ratelimit-remaining-requests", false},
		{openaisim.ProfileLlamaCpp, 0,
			map[string]string{"encoding_format base64": SupportIgnored + " (answered floats)", "encoding_format float": SupportYes, "dimensions": SupportNotAsked},
			map[string]string{"response_format json_schema": SupportRefused, "response_format json_object": SupportYes, "response_format text": SupportYes, "response_format in use": FormatJSONObject},
			"", false},
		{openaisim.ProfileVLLM, 256,
			map[string]string{"encoding_format base64": SupportYes, "dimensions 256": SupportRefused},
			map[string]string{"response_format in use": FormatJSONSchema},
			"", true},
		{openaisim.ProfileLiteLLM, 0,
			map[string]string{"encoding_format base64": SupportYes},
			map[string]string{"response_format in use": FormatJSONSchema},
			"llm_provider-x-ratelimit-remaining-requests", false},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			sim := newSim(t, tt.profile, func(c *openaisim.Config) { c.Embeddings.RPM, c.Chat.RPM = 1000, 1000 })
			es, _ := newSimEmbedding(t, sim, func(c *EmbeddingConfig) { c.Dimensions = tt.dims })
			ep := es.Probe(t.Context())
			if (ep.Err != nil) != tt.embErr {
				t.Errorf("embedding probe error %v, want error %v", ep.Err, tt.embErr)
			}
			for k, want := range tt.embedding {
				if got := ep.Options[k]; got != want {
					t.Errorf("embedding %s = %q, want %q (%s)", k, got, want, ep.String())
				}
			}
			sp := newSimSentiment(t, sim, nil).Probe(t.Context())
			if sp.Err != nil {
				t.Errorf("sentiment probe: %v", sp.Err)
			}
			for k, want := range tt.chat {
				if got := sp.Options[k]; got != want {
					t.Errorf("sentiment %s = %q, want %q (%s)", k, got, want, sp.String())
				}
			}
			if tt.header != "" && !strings.Contains(ep.String(), tt.header) {
				t.Errorf("header %s not reported: %s", tt.header, ep.String())
			}
			if tt.header == "" && !strings.Contains(ep.String(), "no rate-limit headers") {
				t.Errorf("headers reported for a profile without: %s", ep.String())
			}
			t.Logf("embedding: %s", ep.String())
			t.Logf("sentiment: %s", sp.String())
		})
	}
}
