// Package metrics counts what sessionguard does, for Prometheus: sessions
// started, renewed and ended (by reason), the sessions live right now, sign-in
// attempts by result, session store writes that failed, and HTTP request
// latency by route.
//
// A *Metrics is a session.StoreWriteObserver: give it to the session
// Manager's Observers so that every session event is counted, also those of
// sessions that time out while nobody uses them, and so that it knows
// whether the store takes writes (StoreWritesFailing, for readiness).
package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/session"
)

// The results of a sign-in attempt, the values of the "result" label of
// sessionguard_logins_total.
const (
	LoginSuccess   = "success"
	LoginFailure   = "failure"
	LoginThrottled = "throttled"
)

// Metrics holds sessionguard's collectors. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg      prometheus.Registerer
	started  prometheus.Counter
	renewed  prometheus.Counter
	ended    *prometheus.CounterVec
	logins   *prometheus.CounterVec
	requests *prometheus.HistogramVec

	writeFailures *prometheus.CounterVec
	writes        writeHealth

	// observers are the children of requests already looked up, by
	// requestLabels: a request then costs one lock-free map read instead of
	// WithLabelValues hashing its labels under the vector's lock.
	observers sync.Map

	activeOnce sync.Once
	active     *activeCache // set by CountActive
}

// New creates the collectors and registers them with reg (nil:
// prometheus.DefaultRegisterer). It fails if reg already holds collectors of
// the same names.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &Metrics{
		reg: reg,
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionguard_sessions_started_total",
			Help: "Sessions created by a sign-in.",
		}),
		renewed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionguard_sessions_renewed_total",
			Help: "Sessions given a new token (re-authentication, password change).",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionguard_sessions_ended_total",
			Help: "Sessions ended, by reason: logout, idle, absolute or revoked.",
		}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionguard_logins_total",
			Help: "Sign-in attempts, by result: success, failure (bad credentials) or throttled.",
		}, []string{"result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sessionguard_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern and status class (2xx, 3xx, 4xx, 5xx).",
			// Password hashing makes sign-ins take a few hundred
			// milliseconds; the upper buckets are there to see them.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "code"}),
		writeFailures: newStoreWriteFailures(),
		writes:        writeHealth{now: time.Now},
	}
	// Every reason and result is exported from the start, at zero, so that
	// rate() works from the first event and a dashboard shows a line.
	for _, r := range []session.EndReason{session.ReasonLogout, session.ReasonIdle, session.ReasonAbsolute, session.ReasonRevoked} {
		m.ended.WithLabelValues(string(r))
	}
	for _, r := range []string{LoginSuccess, LoginFailure, LoginThrottled} {
		m.logins.WithLabelValues(r)
	}
	for _, op := range storeWriteOps {
		m.writeFailures.WithLabelValues(op)
	}
	for _, c := range []prometheus.Collector{m.started, m.renewed, m.ended, m.logins, m.requests, m.writeFailures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SessionEvent counts a session event; it makes *Metrics a session.Observer.
func (m *Metrics) SessionEvent(_ context.Context, e session.Event) {
	switch e.Kind {
	case session.EventStarted:
		m.started.Inc()
	case session.EventRenewed:
		m.renewed.Inc()
	case session.EventEnded:
		m.ended.WithLabelValues(string(e.Reason)).Inc()
	}
}

// Login counts a sign-in attempt with result LoginSuccess, LoginFailure or
// LoginThrottled.
func (m *Metrics) Login(result string) {
	m.logins.WithLabelValues(result).Inc()
}

// ObserveRequest records how long a request took. route is the ServeMux
// pattern that served it ("GET /auth/status"), or "unmatched" for paths
// without one, so the label's values stay few.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	key := requestLabels{route, statusClass(status)}
	o, ok := m.observers.Load(key)
	if !ok {
		// Routes are the server's patterns and classes are six, so the
		// map stays as small as the vector.
		o, _ = m.observers.LoadOrStore(key, m.requests.WithLabelValues(key.route, key.class))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// requestLabels are the label values of a request's latency.
type requestLabels struct{ route, class string }

// statusClasses are the values of the "code" label, by hundreds.
var statusClasses = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return statusClasses[code/100]
}

// CountActive registers the gauge sessionguard_sessions_active, whose value
// is count's answer: the number of live sessions in the store, shared by
// every instance. Counting from the store, instead of adding starts and
// subtracting ends in this process, keeps the gauge right across restarts
// and when several instances share a store. A scrape calls count at most
// once per maxAge (the rest get the cached value), so a scrape storm cannot
// load the store; when count fails, the gauge keeps its last value.
// It may be called once; a second call returns an error.
func (m *Metrics) CountActive(count func(context.Context) (int, error), maxAge time.Duration) error {
	err := errors.New("metrics: CountActive was already called")
	m.activeOnce.Do(func() {
		m.active = &activeCache{count: count, maxAge: maxAge, now: time.Now}
		err = m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sessionguard_sessions_active",
			Help: "Live sessions in the session store (all instances), cached for a few seconds.",
		}, m.active.value))
	})
	return err
}

// activeCache answers the active-sessions gauge from a cached count.
type activeCache struct {
	count  func(context.Context) (int, error)
	maxAge time.Duration
	now    func() time.Time

	mu   sync.Mutex
	at   time.Time // when count was last called; zero: never
	last float64
}

func (c *activeCache) value() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.at.IsZero() && now.Sub(c.at) < c.maxAge {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.count(ctx)
	c.at = now // a failing store is asked again only after maxAge, too
	if err == nil {
		c.last = float64(n)
	}
	return c.last
}
