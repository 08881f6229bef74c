package batch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// gate is a Fetch whose round trips each wait until the test lets them go,
// recording the keys of each.
type gate struct {
	mu      sync.Mutex
	batches [][]int
	ctxs    []context.Context
	started chan []int    // receives the keys of each round trip as it starts
	release chan struct{} // one value lets one round trip finish
	fail    error         // when set, every round trip fails with it
}

func newGate() *gate {
	return &gate{started: make(chan []int, 100), release: make(chan struct{})}
}

func (g *gate) fetch(ctx context.Context, keys []int) ([]Result[string], error) {
	g.mu.Lock()
	g.batches = append(g.batches, slices.Clone(keys))
	g.ctxs = append(g.ctxs, ctx)
	g.mu.Unlock()
	g.started <- slices.Clone(keys)
	<-g.release
	if g.fail != nil {
		return nil, g.fail
	}
	out := make([]Result[string], len(keys))
	for i, k := range keys {
		if k < 0 {
			out[i].Err = fmt.Errorf("no key %d", k)
		} else {
			out[i].Value = fmt.Sprint("v", k)
		}
	}
	return out, nil
}

// queued waits until n callers wait in b's queue.
func queued[K, V any](t *testing.T, b *Batcher[K, V], n int) {
	t.Helper()
	for range 10000 {
		b.mu.Lock()
		got := len(b.queue)
		b.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the queue never held %d callers", n)
}

// idle waits until b has no round trip in flight and its draining goroutine
// has exited (the goroutine count is back to before).
func idle[K, V any](t *testing.T, b *Batcher[K, V], goroutines int) {
	t.Helper()
	for range 10000 {
		b.mu.Lock()
		n, q := b.inFlight, len(b.queue)
		b.mu.Unlock()
		if n == 0 && q == 0 && runtime.NumGoroutine() <= goroutines {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the batcher did not go idle: %d goroutines, want %d", runtime.NumGoroutine(), goroutines)
}

type answer struct {
	key int
	val string
	err error
}

// getAll starts a Get of each key in its own goroutine, each waiting until
// the one before is queued, so that the batch's order is keys' order.
func getAll(t *testing.T, b *Batcher[int, string], ctx context.Context, queuedBefore int, keys ...int) chan answer {
	out := make(chan answer, len(keys))
	for i, k := range keys {
		go func() {
			v, err := b.Get(ctx, k)
			out <- answer{k, v, err}
		}()
		queued(t, b, queuedBefore+i+1)
	}
	return out
}

func collect(t *testing.T, ch chan answer, n int) map[int]answer {
	t.Helper()
	got := make(map[int]answer)
	for range n {
		a := <-ch
		got[a.key] = a
	}
	return got
}

func TestLoneGetIsSentAtOnceUnderItsCallersContext(t *testing.T) {
	g := newGate()
	b := New(g.fetch, Options{})
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "mine")
	done := make(chan answer)
	go func() {
		v, err := b.Get(ctx, 7)
		done <- answer{7, v, err}
	}()
	if keys := <-g.started; !slices.Equal(keys, []int{7}) {
		t.Fatalf("round trip of %v, want [7]", keys)
	}
	g.release <- struct{}{}
	if a := <-done; a.val != "v7" || a.err != nil {
		t.Fatalf("Get = %q, %v; want v7, nil", a.val, a.err)
	}
	if g.ctxs[0].Value(key{}) != "mine" {
		t.Error("a lone lookup did not run under its caller's context")
	}
	if _, ok := g.ctxs[0].Deadline(); !ok {
		t.Error("a lone lookup without a deadline ran without one")
	}

	// A caller's own deadline is kept.
	deadline := time.Now().Add(time.Hour)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	go func() {
		v, err := b.Get(dctx, 8)
		done <- answer{8, v, err}
	}()
	<-g.started
	g.release <- struct{}{}
	<-done
	if g.ctxs[1] != dctx {
		t.Error("a lone lookup with a deadline did not run under its caller's context")
	}
}

func TestGetsQueuedDuringARoundTripShareTheNext(t *testing.T) {
	before := runtime.NumGoroutine()
	g := newGate()
	b := New(g.fetch, Options{})
	ctx := context.Background()
	first := getAll(t, b, ctx, -1, 1) // sent at once, never queued
	<-g.started
	rest := getAll(t, b, ctx, 0, 2, 3, -4, 5)
	g.release <- struct{}{}
	if a := <-first; a.val != "v1" || a.err != nil {
		t.Fatalf("first Get = %q, %v", a.val, a.err)
	}
	if keys := <-g.started; !slices.Equal(keys, []int{2, 3, -4, 5}) {
		t.Fatalf("second round trip fetched %v, want [2 3 -4 5]", keys)
	}
	g.release <- struct{}{}
	got := collect(t, rest, 4)
	for _, k := range []int{2, 3, 5} {
		if a := got[k]; a.val != fmt.Sprint("v", k) || a.err != nil {
			t.Errorf("Get(%d) = %q, %v", k, a.val, a.err)
		}
	}
	if a := got[-4]; a.err == nil || a.val != "" {
		t.Errorf("Get(-4) = %q, %v; want its own error", a.val, a.err)
	}
	idle(t, b, before)
	if len(g.batches) != 2 {
		t.Errorf("%d round trips, want 2: %v", len(g.batches), g.batches)
	}
}

func TestBatchesAreCapped(t *testing.T) {
	g := newGate()
	b := New(g.fetch, Options{MaxBatch: 3})
	ctx := context.Background()
	first := getAll(t, b, ctx, -1, 0)
	<-g.started
	rest := getAll(t, b, ctx, 0, 1, 2, 3, 4, 5, 6, 7)
	for _, want := range [][]int{{1, 2, 3}, {4, 5, 6}, {7}} {
		g.release <- struct{}{}
		if keys := <-g.started; !slices.Equal(keys, want) {
			t.Fatalf("round trip of %v, want %v", keys, want)
		}
	}
	g.release <- struct{}{}
	<-first
	if got := collect(t, rest, 7); len(got) != 7 {
		t.Fatalf("%d answers, want 7", len(got))
	}
}

func TestAFailedRoundTripFailsEveryCallerInIt(t *testing.T) {
	g := newGate()
	b := New(g.fetch, Options{})
	ctx := context.Background()
	first := getAll(t, b, ctx, -1, 1)
	<-g.started
	rest := getAll(t, b, ctx, 0, 2, 3)
	g.release <- struct{}{}
	<-first
	<-g.started
	down := errors.New("connection refused")
	g.mu.Lock()
	g.fail = down
	g.mu.Unlock()
	g.release <- struct{}{}
	for k, a := range collect(t, rest, 2) {
		if !errors.Is(a.err, down) || a.val != "" {
			t.Errorf("Get(%d) = %q, %v; want the round trip's error", k, a.val, a.err)
		}
	}
	// A lone lookup fails the same way.
	lone := getAll(t, b, ctx, -1, 9)
	<-g.started
	g.release <- struct{}{}
	if a := <-lone; !errors.Is(a.err, down) {
		t.Errorf("lone Get = %q, %v; want the round trip's error", a.val, a.err)
	}
}

func TestAWrongNumberOfResultsFailsTheBatch(t *testing.T) {
	short := func(ctx context.Context, keys []int) ([]Result[int], error) {
		return make([]Result[int], len(keys)-1), nil
	}
	b := New(short, Options{})
	if _, err := b.Get(context.Background(), 1); !errors.Is(err, errWrongCount) {
		t.Fatalf("Get = %v, want errWrongCount", err)
	}
}

func TestACallerWhoseContextEndsStopsWaiting(t *testing.T) {
	before := runtime.NumGoroutine()
	g := newGate()
	b := New(g.fetch, Options{})
	first := getAll(t, b, context.Background(), -1, 1)
	<-g.started
	ctx, cancel := context.WithCancel(context.Background())
	gone := getAll(t, b, ctx, 0, 2)
	stays := getAll(t, b, context.Background(), 1, 3)
	cancel()
	if a := <-gone; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("Get with a cancelled context = %q, %v; want context.Canceled", a.val, a.err)
	}
	g.release <- struct{}{}
	<-first
	// The cancelled caller's key is not fetched.
	if keys := <-g.started; !slices.Equal(keys, []int{3}) {
		t.Fatalf("round trip of %v, want [3]", keys)
	}
	g.release <- struct{}{}
	if a := <-stays; a.val != "v3" || a.err != nil {
		t.Fatalf("Get(3) = %q, %v", a.val, a.err)
	}
	idle(t, b, before)

	// A context that has already ended is refused before any round trip.
	if _, err := b.Get(ctx, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with an ended context = %v", err)
	}
}

func TestACallerLeavingDoesNotCancelItsBatch(t *testing.T) {
	g := newGate()
	b := New(g.fetch, Options{})
	first := getAll(t, b, context.Background(), -1, 1)
	<-g.started
	ctx, cancel := context.WithCancel(context.Background())
	leaving := getAll(t, b, ctx, 0, 2)
	stays := getAll(t, b, context.Background(), 1, 3)
	g.release <- struct{}{}
	<-first
	<-g.started // the batch [2 3] is in flight
	cancel()
	<-leaving
	g.mu.Lock()
	batchCtx := g.ctxs[1]
	g.mu.Unlock()
	if batchCtx.Err() != nil {
		t.Fatal("the batch's context ended with one of its callers")
	}
	g.release <- struct{}{}
	if a := <-stays; a.val != "v3" || a.err != nil {
		t.Fatalf("Get(3) = %q, %v", a.val, a.err)
	}
}

func TestABatchRunsUntilItsLatestCallersDeadline(t *testing.T) {
	g := newGate()
	timeout := 5 * time.Minute
	b := New(g.fetch, Options{Timeout: timeout})
	first := getAll(t, b, context.Background(), -1, 1)
	<-g.started
	soon := time.Now().Add(time.Hour)
	later := soon.Add(time.Hour)
	ctx1, cancel1 := context.WithDeadline(context.Background(), soon)
	defer cancel1()
	ctx2, cancel2 := context.WithDeadline(context.Background(), later)
	defer cancel2()
	answers := getAll(t, b, ctx1, 0, 2)
	answers2 := getAll(t, b, ctx2, 1, 3)
	g.release <- struct{}{}
	<-first
	<-g.started
	g.mu.Lock()
	batchCtx := g.ctxs[1]
	g.mu.Unlock()
	if d, ok := batchCtx.Deadline(); !ok || !d.Equal(later) {
		t.Errorf("batch deadline %v, %v; want %v", d, ok, later)
	}
	g.release <- struct{}{}
	<-answers
	<-answers2

	// Callers without a deadline: the batch is bounded by Timeout.
	first = getAll(t, b, context.Background(), -1, 1)
	<-g.started
	answers = getAll(t, b, context.Background(), 0, 2)
	start := time.Now()
	g.release <- struct{}{}
	<-first
	<-g.started
	g.mu.Lock()
	batchCtx = g.ctxs[3]
	g.mu.Unlock()
	d, ok := batchCtx.Deadline()
	if !ok || d.Before(start.Add(timeout)) || d.After(time.Now().Add(timeout)) {
		t.Errorf("batch deadline %v, %v; want Timeout after the batch started", d, ok)
	}
	g.release <- struct{}{}
	<-answers
}

func TestSeveralRoundTripsInFlight(t *testing.T) {
	g := newGate()
	b := New(g.fetch, Options{MaxInFlight: 2})
	ctx := context.Background()
	one := getAll(t, b, ctx, -1, 1)
	two := getAll(t, b, ctx, -1, 2)
	<-g.started
	<-g.started // both sent at once
	queuedAns := getAll(t, b, ctx, 0, 3, 4)
	g.release <- struct{}{}
	if keys := <-g.started; !slices.Equal(keys, []int{3, 4}) {
		t.Fatalf("round trip of %v, want [3 4]", keys)
	}
	g.release <- struct{}{}
	g.release <- struct{}{}
	<-one
	<-two
	collect(t, queuedAns, 2)
}

func TestAPanickingLoneFetchFreesItsSlot(t *testing.T) {
	calls := 0
	b := New(func(ctx context.Context, keys []int) ([]Result[int], error) {
		calls++
		if calls == 1 {
			panic("boom")
		}
		return []Result[int]{{Value: keys[0]}}, nil
	}, Options{})
	func() {
		defer func() { _ = recover() }()
		_, _ = b.Get(context.Background(), 1)
	}()
	if v, err := b.Get(context.Background(), 2); v != 2 || err != nil {
		t.Fatalf("Get after a panic = %d, %v", v, err)
	}
}

// TestManyConcurrentGets checks, under -race, that every caller gets the
// answer for its own key whatever the batching.
func TestManyConcurrentGets(t *testing.T) {
	before := runtime.NumGoroutine()
	var mu sync.Mutex
	var sizes []int
	b := New(func(ctx context.Context, keys []int) ([]Result[int], error) {
		mu.Lock()
		sizes = append(sizes, len(keys))
		mu.Unlock()
		runtime.Gosched()
		out := make([]Result[int], len(keys))
		for i, k := range keys {
			out[i].Value = k * 10
		}
		return out, nil
	}, Options{MaxBatch: 16})
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 200 {
				k := w*1000 + i
				if v, err := b.Get(context.Background(), k); v != k*10 || err != nil {
					t.Errorf("Get(%d) = %d, %v", k, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	idle(t, b, before)
	total := 0
	for _, n := range sizes {
		if n > 16 {
			t.Errorf("a batch of %d keys, over MaxBatch 16", n)
		}
		total += n
	}
	if total != 32*200 {
		t.Errorf("%d keys fetched, want %d", total, 32*200)
	}
}
