package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Two real processes on one SQLite file share the sign-in throttle: their
// failed sign-ins add up to one limit, the lock holds on both, and it goes
// to the log and to the audit log.
func TestProcessThrottleShared(t *testing.T) {
	t.Parallel()
	one := startServer(t)
	mustCLI(t, one.dir, testPassword+"\n", "user", "add", "-db", one.db, "-password-stdin", "alice")
	two := startServer(t, "-db", one.db)
	servers := []*server{one, two}
	for i := range 5 {
		resp, body := do(t, "POST", servers[i%2].url+"/auth/login", "", url.Values{"username": {"alice"}, "password": {"a wrong guess, sorry"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401\n%s", i+1, resp.StatusCode, body)
		}
	}
	for i, s := range servers {
		resp, body := do(t, "POST", s.url+"/auth/login", "", url.Values{"username": {"alice"}, "password": {testPassword}})
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many failed sign-ins") {
			t.Errorf("server %d, the right password after five failures on both: %d, Retry-After %q\n%s",
				i+1, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	locks := 0
	for _, e := range readAudit(t, one) {
		if e.Event == "signin_locked" && e.User == "alice" && e.Reason == "account" {
			locks++
		}
	}
	if locks != 1 {
		t.Errorf("%d signin_locked entries for alice, want 1", locks)
	}
	if !strings.Contains(one.log()+two.log(), "sign-in locked") {
		t.Errorf("neither server logged the lock:\n%s\n%s", one.log(), two.log())
	}
}
