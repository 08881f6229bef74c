package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeWriteOps are the writes a session Manager reports (see
// session.StoreWriteObserver), the values of the "op" label of
// sessionguard_store_write_failures_total.
var storeWriteOps = []string{"create", "touch", "save_data", "renew", "end", "end_expired"}

// writeFailureFresh is how long a failed write keeps StoreWritesFailing
// answering with an error when no write has been tried since. The Manager's
// sweeper writes every second, so in a server the answer follows the store
// within a second or so (plus the store timeout) either way; the bound is
// for a Manager without a sweeper, whose last failure would otherwise stand
// for ever.
const writeFailureFresh = time.Minute

func newStoreWriteFailures() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sessionguard_store_write_failures_total",
		Help: "Session store writes that failed, by operation: create (sign-in), touch, save_data, renew, end (sign-out, revocation) or end_expired (the sweeper).",
	}, []string{"op"})
}

// writeHealth remembers how the latest session store writes went.
type writeHealth struct {
	now func() time.Time

	mu          sync.Mutex
	lastFailure time.Time
	lastErr     error
	// The latest failure and success are told apart by the order they
	// were reported in, which two writes in the same instant share.
	reported, failedAt, succeededAt uint64
}

// StoreWrite counts a session store write that failed, and notes when the
// latest writes failed and succeeded; it makes *Metrics a
// session.StoreWriteObserver.
func (m *Metrics) StoreWrite(_ context.Context, op string, err error) {
	now := m.writes.now()
	if err != nil {
		m.writeFailures.WithLabelValues(op).Inc()
	}
	w := &m.writes
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reported++
	if err != nil {
		w.lastFailure, w.lastErr, w.failedAt = now, err, w.reported
	} else {
		w.succeededAt = w.reported
	}
}

// StoreWritesFailing returns an error, for a readiness check, while the
// session store refuses writes: the latest write failed, less than a minute
// ago, and none has succeeded since. A store can answer reads, and so a
// ping, while it takes no writes (a SQLite file whose write lock another
// process holds); then sign-ins, sign-outs and revocations fail. It returns
// nil when the latest write succeeded, or when no write was reported.
func (m *Metrics) StoreWritesFailing() error {
	now := m.writes.now()
	w := &m.writes
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failedAt <= w.succeededAt || now.Sub(w.lastFailure) >= writeFailureFresh {
		return nil
	}
	return fmt.Errorf("the session store refuses writes (the latest failed %v ago): %w",
		now.Sub(w.lastFailure).Round(time.Millisecond), w.lastErr)
}
