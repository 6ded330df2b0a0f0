package kafka

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LagMonitor publishes the consumer lag of the partitions this member owns:
// the high watermark minus the group's committed offset. Summing the gauge
// over all members gives the group's lag without double counting.
type LagMonitor struct {
	// total is the sum of the last measurement, -1 before the first.
	total atomic.Int64

	cl    *kgo.Client
	adm   *kadm.Client
	group string
	log   *slog.Logger
	lag   *prometheus.GaugeVec
	seen  map[[2]string]bool
}

// NewLagMonitor returns a monitor for group using cl.
func NewLagMonitor(cl *kgo.Client, group string, log *slog.Logger, reg prometheus.Registerer) *LagMonitor {
	f := promauto.With(reg)
	m := &LagMonitor{
		cl:    cl,
		adm:   kadm.NewClient(cl),
		group: group,
		log:   log,
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "textpulse_consumer_lag_records",
			Help: "Records between the group's committed offset and the high watermark, per partition owned by this member.",
		}, []string{"topic", "partition"}),
		seen: make(map[[2]string]bool),
	}
	m.total.Store(-1)
	return m
}

// Lag returns the records between the group's committed offsets and the
// high watermarks, summed over the partitions this member owned at the
// last successful measurement (with a single member, the group's lag). It
// is -1 before the first measurement, 0 while the member owns no
// partition, and keeps its value while a measurement fails. It is safe for
// concurrent use.
func (m *LagMonitor) Lag() int64 { return m.total.Load() }

// Run updates the gauges every interval until ctx is done.
func (m *LagMonitor) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.Update(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Update computes the lag once.
func (m *LagMonitor) Update(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lags, err := m.adm.Lag(ctx, m.group)
	if err != nil {
		m.log.Debug("compute consumer lag", "err", err)
		return
	}
	gl, ok := lags[m.group]
	if !ok {
		return
	}
	if err := gl.Error(); err != nil {
		m.log.Debug("compute consumer lag", "err", err)
		return
	}
	memberID, _ := m.cl.GroupMetadata()
	now := make(map[[2]string]bool)
	var total int64
	for _, l := range gl.Lag.Sorted() {
		if l.Member == nil || l.Member.MemberID != memberID || l.Lag < 0 {
			continue
		}
		key := [2]string{l.Topic, strconv.Itoa(int(l.Partition))}
		now[key] = true
		m.lag.WithLabelValues(key[0], key[1]).Set(float64(l.Lag))
		total += l.Lag
	}
	for key := range m.seen {
		if !now[key] {
			m.lag.DeleteLabelValues(key[0], key[1])
		}
	}
	m.seen = now
	m.total.Store(total)
}
