package session_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
	"github.com/sessionguard/sessionguard/session/sessiontest"
	"github.com/sessionguard/sessionguard/session/sqlitestore"
)

// BenchmarkMiddleware measures the hot path: one authenticated request of a
// busy session through Require to a trivial handler. The fake clock spreads
// the b.N requests over one whole idle period, so "writes/1000req" is the
// store writes of a session busy for its whole idle period.
func BenchmarkMiddleware(b *testing.B) {
	stores := map[string]func(b *testing.B) session.Store{
		"memory": func(b *testing.B) session.Store { return memstore.New() },
		"sqlite": func(b *testing.B) session.Store {
			s, err := sqlitestore.Open(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
	for _, name := range []string{"memory", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			clock := sessiontest.NewClock(time.Now())
			store := &countingStore{Store: stores[name](b)}
			var configured session.Store = store
			if _, ok := store.Store.(session.InMemoryStore); ok {
				configured = inMemoryCountingStore{store} // keep the ability the wrapper hides
			}
			m, err := session.New(session.Config{Store: configured, Clock: clock, SweepInterval: session.SweepOff})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			w := httptest.NewRecorder()
			if _, err := m.Login(w, httptest.NewRequest("POST", "/", nil), "alice", session.LoginOptions{}); err != nil {
				b.Fatal(err)
			}
			cookie := w.Result().Cookies()[0]
			handler := m.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = session.FromContext(r.Context()).UserID()
			}))
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(cookie)
			rw := &discardWriter{h: http.Header{}}
			step := session.DefaultPolicy.IdleTimeout / time.Duration(b.N+1)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				clock.Advance(step)
				clear(rw.h)
				rw.code = 0
				handler.ServeHTTP(rw, r)
				if rw.code != 0 && rw.code != http.StatusOK {
					b.Fatalf("status %d", rw.code)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(store.touches.Load())*1000/float64(b.N), "writes/1000req")
		})
	}
}

type inMemoryCountingStore struct{ *countingStore }

func (inMemoryCountingStore) InMemory() {}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the middleware rather than a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
