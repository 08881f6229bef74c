package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discard is a ResponseWriter that keeps nothing, so a benchmark measures
// the handler rather than a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkCheck is the nginx check of a busy signed-in user's page
// navigation: the handler's own cost, without net/http's reading and
// writing.
func BenchmarkCheck(b *testing.B) {
	e := newEnv(&testing.T{}, nil)
	tok := e.login("alice")
	e.clock.Set(t0.Add(time.Second))
	r := e.req("GET", AuthRequestPath, tok, with(navigation, "X-Original-Method", "GET",
		"X-Original-URL", "https://app.example.com/dashboard?id=42")...)
	w := &discard{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		e.handler.ServeHTTP(w, r)
	}
}

// BenchmarkProxy is reverse-proxy mode's decision and forwarding of a
// signed-in user's request to a local upstream.
func BenchmarkProxy(b *testing.B) {
	t := &testing.T{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	e := proxyEnv(t, &upstream{Server: up}, nil)
	tok := e.login("alice")
	e.clock.Set(t0.Add(time.Second))
	r := e.req("GET", "/dashboard?id=42", tok, fetchJSON...)
	w := &discard{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		e.handler.ServeHTTP(w, r)
	}
}
