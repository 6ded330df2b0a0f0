package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/cenkalti/backoff/v5"

	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
)

// keyAfter is the condition for rows after a key, in key order; its three
// parameters are the key's topic, partition and offset.
const keyAfter = "(kafka_topic, kafka_partition, kafka_offset) > (?, ?, ?)"

// ReadPage returns up to limit stored rows that match the condition where
// (an SQL boolean expression over the main table's columns; "" for every
// row) and come after the key after, in key order, as their newest version
// (FINAL). Status is not read: it follows from FailedStages.
func (c *Sink) ReadPage(ctx context.Context, where string, after processor.RowKey, limit int) ([]processor.Record, error) {
	o := c.Options()
	cols := schemas.ReadColumns()
	exprs := make([]string, len(cols))
	for i, col := range cols {
		exprs[i] = col.SelectExpr(o)
	}
	q := "SELECT " + strings.Join(exprs, ", ") + " FROM " + c.table() + " FINAL WHERE " + c.condition(where) +
		" ORDER BY kafka_topic, kafka_partition, kafka_offset LIMIT " + fmt.Sprint(limit)
	rows, err := c.conn.Query(ctx, q, after.Topic, uint32(after.Partition), uint64(after.Offset)) //nolint:gosec // Coordinates are non-negative.
	if err != nil {
		return nil, fmt.Errorf("read rows after %v: %w", after, err)
	}
	defer func() { _ = rows.Close() }()
	var out []processor.Record
	dest := make([]any, len(cols))
	for rows.Next() {
		out = append(out, processor.Record{})
		r := &out[len(out)-1]
		for i, col := range cols {
			dest[i] = col.Dest(r)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read rows after %v: %w", after, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows after %v: %w", after, err)
	}
	return out, nil
}

// CountRows returns how many stored rows (FINAL) match where and come after
// the key after.
func (c *Sink) CountRows(ctx context.Context, where string, after processor.RowKey) (uint64, error) {
	var n uint64
	q := "SELECT count() FROM " + c.table() + " FINAL WHERE " + c.condition(where)
	if err := c.conn.QueryRow(ctx, q, after.Topic, uint32(after.Partition), uint64(after.Offset)).Scan(&n); err != nil { //nolint:gosec // Coordinates are non-negative.
		return 0, fmt.Errorf("count rows: %w", err)
	}
	return n, nil
}

// table is the main table as queries name it.
func (c *Sink) table() string {
	return quoteIdent(c.cfg.Database) + "." + quoteIdent(c.Options().InsertTable())
}

// condition is where, in parentheses, and the key condition.
func (c *Sink) condition(where string) string {
	if strings.TrimSpace(where) == "" {
		return keyAfter
	}
	return "(" + where + ") AND " + keyAfter
}

// WriteRevision writes the records of b as new versions of stored rows
// (each Record.Revision already raised by the caller) and moves their
// counts in the per-minute rollup from old, the versions they replace
// (old[i] is the stored version of b.Records[i]), to the new ones. Both
// inserts carry deduplication tokens from b.DedupScope and b's keys, so a
// repeat of the same write adds nothing where the server deduplicates
// inserts. It retries as Write does; see Write for what an error means.
func (c *Sink) WriteRevision(ctx context.Context, b *processor.Batch, old []processor.Record) error {
	if len(old) != len(b.Records) {
		return fmt.Errorf("write revision of batch %s: %d old rows for %d records", b.ID, len(old), len(b.Records))
	}
	if err := c.Write(ctx, b); err != nil {
		return err
	}
	rows := rollupDelta(old, b.Records)
	if len(rows) == 0 {
		return nil
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = c.cfg.RetryInitial, c.cfg.RetryMax
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := c.writeRollup(ctx, b.DedupToken()+":rollup", rows)
		if err != nil && classify(err) != classTransient {
			return struct{}{}, backoff.Permanent(err)
		}
		if err != nil {
			c.log.Warn("correct rollup, will retry", "batch", b.ID, "err", err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("write revision of batch %s: %w", b.ID, err)
	}
	return nil
}

// rollupKey is the group of one row in the per-minute rollup.
type rollupKey struct {
	minute                                      time.Time
	topic, source, lang, sentiment, emotionName string
}

// rollupRow is the change of one rollup group.
type rollupRow struct {
	events, scored, partial int64
	scoreSum                float64
}

// rollupDelta returns the change of the rollup when the rows of old are
// replaced by those of new: each old row's contribution taken out of its
// group and each new one's added to its group, groups that do not change
// left out.
func rollupDelta(old, new []processor.Record) map[rollupKey]rollupRow {
	out := map[rollupKey]rollupRow{}
	add := func(r *processor.Record, sign int64) {
		var e processor.Enrichment
		if r.Enrichment != nil {
			e = *r.Enrichment
		}
		k := rollupKey{minute: r.CreatedAt.UTC().Truncate(time.Minute), topic: r.Topic, source: r.Source,
			lang: r.Lang, sentiment: e.SentimentLabel, emotionName: e.EmotionLabel}
		d := out[k]
		d.events += sign
		if e.SentimentLabel != "" {
			d.scored += sign
			d.scoreSum += float64(sign) * float64(e.SentimentScore)
		}
		if r.Status() == "partial" {
			d.partial += sign
		}
		out[k] = d
	}
	for i := range old {
		add(&old[i], -1)
		add(&new[i], 1)
	}
	for k, d := range out {
		if d.events == 0 && d.scored == 0 && d.partial == 0 && d.scoreSum == 0 {
			delete(out, k)
		}
	}
	return out
}

// writeRollup inserts rows into the rollup table with the deduplication
// token.
func (c *Sink) writeRollup(ctx context.Context, token string, rows map[rollupKey]rollupRow) error {
	if settings := schemas.InsertSettings(c.Options(), token); len(settings) > 0 {
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings(settings)))
	}
	batch, err := c.conn.PrepareBatch(ctx, insertSQL(c.cfg.Database, c.Options().InsertTable()+"_per_minute", []string{
		"minute", "kafka_topic", "source", "lang", "sentiment_label", "emotion_label",
		"events", "sentiment_score_sum", "sentiment_scored", "partial",
	}))
	if err != nil {
		return fmt.Errorf("prepare rollup correction: %w", err)
	}
	for k, d := range rows {
		if err := batch.Append(k.minute, k.topic, k.source, k.lang, k.sentiment, k.emotionName,
			d.events, d.scoreSum, d.scored, d.partial); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("append rollup correction: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send rollup correction: %w", err)
	}
	return nil
}
