package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/textpulse/textpulse/internal/kafka"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// checkTimeout bounds each probe of the check command.
const checkTimeout = 10 * time.Second

// migrator creates or upgrades the tables of a sink. Migrate applies the
// pending migrations in order and returns their names; SchemaVersion
// returns the applied and the latest schema version. Both block on the
// server; an error means the schema is not known to be current.
type migrator interface {
	Migrate(ctx context.Context) ([]string, error)
	SchemaVersion(ctx context.Context) (applied, latest int, err error)
}

// runMigrate is the migrate command: create or upgrade the tables and exit.
func runMigrate(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	octx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	snk := clickhouse.New(cfg.ClickHouse, log, prometheus.NewRegistry())
	if err := snk.Connect(octx); err != nil {
		return err
	}
	defer func() { _ = snk.Close() }()
	server := fmt.Sprintf("ClickHouse %s (%s DDL)", snk.Version(), snk.Dialect())
	return printMigrate(ctx, snk, server, stdout)
}

// printMigrate migrates m and prints what it did.
func printMigrate(ctx context.Context, m migrator, server string, stdout io.Writer) error {
	applied, err := m.Migrate(ctx)
	if err != nil {
		return err
	}
	ver, latest, err := m.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		_, err = fmt.Fprintf(stdout, "schema up to date: version %d on %s\n", ver, server)
		return err
	}
	_, err = fmt.Fprintf(stdout, "applied %s; schema version %d of %d on %s\n",
		strings.Join(applied, ", "), ver, latest, server)
	return err
}

// errCheckFailed is returned by check when a probe found a problem.
var errCheckFailed = errors.New("check found problems")

// runCheck is the check command: connect to Kafka and ClickHouse, report
// what it found, and fail when something is missing.
func runCheck(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	problems := 0
	report := func(ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			problems++
		}
		_, _ = fmt.Fprintf(stdout, "%s %s\n", mark, fmt.Sprintf(format, args...))
	}
	if err := checkKafka(ctx, cfg.Kafka, report); err != nil {
		return err
	}
	checkClickHouse(ctx, cfg.ClickHouse, log, report)
	if cfg.Stages.usesORT() {
		// Loading runs each model once (warm-up), so a model that loads
		// here runs in the consumer.
		set, err := buildStages(ctx, cfg, nil, log, prometheus.NewRegistry())
		if err != nil {
			report(false, "local models: %v", err)
		} else {
			for _, m := range set.models {
				report(true, "%s", m)
			}
			if err := set.Close(); err != nil {
				report(false, "close local models: %v", err)
			}
		}
	}
	checkAPIStages(ctx, cfg, log, report)
	if problems > 0 {
		return fmt.Errorf("%w: %d", errCheckFailed, problems)
	}
	return nil
}

// reportFunc prints one finding of the check command.
type reportFunc func(ok bool, format string, args ...any)

// checkKafka reports the brokers, the topics and the group's lag. An error
// means no client could be created.
func checkKafka(ctx context.Context, cfg kafka.Config, report reportFunc) error {
	opts, err := cfg.ConnOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("create kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	kctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	meta, err := adm.BrokerMetadata(kctx)
	if err != nil {
		report(false, "kafka %s: %v", strings.Join(cfg.Brokers, ","), err)
		return nil
	}
	report(true, "kafka cluster %s: %d broker(s), controller %d", meta.Cluster, len(meta.Brokers), meta.Controller)
	topics := slices.Clone(cfg.Topics)
	if cfg.DeadLetterTopic != "" {
		topics = append(topics, cfg.DeadLetterTopic)
	}
	td, err := adm.ListTopics(kctx, topics...)
	if err != nil {
		report(false, "list topics: %v", err)
	}
	for _, t := range topics {
		d, ok := td[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			report(false, "topic %s does not exist", t)
		case d.Err != nil:
			report(false, "topic %s: %v", t, d.Err)
		default:
			report(true, "topic %s: %d partition(s)", t, len(d.Partitions))
		}
	}
	lags, err := adm.Lag(kctx, cfg.Group)
	if err == nil {
		if gl, ok := lags[cfg.Group]; ok && gl.Error() == nil {
			report(true, "group %s: state %s, %d member(s), lag %d", cfg.Group, gl.State, len(gl.Members), gl.Lag.Total())
		}
	}
	return nil
}

// checkClickHouse reports the server, the schema version and the delivery
// guarantee of the rows.
func checkClickHouse(ctx context.Context, cfg clickhouse.Config, log *slog.Logger, report reportFunc) {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	snk := clickhouse.New(cfg, log, prometheus.NewRegistry())
	if err := snk.Connect(cctx); err != nil {
		report(false, "clickhouse %s: %v", strings.Join(cfg.Addr, ","), err)
		return
	}
	defer func() { _ = snk.Close() }()
	report(true, "clickhouse %s: version %s, %s DDL", strings.Join(cfg.Addr, ","), snk.Version(), snk.Dialect())
	ver, latest, err := snk.SchemaVersion(cctx)
	switch {
	case err != nil:
		report(false, "schema: %v (run the migrate command)", err)
	case ver < latest:
		report(false, "schema version %d, binary expects %d (run the migrate command)", ver, latest)
	default:
		report(true, "schema version %d", ver)
	}
	exact, why, err := snk.Guarantee(cctx)
	switch {
	case err != nil:
		report(false, "rows: %v", err)
	case exact:
		report(true, "rows: exactly once (%s)", why)
	default:
		report(true, "rows: at least once (%s)", why)
	}
}
