package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestParseWrk(t *testing.T) {
	out := "Running 8s test @ http://127.0.0.1:1/\n  1 threads and 32 connections\nBENCH 80000 8000000 1 2 3 4 5 450 2100\n"
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := loadResult{Generator: "wrk", Requests: 80000, Seconds: 8, Errors: 1 + 2 + 3 + 5, BadStatus: 4,
		P50: 450 * time.Microsecond, P99: 2100 * time.Microsecond}
	if *r != want {
		t.Fatalf("parseWrk = %+v, want %+v", *r, want)
	}
	if r.RPS() != 10000 {
		t.Fatalf("RPS = %v, want 10000", r.RPS())
	}
	if r.failed() == "" {
		t.Fatal("a load with error statuses is not reported as failed")
	}
	if _, err := parseWrk("wrk: connection refused\n"); err == nil {
		t.Fatal("output without a result line parsed")
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := percentile(lat, c.p); got != c.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 99) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

func TestLatenciesWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var s []sample
	for i := range 10 {
		s = append(s, sample{due: t0.Add(time.Duration(i) * time.Second), took: time.Duration(i+1) * time.Millisecond, ok: i != 5})
	}
	n, bad, p50, p99 := latenciesIn(s, []span{{t0.Add(4 * time.Second), t0.Add(7 * time.Second)}})
	if n != 3 || bad != 1 || p50 != 6*time.Millisecond || p99 != 7*time.Millisecond {
		t.Fatalf("latencies = %d %d %v %v, want 3 1 6ms 7ms", n, bad, p50, p99)
	}
	// Two spans, with samples before, between and after them left out:
	// seconds 1 and 2, then 6 to 8.
	n, bad, p50, p99 = latenciesIn(s, []span{{t0.Add(time.Second), t0.Add(3 * time.Second)}, {t0.Add(6 * time.Second), t0.Add(9 * time.Second)}})
	if n != 5 || bad != 0 || p50 != 7*time.Millisecond || p99 != 9*time.Millisecond {
		t.Fatalf("latenciesIn = %d %d %v %v, want 5 0 7ms 9ms", n, bad, p50, p99)
	}
}

// Steal is neither busy nor idle, and the guest columns, already counted
// in user and nice, are not counted again.
func TestMachineTicks(t *testing.T) {
	at := time.Unix(1000, 0)
	a := parseMachineTicks("cpu  100 1 20 500 4 0 5 10 50 0", at)
	if a.busy != 126 || a.steal != 10 || a.all != 640 {
		t.Fatalf("busy, steal, all = %d, %d, %d; want 126, 10, 640", a.busy, a.steal, a.all)
	}
	b := parseMachineTicks("cpu  150 1 20 530 4 0 5 30 50 0", at.Add(time.Second))
	if got := stolen(a, b); got != 0.2 {
		t.Fatalf("stolen = %v, want 0.2 (20 of 100 ticks)", got)
	}
	if got := stolen(b, a); got != 0 {
		t.Fatalf("stolen backwards = %v, want 0", got)
	}
	if z := parseMachineTicks("intr 1 2 3", at); z.all != 0 {
		t.Fatalf("a line that is not the machine's parsed as %+v", z)
	}
}

func TestMedianRow(t *testing.T) {
	mk := func(rps int64) row { return row{Name: "x", Result: &loadResult{Requests: rps, Seconds: 1}} }
	m := medianRow([]row{mk(30), {Name: "x", Skip: "failed: boom"}, mk(10), mk(20)})
	if m.Result.Requests != 20 || m.Rounds != 3 {
		t.Fatalf("median of 30, 10, 20 = %d over %d rounds, want 20 over 3", m.Result.Requests, m.Rounds)
	}
	m = medianRow([]row{mk(10), mk(20)})
	if m.Result.Requests != 10 {
		t.Fatalf("median of 10, 20 = %d, want the lower, 10", m.Result.Requests)
	}
	if m := medianRow([]row{{Skip: "failed: a"}, {Skip: "failed: b"}}); m.Skip != "failed: a" {
		t.Fatalf("no round measured: got %q, want the first failure", m.Skip)
	}
}

func TestSteppingClock(t *testing.T) {
	c := &steppingClock{start: time.Now().Add(-2500 * time.Millisecond), step: time.Minute, every: time.Second}
	got := c.Now().Sub(time.Now())
	if got < 2*time.Minute-time.Second || got > 2*time.Minute+time.Second {
		t.Fatalf("2.5 steps in, the clock is %v ahead, want about 2m", got)
	}
}

// measured returns results where each named system served rps requests
// per second.
func measured(rps map[string]float64) *results {
	res := &results{Started: time.Now(), Finished: time.Now(), Machine: machine{CPUs: 2}}
	for _, s := range mainSystems() {
		r := row{Name: s.name, Label: s.label, Kind: s.kind, WritesPer1000: -1}
		if v, ok := rps[s.name]; ok {
			r.Result = &loadResult{Requests: int64(v), Seconds: 1, P50: time.Millisecond, P99: 2 * time.Millisecond}
		} else {
			r.Skip = "skipped: not here"
		}
		res.Rows = append(res.Rows, r)
	}
	return res
}

func verdictFor(t *testing.T, res *results, prefix string) verdict {
	t.Helper()
	for _, v := range res.verdicts() {
		if strings.HasPrefix(v.Target, prefix) {
			return v
		}
	}
	t.Fatalf("no target starts with %q", prefix)
	return verdict{}
}

func TestVerdicts(t *testing.T) {
	res := measured(map[string]float64{"bare": 1000, "sg-memory": 900, "scs-memory": 500, "sg-sqlite": 500,
		"server-json": 2000, "flask": 100})
	res.Heap = []heapRow{{System: "sessionguard memstore", Sessions: 1_000_000, Bytes: 250_000_000}}
	res.Scale = []scaleRow{
		{Store: "sqlite", Sessions: 1000, Result: &loadResult{Requests: 1000, Seconds: 1}},
		{Store: "sqlite", Sessions: 1_000_000, Result: &loadResult{Requests: 800, Seconds: 1}},
		{Store: "postgres", Sessions: 1000, Result: &loadResult{Requests: 1000, Seconds: 1}},
		{Store: "postgres", Sessions: 20000, Result: &loadResult{Requests: 1000, Seconds: 1}},
	}
	for _, c := range []struct{ prefix, met string }{
		{"Memory store: at least 0.85", "yes"},
		{"Memory store: at least twice", "no"}, // 900 / 500 = 1.8
		{"SQLite store: at least 0.60", "no"},  // 0.5
		{"Redis store: at least 0.45", "not measured"},
		{"The sessionguard server end to end (sessionguard server, GET /auth/sessions", "yes"}, // 20x
		{"The sessionguard server end to end (sessionguard server, GET /account", "not measured"},
		{"A session check with 1,000,000 live sessions in SQLite", "yes"}, // 1.25 is cost... see below
		{"A session check with 1,000,000 live sessions in PostgreSQL", "not judged: sizes smaller than the target's"},
		{"The memory store holds at most 300 bytes", "yes"},
		{"A login flood", "not measured"},
	} {
		v := verdictFor(t, res, c.prefix)
		want := c.met
		if strings.Contains(c.prefix, "in SQLite") {
			want = "no" // 1000 / 800 = 1.25 > 1.2
		}
		if v.Met != want {
			t.Errorf("%s: met %q, want %q (measured %s)", c.prefix, v.Met, want, v.Measured)
		}
	}
}

func TestMarkdownAndChart(t *testing.T) {
	res := measured(map[string]float64{"bare": 1000, "sg-memory": 900, "scs-memory": 400, "gorilla": 300})
	res.Writes = []writesRow{{Store: "memory", Requests: 100_000, Writes: 31, Simulated: 31 * time.Minute}}
	res.Sweep = []sweepRow{{Store: "memory", Expired: 10, Ended: 10, Events: 10, Took: time.Second, Rate: 1000,
		QuietP50: time.Millisecond, QuietP99: 2 * time.Millisecond, DuringP50: time.Millisecond, DuringP99: 3 * time.Millisecond}}
	md := string(markdown(res))
	for _, want := range []string{"## Results", "| sessionguard middleware, memory store | 900 |", "0.90", "## Targets", "skipped: not here", "0.310"} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q", want)
		}
	}
	if strings.Contains(md, "NaN") {
		t.Error("the document shows NaN")
	}
	dir := t.TempDir()
	if err := writeDocs(dir, res); err != nil {
		t.Fatal(err)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1234567.4, "1,234,567"}, {-1500, "-1,500"}, {math.NaN(), "-"}} {
		if got := fmtInt(c.in); got != c.want {
			t.Errorf("fmtInt(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCumShareAndTopFunctions(t *testing.T) {
	out := `Showing nodes accounting for 1s, 100% of 1s total
      flat  flat%   sum%        cum   cum%
     0.30s 30.00% 30.00%      0.90s 90.00%  net/http.(*conn).serve
     0.10s 10.00% 40.00%      0.40s 40.00%  github.com/sessionguard/sessionguard/session.(*Manager).load
     0.05s  5.00% 45.00%      0.20s 20.00%  github.com/sessionguard/sessionguard/session/memstore.(*Store).Get`
	if pct, ok := cumShare(out, "session.(*Manager).load"); !ok || pct != "40.00%" {
		t.Fatalf("cumShare = %q %v, want 40.00%%", pct, ok)
	}
	fns := topFunctions(out, 2)
	if len(fns) != 2 || fns[0] != "net/http.(*conn).serve (30.00%)" {
		t.Fatalf("topFunctions = %q", fns)
	}
}

// get sends GET path with cookie to h and returns the status and body.
func get(h http.Handler, path, cookie string) (int, string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func login(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/bench/login?n=1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/bench/login: %d %s", rec.Code, rec.Body)
	}
	var ans loginAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || len(ans.Cookies) != 1 {
		t.Fatalf("/bench/login answered %s (%v)", rec.Body, err)
	}
	return ans.Cookies[0]
}

// Each system's server checks the session: the measured request is 200
// with its cookie and refused without it, and the stores count writes.
func TestServersCheckTheSession(t *testing.T) {
	for _, system := range []string{"sg-memory", "scs-memory", "gorilla"} {
		t.Run(system, func(t *testing.T) {
			mux := http.NewServeMux()
			var closeSystem func() error
			var err error
			o := serveOptions{system: system, sweep: false}
			switch {
			case strings.HasPrefix(system, "sg-"):
				closeSystem, err = mountSessionguard(context.Background(), mux, o)
			case strings.HasPrefix(system, "scs-"):
				closeSystem, err = mountSCS(context.Background(), mux, o)
			default:
				closeSystem, err = mountGorilla(mux)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeSystem()
			cookie := login(t, mux)
			if code, body := get(mux, "/", cookie); code != http.StatusOK || body != "hello probe-0\n" {
				t.Fatalf("with the cookie: %d %q, want 200 \"hello probe-0\"", code, body)
			}
			if code, _ := get(mux, "/", ""); code != http.StatusUnauthorized {
				t.Fatalf("without a cookie: %d, want 401", code)
			}
			if code, _ := get(mux, "/", cookie[:len(cookie)-2]+"xx"); code != http.StatusUnauthorized {
				t.Fatalf("with a forged cookie: %d, want 401", code)
			}
			if system == "gorilla" {
				return
			}
			code, body := get(mux, "/bench/writes", "")
			var c writeCounts
			if code != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
				t.Fatalf("/bench/writes: %d %q", code, body)
			}
			// sessionguard's one request falls within the touch interval;
			// scs writes at login and writes back every request.
			want := int64(0)
			if system == "scs-memory" {
				want = 2
			}
			if c.Total != want {
				t.Fatalf("writes %+v, want a total of %d", c, want)
			}
		})
	}
}

func TestNginxConfig(t *testing.T) {
	alone, err := nginxConfig(nginxConf{Dir: "/d", Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2", Workers: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	checked, err := nginxConfig(nginxConf{Dir: "/d", Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2", Auth: "127.0.0.1:3", Workers: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"daemon off;", "worker_processes auto;", "pid /d/nginx.pid;", "access_log off;", "listen 127.0.0.1:1;", "server 127.0.0.1:2;",
		"keepalive 32;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`, "proxy_pass http://app;"}
	for _, want := range common {
		if !strings.Contains(alone, want) || !strings.Contains(checked, want) {
			t.Errorf("a configuration lacks %q", want)
		}
	}
	check := []string{"auth_request /_sessionguard_check;", "auth_request_set $user $upstream_http_remote_user;",
		"proxy_set_header Remote-User $user;", "server 127.0.0.1:3;", "proxy_pass http://sessionguard" + authRequestPath + ";",
		"proxy_pass_request_body off;", `proxy_set_header Content-Length "";`, "proxy_set_header X-Original-Method $request_method;",
		"proxy_set_header X-Original-URL $scheme://$http_host$request_uri;", "internal;"}
	for _, want := range check {
		if !strings.Contains(checked, want) {
			t.Errorf("the configuration with the check lacks %q:\n%s", want, checked)
		}
		if strings.Contains(alone, want) && want != "proxy_pass_request_body off;" {
			t.Errorf("nginx alone has %q", want)
		}
	}
	// Apart from the check, the two are the same configuration.
	if n := strings.Count(checked, "keepalive 32;"); n != 2 {
		t.Errorf("keepalive 32 %d times with the check, want 2 (upstream and sessionguard)", n)
	}
}

func TestUpstreamThroughReverseProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(upstreamHello))
	defer up.Close()
	mux := http.NewServeMux()
	closeProxy, err := mountReverseProxy(mux, up.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer closeProxy()
	req := httptest.NewRequest(http.MethodGet, gatewayPath, nil)
	req.Header.Set("Remote-User", "alice")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.String() != "hello alice\n" {
		t.Fatalf("through the proxy: %d %q, want 200 \"hello alice\\n\"", rec.Code, rec.Body)
	}
	if _, err := mountReverseProxy(http.NewServeMux(), "not a URL"); err == nil {
		t.Fatal("a bad -upstream was accepted")
	}
}

func TestCountSQLiteWrites(t *testing.T) {
	file := t.TempDir() + "/s.db"
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE session_records (id TEXT PRIMARY KEY, last_activity INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO session_records VALUES ('a', 1), ('b', 1)`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	writes, err := countSQLiteWrites(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE session_records SET last_activity = 2 WHERE id = 'a'`,
		`UPDATE session_records SET last_activity = 3 WHERE id = 'a'`,
		`INSERT INTO session_records VALUES ('c', 1)`, // a sign-in: not a write of a busy session
		`DELETE FROM session_records WHERE id = 'b'`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := writes(ctx); err != nil || n != 3 {
		t.Fatalf("writes = %d (%v), want 3", n, err)
	}
	// Adding the counter again (another row on the same database) keeps it.
	if _, err := countSQLiteWrites(ctx, file); err != nil {
		t.Fatal(err)
	}
	if n, _ := writes(ctx); n != 3 {
		t.Fatalf("after adding the counter again: %d, want 3", n)
	}
}

func TestGatewayVerdicts(t *testing.T) {
	res := measured(map[string]float64{"gw-nginx": 40000, "gw-nginx-check": 18000, "gw-reverseproxy": 10000, "gw-sg-proxy": 9000,
		"gw-sg-check": 30000})
	res.find("gw-nginx").RoundRPS = []float64{40000, 38000, 0}
	res.find("gw-nginx-check").RoundRPS = []float64{18000, 20000, 19000}
	res.find("gw-oauth2-proxy").Skip = "skipped: oauth2-proxy could not be installed"
	res.GatewayWrites = []writesRow{{Store: "nginx auth_request", Requests: 100_000, Writes: 21}, {Store: "reverse-proxy mode", Requests: 50_000, Writes: 21}}
	for _, c := range []struct{ prefix, met, measured string }{
		{"nginx with sessionguard's auth_request check", "no", "0.45 (18,000 vs 40,000 req/s); round by round 0.45, 0.53"},
		{"Reverse-proxy mode", "yes", "0.90 (9,000 vs 10,000 req/s)"},
		{"sessionguard's check", "not measured: gw-oauth2-proxy skipped: oauth2-proxy could not be installed", "-"},
		{"A busy session's checks through a gateway", "yes", "nginx auth_request 0.210, reverse-proxy mode 0.420"},
	} {
		v := verdictFor(t, res, c.prefix)
		if v.Met != c.met || v.Measured != c.measured {
			t.Errorf("%s: met %q, measured %q; want %q, %q", c.prefix, v.Met, v.Measured, c.met, c.measured)
		}
	}
	res.find("gw-oauth2-proxy").Skip = ""
	res.find("gw-oauth2-proxy").Result = &loadResult{Requests: 5000, Seconds: 1}
	if v := verdictFor(t, res, "sessionguard's check"); v.Met != "yes" || v.Measured != "6.0x (30,000 vs 5,000 req/s)" {
		t.Errorf("the check against oauth2-proxy: %+v", v)
	}
	md := string(markdown(res))
	for _, want := range []string{"## Store writes through a gateway", "| nginx auth_request | 100,000 | 21 | 0.210 |", "nginx with sessionguard's auth_request check"} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q", want)
		}
	}
}

func TestStoreCeilingVerdicts(t *testing.T) {
	res := measured(map[string]float64{"bare": 100_000, "sg-redis": 45_000, "bare-redis-get": 50_000,
		"sg-postgres": 30_000})
	res.Rounds = 2
	res.find("sg-redis").RoundRPS = []float64{45_000, 44_000}
	res.find("bare-redis-get").RoundRPS = []float64{50_000, 55_000}
	for _, c := range []struct{ prefix, met, measured string }{
		{"Redis store: at least 0.90 of a bare handler", "yes", "0.90 (45,000 vs 50,000 req/s); round by round 0.90, 0.80; 0.45 of bare net/http"},
		{"PostgreSQL store: at least 0.90 of a bare handler", "not measured: bare-pg-select skipped: not here", "-"},
	} {
		v := verdictFor(t, res, c.prefix)
		if v.Met != c.met || v.Measured != c.measured {
			t.Errorf("%s: met %q, measured %q; want %q, %q", c.prefix, v.Met, v.Measured, c.met, c.measured)
		}
	}
	res.find("bare-pg-select").Skip = ""
	res.find("bare-pg-select").Result = &loadResult{Requests: 40_000, Seconds: 1}
	if v := verdictFor(t, res, "PostgreSQL store: at least 0.90 of a bare handler"); v.Met != "no" || !strings.HasPrefix(v.Measured, "0.75 (30,000 vs 40,000 req/s)") {
		t.Errorf("PostgreSQL against its SELECT: %+v", v)
	}
	md := string(markdown(res))
	for _, want := range []string{"## The networked stores against their own ceiling",
		"| Redis (one GET with the same go-redis client) | 45,000 | 50,000 | 0.90 | 0.90, 0.80 | 0.45 | yes |",
		"| PostgreSQL (one primary-key SELECT with the same pgx pool) | 30,000 | 40,000 | 0.75 | - | 0.30 | no |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q", want)
		}
	}
}

func TestSweepVerdicts(t *testing.T) {
	res := measured(nil)
	sweep := func(store string, n int, took, quiet, during time.Duration) sweepRow {
		return sweepRow{Store: store, Expired: n, Ended: n, Events: int64(n), Took: took, Rate: 1000,
			QuietP50: quiet / 2, QuietP99: quiet, DuringP50: during / 2, DuringP99: during}
	}
	ms := time.Millisecond
	res.Sweep = []sweepRow{
		sweep("memory", 1_000_000, 4*time.Second, 2*ms, 3*ms),    // 1.5x: met
		sweep("sqlite", 1_000_000, 61*time.Second, 2*ms, 2*ms),   // 1.0x, but 61 s
		sweep("postgres", 1_000_000, 30*time.Second, 2*ms, 4*ms), // 2.0x
		sweep("redis", 20_000, time.Second, 2*ms, 2*ms),          // too few
	}
	res.Sweep[2].Events--
	want := []struct{ prefix, met string }{
		{"Sweeping 1,000,000 expired sessions (memory): p99 latency during it at most 1.5 times", "yes"},
		{"Sweeping 1,000,000 expired sessions (SQLite): p99", "yes"},
		{"Sweeping 1,000,000 expired sessions (PostgreSQL): p99", "no: 1000000 expired, 1000000 ended, 999999 end events"},
		{"Sweeping 1,000,000 expired sessions (Redis): p99", "not judged: fewer than 1,000,000 sessions"},
		{"Sweeping 1,000,000 expired sessions in SQLite: within 60 seconds", "no"},
	}
	for _, c := range want {
		if v := verdictFor(t, res, c.prefix); v.Met != c.met {
			t.Errorf("%s: met %q, want %q (measured %s)", c.prefix, v.Met, c.met, v.Measured)
		}
	}
	res.Sweep[1].Took = 60 * time.Second
	if v := verdictFor(t, res, "Sweeping 1,000,000 expired sessions in SQLite"); v.Met != "yes" || v.Measured != "60.0s (1,000,000 ended)" {
		t.Errorf("a 60 s SQLite sweep: %+v", v)
	}
	md := string(markdown(res))
	for _, want := range []string{"at most 1.5 times the quiet p99", "| 1.50 | yes |", "SQLite's sweep within 60 seconds: 60.0s (1,000,000 ended), met: yes."} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q", want)
		}
	}
	res.Sweep = nil
	if v := verdictFor(t, res, "Sweeping 1,000,000 expired sessions in SQLite"); v.Met != notMeasured {
		t.Errorf("no sweep: %+v", v)
	}
}

// The bare store systems answer the session check's body for a stored
// key or row and refuse an unknown or missing cookie. They need Redis and
// PostgreSQL: run with SESSIONGUARD_TEST_REDIS and SESSIONGUARD_TEST_POSTGRES.
func TestBareStoreSystems(t *testing.T) {
	ctx := context.Background()
	for _, system := range []string{"bare-redis-get", "bare-pg-select"} {
		t.Run(system, func(t *testing.T) {
			o := serveOptions{system: system}
			mount := mountBareRedis
			if system == "bare-redis-get" {
				if o.redisDSN = os.Getenv("SESSIONGUARD_TEST_REDIS"); o.redisDSN == "" {
					t.Skip("SESSIONGUARD_TEST_REDIS is not set")
				}
				o.prefix = fmt.Sprintf("bench:test:%d:", os.Getpid())
				t.Cleanup(func() {
					c, err := redisClient(o.redisDSN)
					if err != nil {
						return
					}
					defer c.Close()
					keys, _ := c.Keys(ctx, o.prefix+"*").Result()
					if len(keys) > 0 {
						c.Del(ctx, keys...)
					}
				})
			} else {
				dsn := os.Getenv("SESSIONGUARD_TEST_POSTGRES")
				if dsn == "" {
					t.Skip("SESSIONGUARD_TEST_POSTGRES is not set")
				}
				schema := fmt.Sprintf("bench_test_%d", os.Getpid())
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if c, err := pgx.Connect(ctx, dsn); err == nil {
						c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
						c.Close(ctx)
					}
				})
				u, _ := url.Parse(dsn)
				q := u.Query()
				q.Set("search_path", schema)
				u.RawQuery = q.Encode()
				o.pgDSN, mount = u.String(), mountBarePG
			}
			mux := http.NewServeMux()
			closeSystem, err := mount(ctx, mux, o)
			if err != nil {
				t.Fatal(err)
			}
			defer closeSystem()
			cookie := login(t, mux)
			if code, body := get(mux, "/", cookie); code != http.StatusOK || body != "hello probe-0\n" {
				t.Fatalf("with the cookie: %d %q, want 200 \"hello probe-0\"", code, body)
			}
			if code, _ := get(mux, "/", ""); code != http.StatusUnauthorized {
				t.Fatalf("without a cookie: %d, want 401", code)
			}
			if code, _ := get(mux, "/", cookie[:len(cookie)-2]+"xx"); code != http.StatusUnauthorized {
				t.Fatalf("with an unknown cookie: %d, want 401", code)
			}
		})
	}
}

// A sweep is judged only when the host took at most maxStolen of its time
// and of its quiet seconds; SQLite's sweep time likewise.
func TestSweepVerdictsSetStolenTimeAside(t *testing.T) {
	row := func(store string, stolen float64, took time.Duration) sweepRow {
		return sweepRow{Store: store, Expired: sweepTargetSessions, Ended: sweepTargetSessions, Events: sweepTargetSessions,
			Took: took, QuietP99: 2 * time.Millisecond, DuringP99: 2500 * time.Microsecond, QuietStolen: 0.001, DuringStolen: stolen}
	}
	res := &results{Sweep: []sweepRow{row("memory", 0.01, 20*time.Second), row("sqlite", 0.2, 50*time.Second)}}
	v := res.sweepVerdicts()
	if len(v) != 3 {
		t.Fatalf("%d verdicts, want 3 (two p99s and SQLite's time)", len(v))
	}
	if v[0].Met != "yes" {
		t.Errorf("1.25x with 1%% stolen: %q, want yes", v[0].Met)
	}
	for _, i := range []int{1, 2} {
		if !strings.HasPrefix(v[i].Met, "not judged: the host took 20.0%") {
			t.Errorf("verdict %d with 20%% stolen: %q, want not judged", i, v[i].Met)
		}
	}
}
