package main

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/processor/llm"
	"github.com/textpulse/textpulse/processor/reenrich"
)

// listPrices are the list prices in US dollars per million tokens (input,
// output) of common models on the synchronous API; the Batch API costs
// half. A model not listed gets no cost estimate.
func listPrices() map[string][2]float64 {
	return map[string][2]float64{
		"text-embedding-3-small": {0.02, 0},
		"text-embedding-3-large": {0.13, 0},
		"text-embedding-ada-002": {0.10, 0},
		"gpt-4o-mini":            {0.15, 0.60},
		"gpt-4o":                 {2.50, 10.00},
		"gpt-4.1-mini":           {0.40, 1.60},
		"gpt-4.1-nano":           {0.10, 0.40},
	}
}

// listCost is the cost in US dollars of in prompt and out completion
// tokens of model on the synchronous API at list prices, and whether the
// model's price is known.
func listCost(model string, in, out float64) (float64, bool) {
	price, ok := listPrices()[model]
	return (in*price[0] + out*price[1]) / 1e6, ok
}

// Sentiment requests cost, beside the texts, about this many prompt tokens
// (the instructions and the JSON framing) and answer about this many
// completion tokens per text.
const (
	sentimentPromptTokens   = 150
	sentimentAnswerPerText  = 12
	sentimentPromptPerInput = 4
)

// stagePlan is what one stage would do in a run.
type stagePlan struct {
	rows, distinct     int
	inTokens           int
	seen               map[uint64]bool
	requests, outToken int
}

// printPlan is consumer enrich --dry-run: the rows the run selects, per
// stage the rows, requests and tokens it would send, and the cost at list
// prices, synchronously and through the Batch API.
func printPlan(ctx context.Context, job *reenrich.Job, cfg Config, o enrichOptions, w io.Writer) error {
	seed := maphash.MakeSeed()
	plans := map[string]*stagePlan{}
	shown := 0
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n, err := job.Plan(ctx, func(r *processor.Record, stages []string) {
		if shown < o.showRows {
			shown++
			_, _ = fmt.Fprintf(tw, "%s/%d/%d\t%s\t%s\t%q\n", r.Topic, r.Partition, r.Offset, r.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"),
				strings.Join(stages, ","), preview(r.Text, 60))
		}
		for _, st := range stages {
			p := plans[st]
			if p == nil {
				p = &stagePlan{seen: map[uint64]bool{}}
				plans[st] = p
			}
			p.rows++
			if h := maphash.String(seed, r.Text); !p.seen[h] {
				p.seen[h] = true
				p.distinct++
				p.inTokens += min(llm.EstimateTokens(r.Text), cfg.maxInputTokens(st))
			}
		}
	})
	if err != nil {
		return err
	}
	_ = tw.Flush()
	_, _ = fmt.Fprintf(w, "\n%d rows selected (filter: %s)\n", n, orAll(job.Filter.SQL()))
	return writePlan(w, cfg, plans)
}

// writePlan prints the per-stage estimate.
func writePlan(w io.Writer, cfg Config, plans map[string]*stagePlan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "stage\tprovider\trows\tdistinct texts\trequests\tinput tokens\toutput tokens\tcost sync\tcost batch\t")
	for _, st := range sortedKeys(plans) {
		p := plans[st]
		model, api := cfg.apiModel(st)
		if !api {
			_, _ = fmt.Fprintf(tw, "%s\tlocal\t%d\t%d\t-\t-\t-\t-\t-\t\n", st, p.rows, p.distinct)
			continue
		}
		switch st {
		case "embedding":
			p.requests = ceilDiv(p.distinct, cfg.Stages.Embedding.MaxInputs)
		case "sentiment":
			p.requests = ceilDiv(p.distinct, cfg.Stages.Sentiment.ItemsPerRequest)
			p.inTokens += p.requests*sentimentPromptTokens + p.distinct*sentimentPromptPerInput
			p.outToken = p.distinct * sentimentAnswerPerText
		}
		sync, batch := "unknown", "unknown"
		if c, ok := listCost(model, float64(p.inTokens), float64(p.outToken)); ok {
			sync, batch = fmt.Sprintf("$%.4f", c), fmt.Sprintf("$%.4f", c/2)
		}
		_, _ = fmt.Fprintf(tw, "%s\tapi %s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", st, model, p.rows, p.distinct, p.requests, p.inTokens, p.outToken, sync, batch)
	}
	return tw.Flush()
}

// apiModel returns the model of an API stage, and whether the stage runs
// on an API.
func (c Config) apiModel(stage string) (string, bool) {
	switch {
	case stage == "embedding" && c.Stages.Embedding.Provider == providerAPI:
		return c.Stages.Embedding.Model, true
	case stage == "sentiment" && c.Stages.Sentiment.Provider == providerAPI:
		return c.Stages.Sentiment.Model, true
	}
	return "", false
}

// maxInputTokens is the per-text token budget of an API stage.
func (c Config) maxInputTokens(stage string) int {
	switch stage {
	case "embedding":
		return c.Stages.Embedding.MaxInputTokens
	case "sentiment":
		return c.Stages.Sentiment.MaxInputTokens
	}
	return 1 << 30
}

func ceilDiv(a, b int) int {
	if b <= 0 {
		return a
	}
	return (a + b - 1) / b
}

// preview returns the first n runes of s on one line.
func preview(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func orAll(where string) string {
	if where == "" {
		return "every row"
	}
	return where
}
