package processor

import (
	"strconv"
	"time"
)

// batcher owns the cut policy of the batch being accumulated: it starts a
// batch, sizes it, and says when it is due (MaxRecords, MaxBytes, MaxWait
// after its first record). It is used by one loop goroutine only.
type batcher struct {
	maxRecords int
	maxBytes   int
	maxWait    time.Duration
	// now is the clock the age of a batch is read from.
	now func() time.Time
	// seq numbers batches; the batchers of one pipeline share it so that
	// batch IDs stay unique across runs.
	seq *uint64
	acc *Batch
	due time.Time
	// spare holds the record slices of retired batches, cleared, for the
	// next batches to fill: a slice reused is memory the runtime neither
	// zeroes nor faults in again (see recycle).
	spare [][]Record
}

// maxSpare is how many retired record slices a batcher keeps.
const maxSpare = 2

// newBatcher returns a batcher for cfg; a nil now reads real time.
func newBatcher(cfg BatchConfig, seq *uint64, now func() time.Time) *batcher {
	if now == nil {
		now = time.Now
	}
	return &batcher{maxRecords: cfg.MaxRecords, maxBytes: cfg.MaxBytes, maxWait: cfg.MaxWait, now: now, seq: seq}
}

// pending returns the batch being accumulated, or nil.
func (c *batcher) pending() *Batch { return c.acc }

// start starts a batch if there is none and returns the pending batch.
func (c *batcher) start() *Batch {
	if c.acc == nil {
		*c.seq++
		c.acc = NewBatch(strconv.FormatUint(*c.seq, 10))
		c.due = c.now().Add(c.maxWait)
	}
	return c.acc
}

// take returns the pending batch, or nil, and forgets it.
func (c *batcher) take() *Batch {
	b := c.acc
	c.acc = nil
	return b
}

// room is how many records the pending batch may still take.
func (c *batcher) room() int {
	if c.acc == nil {
		return c.maxRecords
	}
	return c.maxRecords - c.acc.Len()
}

// wait is how long a poll may wait: MaxWait without a pending batch, else
// until the pending batch is due (zero or less when it is).
func (c *batcher) wait() time.Duration {
	if c.acc == nil {
		return c.maxWait
	}
	return c.due.Sub(c.now())
}

// bytesReached reports whether the pending batch holds MaxBytes or more.
func (c *batcher) bytesReached() bool {
	return c.acc != nil && c.acc.held >= c.maxBytes
}

// ready reports whether the pending batch is to be cut: it holds MaxRecords
// records or MaxBytes bytes, or its MaxWait has passed.
func (c *batcher) ready() bool {
	if c.acc == nil {
		return false
	}
	return c.acc.Len() >= c.maxRecords || c.acc.held >= c.maxBytes || !c.now().Before(c.due)
}

// grow makes room for n more records in the pending batch, but no more
// than fit (see fitting), at least doubling its capacity (up to MaxRecords)
// so that a batch built from many polls is copied a logarithmic number of
// times. After a poll of MaxRecords/backlogPoll records or more it makes
// room for the whole batch at once, so that a batch is not copied at all
// while a backlog drains.
func (c *batcher) grow(n, fit int) {
	if c.acc == nil || n <= 0 {
		return
	}
	rs := c.acc.Records
	if n >= c.maxRecords/backlogPoll {
		// A poll this large means a backlog: the batch will fill up.
		n = c.maxRecords
	}
	need := len(rs) + min(n, fit, c.maxRecords-len(rs))
	if need <= cap(rs) {
		return
	}
	newCap := max(min(max(need, 2*cap(rs)), c.maxRecords), need)
	grown := c.reuse(need)
	if grown == nil {
		grown = make([]Record, 0, newCap)
	}
	c.acc.Records = append(grown, rs...)
}

// recycle keeps rs, the records of a batch that nothing references any
// more, for a later batch. Its elements are cleared first, so that a spare
// holds no event bytes alive.
func (c *batcher) recycle(rs []Record) {
	if len(c.spare) >= maxSpare || cap(rs) < c.maxRecords/backlogPoll {
		return
	}
	clear(rs[:cap(rs)])
	c.spare = append(c.spare, rs[:0])
}

// reuse returns an empty spare slice of capacity need or more, or nil.
func (c *batcher) reuse(need int) []Record {
	for i, s := range c.spare {
		if cap(s) >= need {
			c.spare = append(c.spare[:i], c.spare[i+1:]...)
			return s
		}
	}
	return nil
}

// backlogPoll is the share of MaxRecords (1/backlogPoll) from which a
// poll is taken for a sign of a backlog.
const backlogPoll = 8

// fitting is how many more records of about recordBytes each (value and
// expected results, as held counts them) the pending batch takes before
// MaxBytes cuts it; at least 1.
func (c *batcher) fitting(recordBytes int) int {
	held := 0
	if c.acc != nil {
		held = c.acc.held
	}
	return max(1, (c.maxBytes-held)/max(recordBytes, 1)+1)
}
