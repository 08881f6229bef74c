package session

import (
	"context"
	"time"
)

// EventKind says what happened to a session.
type EventKind string

// The kinds of session event.
const (
	// EventStarted: a login created the session.
	EventStarted EventKind = "started"
	// EventRenewed: the session got a new token (a privilege change or a
	// re-authentication); its public ID stays the same.
	EventRenewed EventKind = "renewed"
	// EventEnded: the session ended, for Event.Reason. Sent exactly once per
	// session, including sessions that time out while nobody uses them.
	EventEnded EventKind = "ended"
)

// Event is something that happened to a session.
type Event struct {
	Kind EventKind
	// Session is the session as it was; its UserID is empty for an
	// anonymous session (Manager.Start), which has events too.
	Session Info
	// Reason is set for EventEnded.
	Reason EndReason
	// Time is when it happened: for a timeout, the instant the deadline was
	// reached, not when the sweeper noticed.
	Time time.Time
	// IP is the client address of the request that caused the event, or
	// empty for events with no request (timeouts found by the sweeper,
	// revocations from a command line).
	IP string
}

// Observer receives session events: the hook for audit logs and metrics.
// SessionEvent is called synchronously after the store has recorded the
// change, from the request's goroutine or the sweeper's, so it should be
// quick; it must be safe for concurrent use.
type Observer interface {
	SessionEvent(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(ctx context.Context, e Event)

// SessionEvent calls f(ctx, e).
func (f ObserverFunc) SessionEvent(ctx context.Context, e Event) { f(ctx, e) }

// StoreWriteObserver is an Observer that also hears how each write the
// Manager asks of its store fares. A failed write emits no event, so this is
// how a readiness check or a failure counter learns that a sign-out did not
// go through, or that the store no longer takes writes at all (the sweeper
// writes every SweepInterval). Observers that implement it get StoreWrite
// after every Create, Touch, SaveData, Renew, End and EndExpired call, from
// the goroutine that made it; it should be quick.
type StoreWriteObserver interface {
	Observer
	// StoreWrite reports one write: op is "create", "touch", "save_data",
	// "renew", "end" or "end_expired", and err is nil when the store
	// answered, including with ErrNotFound or ErrConflict, which are
	// answers about a session, not failures of the store.
	StoreWrite(ctx context.Context, op string, err error)
}
