package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/session"
)

// value returns the value of the series name{labels} in reg (a counter or
// gauge's value, a histogram's sample count), and whether it exists.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestCountsSessionEventsLoginsAndRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.SessionEvent(ctx, session.Event{Kind: session.EventStarted})
	m.SessionEvent(ctx, session.Event{Kind: session.EventStarted})
	m.SessionEvent(ctx, session.Event{Kind: session.EventRenewed})
	m.SessionEvent(ctx, session.Event{Kind: session.EventEnded, Reason: session.ReasonIdle})
	m.Login(LoginSuccess)
	m.Login(LoginThrottled)
	m.ObserveRequest("GET /auth/status", 200, 3*time.Millisecond)
	m.ObserveRequest("", 404, time.Millisecond)
	m.ObserveRequest("", 999, time.Millisecond)

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sessionguard_sessions_started_total", nil, 2},
		{"sessionguard_sessions_renewed_total", nil, 1},
		{"sessionguard_sessions_ended_total", []string{"reason", "idle"}, 1},
		{"sessionguard_sessions_ended_total", []string{"reason", "revoked"}, 0}, // exported at zero
		{"sessionguard_logins_total", []string{"result", "success"}, 1},
		{"sessionguard_logins_total", []string{"result", "failure"}, 0},
		{"sessionguard_logins_total", []string{"result", "throttled"}, 1},
		{"sessionguard_http_request_duration_seconds", []string{"route", "GET /auth/status", "code", "2xx"}, 1},
		{"sessionguard_http_request_duration_seconds", []string{"route", "unmatched", "code", "4xx"}, 1},
		{"sessionguard_http_request_duration_seconds", []string{"route", "unmatched", "code", "other"}, 1},
	} {
		got, ok := value(t, reg, tc.name, tc.labels...)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
}

func TestNewFailsOnDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("a second New on the same registry succeeded")
	}
}

func TestActiveGaugeIsCachedAndKeepsLastValueOnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	calls, n, fail := 0, 3, false
	count := func(context.Context) (int, error) {
		calls++
		if fail {
			return 0, errors.New("store down")
		}
		return n, nil
	}
	if err := m.CountActive(count, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.CountActive(count, time.Second); err == nil {
		t.Error("a second CountActive succeeded")
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	m.active.now = func() time.Time { return now }

	if v, _ := value(t, reg, "sessionguard_sessions_active"); v != 3 || calls != 1 {
		t.Fatalf("value %v after %d calls, want 3 after 1", v, calls)
	}
	n = 5
	now = now.Add(9 * time.Second)
	if v, _ := value(t, reg, "sessionguard_sessions_active"); v != 3 || calls != 1 {
		t.Fatalf("within maxAge: value %v after %d calls, want the cached 3 after 1", v, calls)
	}
	now = now.Add(2 * time.Second)
	if v, _ := value(t, reg, "sessionguard_sessions_active"); v != 5 || calls != 2 {
		t.Fatalf("after maxAge: value %v after %d calls, want 5 after 2", v, calls)
	}
	fail = true
	now = now.Add(11 * time.Second)
	if v, _ := value(t, reg, "sessionguard_sessions_active"); v != 5 || calls != 3 {
		t.Fatalf("on error: value %v after %d calls, want the last value 5 after 3", v, calls)
	}
	now = now.Add(time.Second)
	value(t, reg, "sessionguard_sessions_active")
	if calls != 3 {
		t.Errorf("a failing store was asked again within maxAge: %d calls", calls)
	}
}

func TestStatusClass(t *testing.T) {
	for code, want := range map[int]string{200: "2xx", 303: "3xx", 404: "4xx", 503: "5xx", 0: "other", 600: "other", 101: "1xx"} {
		if got := statusClass(code); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", code, got, want)
		}
	}
}

// Failed store writes are counted by operation, and StoreWritesFailing
// answers with an error from a failed write until one succeeds (or the
// failure is a minute old with nothing tried since).
func TestStoreWrites(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var _ session.StoreWriteObserver = m
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	m.writes.now = func() time.Time { return now }
	ctx := context.Background()
	if v, ok := value(t, reg, "sessionguard_store_write_failures_total", "op", "end"); !ok || v != 0 {
		t.Errorf("before any write: end failures %v (exported %v), want 0", v, ok)
	}
	if err := m.StoreWritesFailing(); err != nil {
		t.Errorf("no write yet: %v", err)
	}
	m.StoreWrite(ctx, "touch", nil)
	locked := errors.New("database is locked")
	now = now.Add(time.Second)
	m.StoreWrite(ctx, "end", locked)
	m.StoreWrite(ctx, "end_expired", locked)
	if err := m.StoreWritesFailing(); !errors.Is(err, locked) {
		t.Errorf("after failed writes: %v, want the store's error", err)
	}
	if v, _ := value(t, reg, "sessionguard_store_write_failures_total", "op", "end"); v != 1 {
		t.Errorf("end failures = %v, want 1", v)
	}
	if v, _ := value(t, reg, "sessionguard_store_write_failures_total", "op", "touch"); v != 0 {
		t.Errorf("touch failures = %v, want 0", v)
	}
	now = now.Add(time.Second)
	m.StoreWrite(ctx, "end_expired", nil)
	if err := m.StoreWritesFailing(); err != nil {
		t.Errorf("after a write succeeded: %v", err)
	}
	m.StoreWrite(ctx, "create", locked)
	now = now.Add(writeFailureFresh - time.Nanosecond)
	if err := m.StoreWritesFailing(); err == nil {
		t.Error("a failure just under a minute old, nothing tried since: no error")
	}
	now = now.Add(time.Nanosecond)
	if err := m.StoreWritesFailing(); err != nil {
		t.Errorf("a failure a minute old, nothing tried since: %v", err)
	}
}
