package coalesce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// A caller never gets the answer of a run that began before it arrived.
func TestRunNeverSharesAnEarlierRun(t *testing.T) {
	c := New()
	started := make(chan struct{})
	release := make(chan struct{})
	var runs atomic.Int32
	go c.Run(context.Background(), func(context.Context) error {
		runs.Add(1)
		close(started)
		<-release
		return nil
	})
	<-started
	// This caller arrives while the first run is under way.
	done := make(chan error, 1)
	go func() {
		done <- c.Run(context.Background(), func(context.Context) error { runs.Add(1); return nil })
	}()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs, want 2: the late caller used the run that began before it", n)
	}
}

// Callers that wait for their turn share a run that began after they
// arrived: however many overlap, the runs are far fewer than the callers.
func TestRunSharesTheNextRun(t *testing.T) {
	c := New()
	const callers = 50
	var runs atomic.Int32
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-gate
			if err := c.Run(context.Background(), func(context.Context) error {
				runs.Add(1)
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	close(gate)
	wg.Wait()
	if n := runs.Load(); n < 1 || n > callers {
		t.Fatalf("%d runs for %d callers", n, callers)
	}
	t.Logf("%d runs for %d callers", runs.Load(), callers)
}

// A failed run is nobody's answer: the next caller runs again and gets its
// own result.
func TestRunFailureIsNotShared(t *testing.T) {
	c := New()
	boom := errors.New("boom")
	if err := c.Run(context.Background(), func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
	ran := false
	if err := c.Run(context.Background(), func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Run after a failure = %v, ran %v; want a run of its own", err, ran)
	}
}

// A caller whose context ends while it waits for its turn gives up.
func TestRunGivesUpWithItsContext(t *testing.T) {
	c := New()
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	go c.Run(context.Background(), func(context.Context) error {
		close(started)
		<-release
		return nil
	})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx, func(context.Context) error { t.Error("ran with an ended context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}
