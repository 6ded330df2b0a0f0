package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/testenv"
)

// TestLagMeasured consumes a topic on the real broker with a member that
// committed part of one partition, and checks that Lag is what remains.
func TestLagMeasured(t *testing.T) {
	k := itest.NewKafka(t, testenv.KafkaBrokers(t))
	topic, group := testenv.Name("lag"), testenv.Name("lag-group")
	k.CreateTopic(t, topic, 2)
	values := make([][]byte, 30)
	for i := range values {
		values[i] = fmt.Appendf(nil, "v%d", i)
	}
	k.Produce(t, topic, 2, values)

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var got []*kgo.Record
	itest.Eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		got = append(got, cl.PollFetches(ctx).Records()...)
		return len(got) == len(values), fmt.Sprintf("%d of %d records", len(got), len(values))
	})
	var commit *kgo.Record
	for _, r := range got {
		if r.Partition == 0 && r.Offset == 4 {
			commit = r
		}
	}
	if err := cl.CommitRecords(t.Context(), commit); err != nil {
		t.Fatal(err)
	}
	m := NewLagMonitor(cl, group, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if lag := m.Lag(); lag != -1 {
		t.Fatalf("Lag() before a measurement = %d, want -1", lag)
	}
	// Partition 0 holds 15 records with 5 committed, partition 1 holds 15.
	const want = 10 + 15
	itest.Eventually(t, 15*time.Second, func() (bool, string) {
		m.Update(t.Context())
		return m.Lag() == want, fmt.Sprintf("Lag() = %d, want %d", m.Lag(), want)
	})
}
