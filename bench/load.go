package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// target is what a load generator sends: GET url with header, and when
// cookies is set, each request with the next of those Cookie headers.
type target struct {
	url     string
	header  http.Header
	cookies []string
}

// loadResult is one measured load.
type loadResult struct {
	Generator string        `json:"generator"` // "wrk" or "go"
	Requests  int64         `json:"requests"`
	Seconds   float64       `json:"seconds"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	Errors    int64         `json:"errors"`     // connect, read, write errors and timeouts
	BadStatus int64         `json:"bad_status"` // responses with status 400 or more
}

// RPS is the throughput of the load.
func (r *loadResult) RPS() float64 {
	if r == nil || r.Seconds == 0 {
		return 0
	}
	return float64(r.Requests) / r.Seconds
}

// failed says what went wrong with a load whose answers were not all good,
// or "" when they were.
func (r *loadResult) failed() string {
	switch {
	case r.Requests == 0:
		return "no request completed"
	case r.BadStatus > 0:
		return fmt.Sprintf("%d of %d answers had an error status", r.BadStatus, r.Requests)
	case r.Errors > r.Requests/100:
		return fmt.Sprintf("%d socket errors in %d requests", r.Errors, r.Requests)
	}
	return ""
}

// wrkScript reports wrk's results in one parsable line, and with
// BENCH_COOKIES naming a file, sends its lines as the Cookie header in
// turn.
const wrkScript = `
local file = os.getenv("BENCH_COOKIES")
local cookies, n, i = {}, 0, 0
if file and file ~= "" then
  for line in io.lines(file) do n = n + 1; cookies[n] = line end
end
if n > 0 then
  request = function()
    i = i % n + 1
    wrk.headers["Cookie"] = cookies[i]
    return wrk.format()
  end
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// load runs the run's load generator against t for d with the run's
// connections.
func (e *env) load(ctx context.Context, t target, d time.Duration) (*loadResult, error) {
	return e.loadWith(ctx, t, d, e.cfg.connections)
}

func (e *env) loadWith(ctx context.Context, t target, d time.Duration, conns int) (*loadResult, error) {
	if e.wrk == "" {
		return goLoad(ctx, t, d, conns)
	}
	return e.wrkLoad(ctx, t, d, conns)
}

func (e *env) wrkLoad(ctx context.Context, t target, d time.Duration, conns int) (*loadResult, error) {
	script := filepath.Join(e.dir, "bench.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return nil, err
	}
	threads := min(e.cfg.threads, conns)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second)), "--timeout", "5s", "-s", script}
	for k, vs := range t.header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	args = append(args, t.url)
	cmd := exec.CommandContext(ctx, e.wrk, args...)
	cmd.Env = os.Environ()
	if len(t.cookies) > 0 {
		f := filepath.Join(e.dir, "cookies.txt")
		if err := os.WriteFile(f, []byte(strings.Join(t.cookies, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "BENCH_COOKIES="+f)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, out.String())
	}
	return parseWrk(out.String())
}

// parseWrk reads the line wrkScript's done function writes.
func parseWrk(out string) (*loadResult, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 10 || f[0] != "BENCH" {
			continue
		}
		var v [9]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("wrk's result line %q: %v", sc.Text(), err)
			}
			v[i] = n
		}
		return &loadResult{
			Generator: "wrk",
			Requests:  v[0],
			Seconds:   float64(v[1]) / 1e6,
			Errors:    v[2] + v[3] + v[4] + v[6],
			BadStatus: v[5],
			P50:       time.Duration(v[7]) * time.Microsecond,
			P99:       time.Duration(v[8]) * time.Microsecond,
		}, nil
	}
	return nil, fmt.Errorf("wrk printed no result line: %s", out)
}

// newClient returns an HTTP client that keeps up to conns connections to
// one host open and never follows redirects.
func newClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	tr.MaxConnsPerHost = conns
	tr.DisableCompression = true
	return &http.Client{
		Transport: tr,
		Timeout:   5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// goLoad is the load generator when wrk is missing: conns goroutines, each
// sending t's request in a loop on its own keep-alive connection for d.
func goLoad(ctx context.Context, t target, d time.Duration, conns int) (*loadResult, error) {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	var next atomic.Int64
	lat := make([][]time.Duration, conns)
	var errs, bad atomic.Int64
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				req := t.request(ctx, int(next.Add(1)))
				t0 := time.Now()
				status, err := do(client, req)
				took := time.Since(t0)
				switch {
				case err != nil:
					errs.Add(1)
					continue
				case status >= 400:
					bad.Add(1)
				}
				lat[c] = append(lat[c], took)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	return &loadResult{
		Generator: "go",
		Requests:  int64(len(all)),
		Seconds:   time.Since(start).Seconds(),
		P50:       percentile(all, 50),
		P99:       percentile(all, 99),
		Errors:    errs.Load(),
		BadStatus: bad.Load(),
	}, ctx.Err()
}

// request returns the i-th request of the target.
func (t target) request(ctx context.Context, i int) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	req.Header = t.header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if len(t.cookies) > 0 {
		req.Header.Set("Cookie", t.cookies[i%len(t.cookies)])
	}
	return req
}

// do sends req and reads the whole answer, so the connection is reused.
func do(client *http.Client, req *http.Request) (int, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// percentile returns the p-th percentile of sorted latencies (nearest
// rank), or 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// sample is one request of an open-loop load: when it was due and how long
// it took from then (so a request held up by a slow one before it counts
// the wait: no coordinated omission).
type sample struct {
	due  time.Time
	took time.Duration
	ok   bool
}

// openLoop sends t's request at a fixed rate over conns connections until
// stop is closed, and returns every request's sample. A request is due at
// its place in the schedule; its latency runs from then.
func openLoop(ctx context.Context, t target, rate, conns int, stop <-chan struct{}) []sample {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var next atomic.Int64
	out := make([][]sample, conns)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				due := start.Add(time.Duration(i) * interval)
				if wait := time.Until(due); wait > 0 {
					select {
					case <-time.After(wait):
					case <-stop:
						return
					case <-ctx.Done():
						return
					}
				}
				select {
				case <-stop:
					return
				default:
				}
				status, err := do(client, t.request(ctx, int(i)))
				out[c] = append(out[c], sample{due: due, took: time.Since(due), ok: err == nil && status == http.StatusOK})
			}
		})
	}
	wg.Wait()
	all := slices.Concat(out...)
	slices.SortFunc(all, func(a, b sample) int { return a.due.Compare(b.due) })
	return all
}

// span is the stretch of time [from, to).
type span struct{ from, to time.Time }

// latenciesIn summarises the samples due within any of spans, which are in
// order and do not overlap; samples are in the order of their due times.
func latenciesIn(samples []sample, spans []span) (n int, bad int, p50, p99 time.Duration) {
	var lat []time.Duration
	i := 0
	for _, s := range samples {
		for i < len(spans) && !s.due.Before(spans[i].to) {
			i++
		}
		if i == len(spans) {
			break
		}
		if s.due.Before(spans[i].from) {
			continue
		}
		if !s.ok {
			bad++
		}
		lat = append(lat, s.took)
	}
	slices.Sort(lat)
	return len(lat), bad, percentile(lat, 50), percentile(lat, 99)
}
