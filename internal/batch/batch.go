// Package batch gathers concurrent lookups into shared round trips: while
// one round trip to a store is in flight, the lookups that arrive wait in a
// queue, and the next round trip fetches all of them at once. A lookup that
// finds the store idle is sent at once, by its own goroutine, so batching
// adds no timer and no latency when there is nothing to gather; under load
// it saves a round trip (and the store's work per command) for every key
// after the first of a batch.
//
// Every lookup still reads the store after it was asked for: a batch only
// ever holds keys queued before it was sent. Nothing is cached.
package batch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultMaxBatch is the most keys one round trip fetches when
// Options.MaxBatch is zero.
const DefaultMaxBatch = 128

// DefaultTimeout bounds a round trip whose callers set no deadline, when
// Options.Timeout is zero.
const DefaultTimeout = 3 * time.Second

// Result is the outcome of one key of a batch.
type Result[V any] struct {
	Value V
	Err   error
}

// Fetch looks keys up in one round trip. It returns one Result per key, in
// the order of keys, or an error if the round trip as a whole failed, which
// then fails every caller of the batch.
type Fetch[K, V any] func(ctx context.Context, keys []K) ([]Result[V], error)

// Options tune a Batcher. The zero value is ready to use.
type Options struct {
	// MaxBatch is the most keys one round trip fetches; callers beyond it
	// wait for the next one. The default is DefaultMaxBatch.
	MaxBatch int

	// MaxInFlight is how many round trips may be in flight at once. A
	// lookup is sent at once while fewer are; otherwise it queues. The
	// default is 1, which gathers the most per round trip.
	MaxInFlight int

	// Timeout is the deadline of a caller that has none: a round trip runs
	// until the latest of its callers' deadlines, so that none can hold
	// the others' turn for ever. The default is DefaultTimeout.
	Timeout time.Duration
}

// A Batcher runs lookups through a Fetch, gathering those that arrive while
// a round trip is in flight. It is safe for concurrent use. It holds no
// goroutine while idle, so it needs no Close: the goroutine that sends
// queued batches exits as soon as the queue is empty.
type Batcher[K, V any] struct {
	fetch       Fetch[K, V]
	maxBatch    int
	maxInFlight int
	timeout     time.Duration

	mu       sync.Mutex
	queue    []*call[K, V] // not empty only while inFlight == maxInFlight
	inFlight int
}

// call is one caller's lookup.
type call[K, V any] struct {
	ctx  context.Context
	key  K
	res  Result[V]
	done chan struct{} // closed once res is set
}

// New returns a Batcher that looks keys up with fetch.
func New[K, V any](fetch Fetch[K, V], opts Options) *Batcher[K, V] {
	b := &Batcher[K, V]{fetch: fetch, maxBatch: opts.MaxBatch, maxInFlight: opts.MaxInFlight, timeout: opts.Timeout}
	if b.maxBatch <= 0 {
		b.maxBatch = DefaultMaxBatch
	}
	if b.maxInFlight <= 0 {
		b.maxInFlight = 1
	}
	if b.timeout <= 0 {
		b.timeout = DefaultTimeout
	}
	return b
}

// Get looks key up, alone if no round trip is in flight, otherwise in the
// next batch. If ctx ends first, Get returns ctx's error at once; the batch
// it was part of still runs for its other callers.
func (b *Batcher[K, V]) Get(ctx context.Context, key K) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, err
	}
	b.mu.Lock()
	if b.inFlight < b.maxInFlight {
		b.inFlight++
		b.mu.Unlock()
		// The caller's own goroutine and context carry a lone lookup:
		// nothing to hand over. Only a caller without a deadline gets one,
		// since while its round trip runs every other caller queues.
		defer b.next()
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, b.timeout)
			defer cancel()
		}
		res := b.fetchOne(ctx, key)
		return res.Value, res.Err
	}
	c := &call[K, V]{ctx: ctx, key: key, done: make(chan struct{})}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.res.Value, c.res.Err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// fetchOne is the round trip of a lone key.
func (b *Batcher[K, V]) fetchOne(ctx context.Context, key K) Result[V] {
	keys := [1]K{key}
	results, err := b.fetch(ctx, keys[:])
	if err == nil && len(results) != 1 {
		err = errWrongCount
	}
	if err != nil {
		return Result[V]{Err: err}
	}
	return results[0]
}

var errWrongCount = errors.New("batch: the fetch returned a different number of results than keys")

// next hands the round-trip slot just freed to the queue: if callers are
// waiting, a goroutine sends their batches until none are left; otherwise
// the slot is given back.
func (b *Batcher[K, V]) next() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.inFlight--
		return
	}
	go b.drain()
}

// drain sends queued batches, one at a time, until the queue is empty, and
// then gives its round-trip slot back and exits.
func (b *Batcher[K, V]) drain() {
	for {
		calls := b.take()
		if calls == nil {
			return
		}
		b.run(calls)
	}
}

// take removes up to maxBatch callers that are still waiting from the head
// of the queue. When the queue is empty it gives the round-trip slot back
// and returns nil.
func (b *Batcher[K, V]) take() []*call[K, V] {
	b.mu.Lock()
	defer b.mu.Unlock()
	var calls []*call[K, V]
	n := 0
	for ; n < len(b.queue) && len(calls) < b.maxBatch; n++ {
		c := b.queue[n]
		if c.ctx.Err() != nil {
			continue // its caller has stopped waiting
		}
		calls = append(calls, c)
	}
	// Shift rather than reslice, so the queue's array is reused instead of
	// creeping forward and growing under steady load.
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	if len(calls) == 0 { // then the whole queue was read, and is empty
		b.inFlight--
		return nil
	}
	return calls
}

// run fetches one batch and gives each caller its result.
func (b *Batcher[K, V]) run(calls []*call[K, V]) {
	ctx, cancel := b.batchContext(calls)
	defer cancel()
	keys := make([]K, len(calls))
	for i, c := range calls {
		keys[i] = c.key
	}
	results, err := b.fetch(ctx, keys)
	if err == nil && len(results) != len(keys) {
		err = errWrongCount
	}
	for i, c := range calls {
		if err != nil {
			c.res = Result[V]{Err: err}
		} else {
			c.res = results[i]
		}
		close(c.done)
	}
}

// batchContext is the context of a batch's round trip: it carries the
// first caller's values, not its cancellation (the others still wait), and
// ends at the latest of the callers' deadlines, counting b.timeout from now
// for a caller without one. So a round trip runs no longer than its most
// patient caller waits for it.
func (b *Batcher[K, V]) batchContext(calls []*call[K, V]) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range calls {
		d, ok := c.ctx.Deadline()
		if !ok {
			d = time.Now().Add(b.timeout)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(calls[0].ctx), latest)
}
