package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/openaisim"
	"github.com/textpulse/textpulse/internal/textgen"
)

// apiBurst is how much of a minute's budget the simulated limits let
// through at once; the cap-implied maximum of a run of D seconds counts
// D + apiBurst seconds of budget.
const apiBurst = 5 * time.Second

// apiCaps are the simulated provider's limits in the API-bound scenario.
type apiCaps struct {
	embRPM, embTPM, chatRPM, chatTPM int
}

// runAPI measures the API-bound pipeline: embeddings and sentiment through
// the simulator with realistic latency and RPM/TPM caps, as a fraction of
// the throughput the caps allow, and against a one-text-per-request
// configuration in the same run.
func runAPI(ctx context.Context, o options, stdout io.Writer) (*Result, error) {
	caps := apiCaps{embRPM: 3000, embTPM: 5_000_000, chatRPM: 1000, chatTPM: 1_000_000}
	texts, baseTexts := 20000, 600
	if o.quick {
		texts, baseTexts = 4000, 200
	}
	r := newResult("api", "API-bound enrichment: embeddings and sentiment through the OpenAI-compatible simulator "+
		"with 300 ms (p99 900 ms) embedding and 1.5 s (p99 4 s) chat latency under RPM/TPM caps")
	r.Settings = map[string]any{
		"texts": texts, "baseline_texts": baseTexts, "repeat": o.repeat,
		"embeddings_caps":      fmt.Sprintf("%d RPM, %d TPM", caps.embRPM, caps.embTPM),
		"chat_caps":            fmt.Sprintf("%d RPM, %d TPM", caps.chatRPM, caps.chatTPM),
		"client_budgets":       "equal to the caps",
		"pipeline_config":      "defaults: 2048 inputs per embeddings request, 24 texts per chat request, 32 chat requests in flight",
		"baseline_config":      "1 input per embeddings request, 1 text per chat request, same concurrency and budgets",
		"text_length":          "realistic social posts (textgen), no repeated texts",
		"cap_implied_max_rule": "min over both stages of RPM and TPM budget for the run (duration + 5 s burst) / requests or tokens per text, prompt tokens as charged by the server",
		"server_burst":         apiBurst.String(),
	}
	cl, adm, err := newProducer(o)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for i := range o.repeat {
		_, _ = fmt.Fprintf(stdout, "api run %d/%d: %d texts, baseline %d texts\n", i+1, o.repeat, texts, baseTexts)
		pipe, err := apiOnce(ctx, o, cl, adm, caps, texts, false)
		if err != nil {
			return nil, err
		}
		base, err := apiOnce(ctx, o, cl, adm, caps, baseTexts, true)
		if err != nil {
			return nil, err
		}
		run := map[string]float64{
			"texts_per_s":                      pipe["texts_per_s"],
			"cap_implied_max_texts_per_s":      pipe["cap_max"],
			"cap_fraction":                     pipe["texts_per_s"] / pipe["cap_max"],
			"embedding_requests_per_text":      pipe["emb_req_per_text"],
			"sentiment_requests_per_text":      pipe["chat_req_per_text"],
			"http_429_answers":                 pipe["429s"],
			"baseline_texts_per_s":             base["texts_per_s"],
			"baseline_embedding_req_per_text":  base["emb_req_per_text"],
			"baseline_sentiment_req_per_text":  base["chat_req_per_text"],
			"speedup_vs_baseline":              pipe["texts_per_s"] / base["texts_per_s"],
			"multiple_of_prototype_0.44_per_s": pipe["texts_per_s"] / 0.44,
		}
		_, _ = fmt.Fprintf(stdout, "  %.1f texts/s = %.2f of the %.1f the caps allow; %.5f embedding and %.4f chat requests per text; baseline %.2f texts/s\n",
			run["texts_per_s"], run["cap_fraction"], run["cap_implied_max_texts_per_s"],
			run["embedding_requests_per_text"], run["sentiment_requests_per_text"], run["baseline_texts_per_s"])
		r.Runs = append(r.Runs, run)
	}
	r.summarize()
	return r, nil
}

// apiOnce runs the consumer with both API stages over n fresh texts and
// returns its rate and the server-side usage per text.
func apiOnce(ctx context.Context, o options, cl *kgo.Client, adm *kadm.Client, caps apiCaps, n int, oneByOne bool) (map[string]float64, error) {
	cfg := openaisim.DefaultConfig()
	cfg.Embeddings = openaisim.Endpoint{RPM: caps.embRPM, TPM: caps.embTPM, Burst: apiBurst,
		Latency: openaisim.Latency{Median: 300 * time.Millisecond, P99: 900 * time.Millisecond}}
	cfg.Chat = openaisim.Endpoint{RPM: caps.chatRPM, TPM: caps.chatTPM, Burst: apiBurst,
		Latency: openaisim.Latency{Median: 1500 * time.Millisecond, P99: 4 * time.Second}}
	sim, base, stopSim, err := serveSim(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer stopSim()
	env, cleanup, err := newRunEnv(ctx, o, adm, "api", 3)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if err := produceTexts(ctx, cl, env.topic, n, textgen.Options{Seed: uint64(time.Now().UnixNano())}); err != nil { //nolint:gosec // Any seed will do.
		return nil, err
	}
	proc, stopConsumer, err := startConsumer(ctx, o.consumer, apiArgs(o, env, base, caps, oneByOne))
	if err != nil {
		return nil, err
	}
	defer stopConsumer()
	// The window starts at the first chat request: the stages' requests
	// begin once the first batch is polled.
	firstChat := watchFirstChat(sim)
	_, tDone, err := waitWritten(ctx, env.metricsURL, float64(n), 15*time.Minute)
	tFirst := firstChat()
	if err != nil {
		return nil, err
	}
	_ = proc.Signal(os.Interrupt)
	_ = proc.Wait()
	partial, err := chQuery(o, fmt.Sprintf("SELECT countIf(status != 'ok') FROM %s.events", env.db))
	if err != nil {
		return nil, err
	}
	if partial != "0" {
		return nil, fmt.Errorf("%s rows were written without an enrichment", partial)
	}
	return apiUsage(sim.Stats(), caps, float64(n), tDone.Sub(tFirst).Seconds()), nil
}

// apiUsage is the rate of texts over secs and the server-side usage per
// text, with the rate the caps allow.
func apiUsage(st openaisim.Stats, caps apiCaps, texts, secs float64) map[string]float64 {
	rate := texts / secs
	// The caps admit budget for the run's duration plus the initial burst.
	allowance := (secs + apiBurst.Seconds()) / 60 / secs
	capMax := func(e openaisim.EndpointStats, rpm, tpm int) float64 {
		reqPerText := float64(e.Succeeded) / texts
		// The limits charge prompt tokens (the client sets no max_tokens).
		tokPerText := float64(e.PromptTokens) / float64(max(e.Requests, 1)) * float64(e.Succeeded) / texts
		return min(float64(rpm)*allowance/reqPerText, float64(tpm)*allowance/tokPerText)
	}
	return map[string]float64{
		"texts_per_s":       rate,
		"cap_max":           min(capMax(st.Embeddings, caps.embRPM, caps.embTPM), capMax(st.Chat, caps.chatRPM, caps.chatTPM)),
		"emb_req_per_text":  float64(st.Embeddings.Succeeded) / texts,
		"chat_req_per_text": float64(st.Chat.Succeeded) / texts,
		"429s":              float64(st.Embeddings.TooManyRequests + st.Chat.TooManyRequests),
	}
}

// apiArgs are the consumer's flags in the API-bound scenario: both API
// stages against the simulator at base with client budgets equal to caps;
// oneByOne sends one text per request.
func apiArgs(o options, env *runEnv, base string, caps apiCaps, oneByOne bool) []string {
	args := env.consumerArgs(o)
	for _, st := range []string{"embedding", "sentiment"} {
		p := "--stages." + st + "."
		args = append(args, p+"enabled", p+"base_url", base, p+"api_key", "bench", p+"cache_size", "0", p+"on_failure", "retry")
	}
	args = append(args,
		"--stages.embedding.requests_per_minute", strconv.Itoa(caps.embRPM), "--stages.embedding.tokens_per_minute", strconv.Itoa(caps.embTPM),
		"--stages.sentiment.requests_per_minute", strconv.Itoa(caps.chatRPM), "--stages.sentiment.tokens_per_minute", strconv.Itoa(caps.chatTPM))
	if oneByOne {
		args = append(args, "--stages.embedding.max_inputs", "1", "--stages.sentiment.items_per_request", "1",
			"--stages.embedding.concurrency", "32")
	}
	return args
}

// watchFirstChat polls sim every 20 ms for its first chat request. The
// returned function stops the polling and returns when that request was
// seen (zero if not yet).
func watchFirstChat(sim *openaisim.Server) func() time.Time {
	var tFirst time.Time
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for tFirst.IsZero() {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if sim.Stats().Chat.Requests > 0 {
				tFirst = time.Now()
			}
		}
	}()
	return func() time.Time {
		close(stopWatch)
		<-watched
		return tFirst
	}
}
