// Package coalesce lets concurrent callers share one run of a check whose
// answer is good only for those who asked before it began, such as "has
// another connection written to the database since I last looked?".
//
// Package batch shares round trips too, but gathers keys and hands each
// queued batch to a goroutine of its own, as lookups of many keys over a
// network need. A check has no keys, and a caller that waited can run it
// itself: on the path of every request that halves its cost when requests
// overlap (measured with sqlitestore's BenchmarkGet, parallel).
package coalesce

import (
	"context"
	"sync/atomic"
)

// Check runs a check for many callers, one run at a time. Create it with
// New; it is safe for concurrent use.
type Check struct {
	// turn holds a token while a run is under way: a channel rather than
	// a mutex, so that a caller waiting for its turn can give up when its
	// context ends.
	turn chan struct{}

	// begun counts the runs that have begun; passed is the number of the
	// latest one that succeeded, read and written only during a turn.
	begun  atomic.Uint64
	passed uint64
}

// New returns a Check.
func New() *Check {
	return &Check{turn: make(chan struct{}, 1)}
}

// Run returns nil once a run of check that began after Run was called has
// succeeded: it waits for such a run by another caller, or makes one itself.
// A caller arriving while a run is under way cannot use that run (it may
// have missed what happened just before the caller arrived), so it waits for
// the next one, which it shares with everyone else who arrived meanwhile:
// however many callers there are, a caller waits for at most two runs.
//
// It returns check's error if the run it made failed, or ctx.Err() if ctx
// ended while it waited for its turn. check gets the ctx of the caller that
// runs it.
func (c *Check) Run(ctx context.Context, check func(ctx context.Context) error) error {
	arrived := c.begun.Load()
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.turn }()
	// Runs are numbered as they begin, each during its turn, so every run
	// that has begun has ended by now, and one numbered above arrived
	// began after this caller arrived.
	if c.passed > arrived {
		return nil
	}
	run := c.begun.Add(1)
	if err := check(ctx); err != nil {
		return err
	}
	c.passed = run
	return nil
}
