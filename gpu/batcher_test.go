package gpu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeRun records every batch and answers each item with its own ids as
// floats, so that a caller can check it got its own rows back.
type fakeRun struct {
	mu      sync.Mutex
	batches [][]int       // lengths of the texts of each batch, in batch order
	entered chan struct{} // if set, receives once per batch on entry
	gate    chan struct{} // if set, run blocks until it is closed
	err     error
}

func (f *fakeRun) run(items []*item) error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	lens := make([]int, len(items))
	for i, it := range items {
		lens[i] = len(it.enc.ids)
	}
	f.batches = append(f.batches, lens)
	f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	for _, it := range items {
		out := make([]float32, len(it.enc.ids))
		for j, id := range it.enc.ids {
			out[j] = float32(id)
		}
		it.out = out
	}
	return nil
}

func (f *fakeRun) snapshot() [][]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]int(nil), f.batches...)
}

func newTestBatcher(t *testing.T, maxBatch int, maxWait time.Duration, bucket bool, f *fakeRun) *batcher {
	t.Helper()
	b := newBatcher(maxBatch, maxWait, bucket, f.run, newMetrics("test", nil))
	t.Cleanup(func() { b.stop(nil) })
	return b
}

// enc makes a text of n tokens whose ids all equal tag.
func enc(tag int64, n int) encoding {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = tag
	}
	return encoding{ids: ids}
}

func TestBatcherRoutesConcurrentCallers(t *testing.T) {
	f := &fakeRun{}
	b := newTestBatcher(t, 8, 2*time.Millisecond, true, f)
	const callers, perCaller = 16, 13
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			encs := make([]encoding, perCaller)
			for i := range encs {
				// Tag = caller*100+i; lengths vary so that sorting reorders.
				encs[i] = enc(int64(c*100+i), 1+(c*7+i*5)%17)
			}
			out, err := b.submit(context.Background(), encs)
			if err != nil {
				errs <- err
				return
			}
			for i, row := range out {
				if len(row) != len(encs[i].ids) || row[0] != float32(c*100+i) {
					errs <- fmt.Errorf("caller %d text %d got row %v", c, i, row)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	texts := 0
	for _, batch := range f.snapshot() {
		if len(batch) > 8 {
			t.Errorf("batch of %d texts exceeds max_batch 8", len(batch))
		}
		texts += len(batch)
	}
	if texts != callers*perCaller {
		t.Errorf("ran %d texts, want %d", texts, callers*perCaller)
	}
	if got := testutil.ToFloat64(b.metrics.texts); got != callers*perCaller {
		t.Errorf("texts_total = %v, want %d", got, callers*perCaller)
	}
}

// TestBatcherBucketing: with bucketing the gathered texts are sorted by
// length before they are cut into batches, which cuts padding.
func TestBatcherBucketing(t *testing.T) {
	lengths := []int{3, 40, 5, 38, 4, 41, 6, 39, 2, 37, 7, 36}
	padding := map[bool]int64{}
	for _, bucket := range []bool{false, true} {
		f := &fakeRun{}
		b := newTestBatcher(t, 4, time.Millisecond, bucket, f)
		encs := make([]encoding, len(lengths))
		for i, n := range lengths {
			encs[i] = enc(int64(i), n)
		}
		out, err := b.submit(context.Background(), encs)
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range out { // order of results is the order of texts
			if row[0] != float32(i) {
				t.Fatalf("bucket=%v: text %d got row of text %v", bucket, i, row[0])
			}
		}
		batches := f.snapshot()
		if len(batches) != 3 {
			t.Fatalf("bucket=%v: %d batches, want 3", bucket, len(batches))
		}
		if bucket {
			want := "[[2 3 4 5] [6 7 36 37] [38 39 40 41]]"
			if got := fmt.Sprint(batches); got != want {
				t.Errorf("bucketed batches %s, want %s", got, want)
			}
		}
		padding[bucket] = b.paddedTokens.Load()
	}
	// Arrival order pads [3 40 5 38] [4 41 6 39] [2 37 7 36] to 40, 41 and
	// 37 tokens: 214 padding tokens; sorted, 6 + 62 + 6 = 74.
	if padding[false] != 214 || padding[true] != 74 {
		t.Errorf("padding tokens: arrival order %d, bucketed %d; want 214 and 74", padding[false], padding[true])
	}
}

func TestBatcherMaxWait(t *testing.T) {
	t.Run("waits to fill a batch", func(t *testing.T) {
		f := &fakeRun{}
		const wait = 200 * time.Millisecond
		b := newTestBatcher(t, 100, wait, true, f)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				if i == 1 {
					time.Sleep(20 * time.Millisecond)
				}
				if _, err := b.submit(context.Background(), []encoding{enc(1, 3)}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if el := time.Since(start); el < wait {
			t.Errorf("returned after %s, before max_wait %s", el, wait)
		}
		if got := f.snapshot(); len(got) != 1 || len(got[0]) != 2 {
			t.Errorf("batches %v, want both texts in one batch", got)
		}
	})
	t.Run("full batch does not wait", func(t *testing.T) {
		f := &fakeRun{}
		b := newTestBatcher(t, 2, time.Hour, true, f)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := b.submit(ctx, []encoding{enc(1, 3), enc(2, 4)}); err != nil {
			t.Fatalf("a full batch waited for max_wait: %v", err)
		}
	})
}

func TestBatcherCancellation(t *testing.T) {
	f := &fakeRun{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	b := newTestBatcher(t, 1, 0, true, f)
	// The first call occupies the worker inside run.
	first := make(chan error, 1)
	go func() {
		_, err := b.submit(context.Background(), []encoding{enc(1, 2)})
		first <- err
	}()
	<-f.entered // the worker is blocked in run with the first call
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := b.submit(ctx, []encoding{enc(2, 5)})
		second <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled call returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled call did not return while the worker was busy")
	}
	close(f.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The cancelled text is dropped, never run.
	third, err := b.submit(context.Background(), []encoding{enc(3, 4)})
	if err != nil || third[0][0] != 3 {
		t.Fatalf("third call: %v %v", third, err)
	}
	for _, batch := range f.snapshot() {
		for _, n := range batch {
			if n == 5 {
				t.Errorf("the cancelled text was run: batches %v", f.snapshot())
			}
		}
	}
	if _, err := b.submit(ctx, []encoding{enc(4, 1)}); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a cancelled context returned %v", err)
	}
}

func TestBatcherCloseAndErrors(t *testing.T) {
	t.Run("close fails pending and later calls", func(t *testing.T) {
		f := &fakeRun{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
		b := newBatcher(1, 0, true, f.run, newMetrics("test", nil))
		results := make(chan error, 3)
		for i := range 3 {
			go func() {
				_, err := b.submit(context.Background(), []encoding{enc(int64(i), 2)})
				results <- err
			}()
		}
		<-f.entered // one call is running, the others are queued
		stopped := make(chan struct{})
		go func() { b.stop(nil); close(stopped) }()
		<-b.quit      // stop has begun
		close(f.gate) // let the running batch finish
		<-stopped
		closed := 0
		for range 3 {
			if err := <-results; errors.Is(err, ErrClosed) {
				closed++
			} else if err != nil {
				t.Errorf("pending call: %v", err)
			}
		}
		if closed < 2 {
			t.Errorf("%d pending calls failed with ErrClosed, want at least 2", closed)
		}
		if _, err := b.submit(context.Background(), []encoding{enc(9, 1)}); !errors.Is(err, ErrClosed) {
			t.Errorf("call after stop: %v, want ErrClosed", err)
		}
	})
	t.Run("run error reaches every caller and is retryable", func(t *testing.T) {
		f := &fakeRun{err: fmt.Errorf("%w: out of memory", ErrInference)}
		b := newTestBatcher(t, 4, time.Millisecond, true, f)
		_, err := b.submit(context.Background(), []encoding{enc(1, 2), enc(2, 3)})
		if !errors.Is(err, ErrInference) || !retryable(err) || !strings.Contains(err.Error(), "out of memory") {
			t.Errorf("error %v, want a retryable ErrInference", err)
		}
	})
	t.Run("empty call", func(t *testing.T) {
		b := newTestBatcher(t, 4, time.Millisecond, true, &fakeRun{})
		out, err := b.submit(context.Background(), nil)
		if err != nil || len(out) != 0 {
			t.Errorf("empty call: %v %v", out, err)
		}
	})
}

// retryable reports whether err says by its Retryable method that the call
// may succeed when repeated, as processor.IsRetryable reads it.
func retryable(err error) bool {
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}
