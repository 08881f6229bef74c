package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The soak: the sessionguard command with each session store,
// all at once for the soak's length, under a steady load of virtual users
// who sign in, browse, poll, sign out or let their sessions time out, over
// and over. It samples each server's heap, goroutines, open files and
// request latency, and checks every session: none refused before its idle
// deadline, none answered after it, each ended exactly once.

// defaultSoak is the soak's length when -soak is given without one.
const defaultSoak = 10 * time.Minute

// soakPassword is every soak account's password.
const soakPassword = "soak password long enough 42"

// deadlineSlack is how far a refusal may come before the session's known
// idle deadline, or an answer after it, without counting: the stores keep
// times to the millisecond (Redis) and the harness's clock reads are
// microseconds apart from the server's.
const deadlineSlack = 250 * time.Millisecond

// soakServer is one sessionguard process of the soak and what its virtual
// users saw.
type soakServer struct {
	store  string // memory, sqlite, redis or postgres
	bin    string // the sessionguard command
	srv    *sgServer
	client *http.Client
	cfg    *config

	mu       sync.Mutex
	window   []time.Duration // latencies of this sample's requests, sign-ins apart
	signIns  []time.Duration // this sample's sign-in latencies
	counts   soakCounts      // this sample's
	total    soakCounts
	sessions map[string]*soakSession // by session ID
	problems []string                // lost sessions, late ends, errors: each fails the soak
	omitted  int                     // problems past maxProblems, counted only
	samples  []soakSample
	policy   soakPolicy
}

// soakCounts are what the virtual users did.
type soakCounts struct {
	Requests, SignIns, Logouts, Expiries, Errors int
}

func (c *soakCounts) add(o soakCounts) {
	c.Requests += o.Requests
	c.SignIns += o.SignIns
	c.Logouts += o.Logouts
	c.Expiries += o.Expiries
	c.Errors += o.Errors
}

// soakSession is one session a virtual user held.
type soakSession struct {
	ID    string
	User  string
	Ended string // how the user saw it end: "logout", "idle"; "" while live
}

// soakPolicy is what the server says of its sessions in /auth/status.
type soakPolicy struct {
	idle, touch time.Duration
}

// soakSample is one server's figures at one moment of the soak.
type soakSample struct {
	At         time.Duration // since the soak started
	Heap       uint64        // live heap after a collection (HeapAlloc), bytes
	Goroutines int
	OpenFiles  int
	P99        time.Duration // of the requests since the last sample, sign-ins apart
	SignInP99  time.Duration
	Live       int // sessions the server counts as active
	soakCounts
}

// runSoak runs the soak for cfg.soak and reports it; with -write-docs it
// replaces the soak section of benchmarks.md and its chart.
func runSoak(ctx context.Context, cfg *config) error {
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.cleanup()
	res := &soakResult{Started: time.Now(), Duration: cfg.soak, Users: cfg.soakUsers, Idle: cfg.soakIdle,
		Think: cfg.soakThink, Interval: soakInterval(cfg.soak), Machine: describeMachine(ctx, cfg), LoadStart: loadAverage()}
	fmt.Printf("soak: %s with %s, %d users each, %s idle timeout, a sample every %s; load average %s\n",
		cfg.soak, strings.Join(cfg.soakStores, ", "), cfg.soakUsers, cfg.soakIdle, res.Interval, res.LoadStart)
	template, err := e.soakAccounts(ctx, cfg.soakUsers)
	if err != nil {
		return err
	}
	var servers []*soakServer
	defer func() {
		for _, s := range servers {
			s.srv.proc.stop()
		}
	}()
	for _, store := range cfg.soakStores {
		s, err := e.startSoakServer(ctx, store, template)
		if err != nil {
			var skip errSkip
			if errors.As(err, &skip) {
				fmt.Printf("soak %s: skipped: %s\n", store, skip.why)
				res.Skipped = append(res.Skipped, store+": "+skip.why)
				continue
			}
			return fmt.Errorf("starting the %s server: %w", store, err)
		}
		servers = append(servers, s)
	}
	if len(servers) == 0 {
		return errors.New("soak: no server could start")
	}

	// The samples are timed from here: the load's start.
	loadStart := time.Now()
	soakCtx, stop := context.WithTimeout(ctx, cfg.soak)
	defer stop()
	var wg sync.WaitGroup
	for _, s := range servers {
		for i := range cfg.soakUsers {
			wg.Go(func() { s.user(soakCtx, ctx, soakUser(i)) })
		}
	}
	sampleAll := func() {
		at := time.Since(loadStart)
		var samplers sync.WaitGroup
		for _, s := range servers {
			samplers.Go(func() { s.sample(ctx, at) })
		}
		samplers.Wait()
		printSamples(os.Stdout, servers)
	}
	tick := time.NewTicker(res.Interval)
	for sampling := true; sampling; {
		select {
		case <-tick.C:
			if soakCtx.Err() == nil {
				sampleAll()
			}
		case <-soakCtx.Done():
			sampling = false
		}
	}
	tick.Stop()
	if ctx.Err() == nil {
		sampleAll() // the last interval's, while the users are still at it
	}
	fmt.Println("soak: the time is up; the users sign out or wait for their sessions to time out")
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The sweeper ends timed-out sessions within a second; give it two.
	time.Sleep(2 * time.Second)
	for _, s := range servers {
		sr, err := s.finish(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", s.store, err)
		}
		res.Stores = append(res.Stores, sr)
	}
	res.Finished = time.Now()
	res.LoadEnd = loadAverage()
	printSoak(os.Stdout, res)
	if cfg.writeDocs != "" {
		if err := writeSoakDocs(cfg.writeDocs, res); err != nil {
			return err
		}
		fmt.Printf("wrote the soak section of %s and %s\n", filepath.Join(cfg.writeDocs, "benchmarks.md"), filepath.Join(cfg.writeDocs, soakChartFile))
	}
	if failed := res.failures(); len(failed) > 0 {
		return fmt.Errorf("the soak failed:\n  %s", strings.Join(failed, "\n  "))
	}
	return nil
}

// soakInterval is how often the soak samples: every minute, or more often
// for a short soak, so that there are at least ten samples to judge growth
// by.
func soakInterval(d time.Duration) time.Duration {
	return min(time.Minute, max(d/10, time.Second))
}

func soakUser(i int) string { return fmt.Sprintf("soak-user-%d", i) }

// soakAccounts creates the soak's accounts once, in a SQLite database that
// each server gets a copy of, and returns its path.
func (e *env) soakAccounts(ctx context.Context, users int) (string, error) {
	bin, err := e.sessionguardBinary(ctx)
	if err != nil {
		return "", err
	}
	file := filepath.Join(e.dir, e.name("soak-accounts")+".db")
	for i := range users {
		add := exec.CommandContext(ctx, bin, "user", "add", "-db", "sqlite:"+file, "-password-stdin", soakUser(i))
		add.Env = childEnv()
		add.Stdin = strings.NewReader(soakPassword + "\n")
		if out, err := add.CombinedOutput(); err != nil {
			return "", fmt.Errorf("sessionguard user add: %v: %s", err, out)
		}
	}
	return file, nil
}

// startSoakServer starts the sessionguard command with its sessions in
// store, a copy of the accounts, and a short idle timeout so that sessions
// time out all the while.
func (e *env) startSoakServer(ctx context.Context, store, accounts string) (*soakServer, error) {
	bin, err := e.sessionguardBinary(ctx)
	if err != nil {
		return nil, err
	}
	name := e.name("soak-" + store)
	dbFile := filepath.Join(e.dir, name+".db")
	if err := copyFile(accounts, dbFile); err != nil {
		return nil, err
	}
	var sessions string
	switch store {
	case "memory":
		sessions = "memory"
	case "sqlite":
		sessions = "" // in the -db database, the default
	case "redis":
		prefix, err := e.newPrefix("soak")
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(e.cfg.redisDSN)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		q.Set("key_prefix", prefix)
		u.RawQuery = q.Encode()
		sessions = u.String()
	case "postgres":
		dsn, _, err := e.newSchema(ctx, "soak")
		if err != nil {
			return nil, err
		}
		sessions = dsn
	default:
		return nil, fmt.Errorf("unknown store %q", store)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	debug, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "-addr", addr, "-db", "sqlite:" + dbFile, "-log-level", "warn", "-debug-addr", debug,
		"-idle-timeout", e.cfg.soakIdle.String(), "-warn-before", (e.cfg.soakIdle / 4).String()}
	if sessions != "" {
		args = append(args, "-sessions", sessions)
	}
	p, _, err := e.startProc(ctx, name, bin, args, nil, false)
	if err != nil {
		return nil, err
	}
	s := &soakServer{store: store, bin: bin, cfg: e.cfg, sessions: map[string]*soakSession{},
		srv:    &sgServer{proc: p, base: "http://" + addr, debug: "http://" + debug, dbFile: dbFile},
		client: newClient(e.cfg.soakUsers + 4)}
	s.client.Timeout = 10 * time.Second
	if err := waitHTTP(ctx, p, s.srv.base+"/healthz"); err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

func copyFile(from, to string) error {
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(from + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(to+suffix, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// answer is one response as a virtual user sees it.
type answer struct {
	status   int
	location string
	body     []byte
	sent     time.Time // when the request went out
	received time.Time // when the whole answer was in
	cookies  []*http.Cookie
}

// refused reports whether the server treated the request as having no
// session: 401, or a redirect to the sign-in page.
func (a answer) refused() bool {
	return a.status == http.StatusUnauthorized ||
		(a.status == http.StatusSeeOther || a.status == http.StatusFound) && strings.HasPrefix(a.location, "/auth/login")
}

// call sends a request with the session cookie (if any) and records its
// latency; sign-ins are recorded apart.
func (s *soakServer) call(ctx context.Context, method, path, cookie, accept string, form url.Values) (answer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, s.srv.base+path, body)
	if err != nil {
		return answer{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", browserUA)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	a := answer{sent: time.Now()}
	resp, err := s.client.Do(req)
	if err == nil {
		a.body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		a.status, a.location, a.cookies = resp.StatusCode, resp.Header.Get("Location"), resp.Cookies()
	}
	a.received = time.Now()
	took := a.received.Sub(a.sent)
	s.mu.Lock()
	if path == "/auth/login" {
		s.signIns = append(s.signIns, took)
		s.counts.SignIns++
	} else {
		s.window = append(s.window, took)
		s.counts.Requests++
	}
	if err == nil && a.status >= 500 {
		err = fmt.Errorf("%s %s: %d: %.200s", method, path, a.status, a.body)
	}
	if err != nil && ctx.Err() == nil {
		s.counts.Errors++
		s.noteLocked(fmt.Sprintf("%s %s: %v", method, path, err))
	}
	s.mu.Unlock()
	return a, err
}

// maxProblems bounds the problems kept of one server: past it, something
// fails all the time, and the first ones say what.
const maxProblems = 500

func (s *soakServer) problem(format string, args ...any) {
	s.mu.Lock()
	s.noteLocked(fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *soakServer) noteLocked(p string) {
	if len(s.problems) < maxProblems {
		s.problems = append(s.problems, p)
	} else {
		s.omitted++
	}
}

// held is a session as its virtual user knows it: its cookie, and the
// bounds of its idle deadline that the server's answers imply.
type held struct {
	*soakSession
	cookie string
	// The idle deadline lies between these: an active request moves both
	// (the server writes its activity unless it wrote some within the
	// touch interval), a status poll tells the time left.
	earliest, latest time.Time
}

// active notes an active request's answer.
func (h *held) active(a answer, p soakPolicy) {
	h.earliest = later(h.earliest, a.sent.Add(p.idle-p.touch))
	h.latest = later(h.latest, a.received.Add(p.idle))
}

// polled notes what /auth/status said of the time left.
func (h *held) polled(a answer, left time.Duration) {
	h.earliest = later(h.earliest, a.sent.Add(left))
	h.latest = a.received.Add(left)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// user is one virtual user, over and over until soak is done: sign in,
// browse and poll for a while, then sign out or stop and poll until the
// session times out. Requests go out with ctx, which outlives soak so that
// the last sessions end properly.
func (s *soakServer) user(soak, ctx context.Context, name string) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(len(name))))
	for soak.Err() == nil {
		h, ok := s.signIn(ctx, name)
		if !ok {
			pause(soak, time.Second)
			continue
		}
		browse := time.Duration(5+rng.IntN(36)) * time.Second // 5 to 40 s
		until := time.Now().Add(browse)
		alive := true
		for alive && soak.Err() == nil && time.Now().Before(until) {
			pause(soak, jitter(rng, s.cfg.soakThink))
			alive = s.act(ctx, h, rng)
		}
		if !alive {
			continue
		}
		if soak.Err() != nil || rng.IntN(2) == 0 {
			s.logout(ctx, h)
		} else {
			s.expire(ctx, h)
		}
	}
}

// pause waits d, or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// jitter is d give or take half.
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	return d/2 + time.Duration(rng.Int64N(int64(d)+1))
}

// signIn signs name in, learns the session's ID from the list of the
// user's sessions and the policy from /auth/status.
func (s *soakServer) signIn(ctx context.Context, name string) (*held, bool) {
	a, err := s.call(ctx, http.MethodPost, "/auth/login", "", "text/html", url.Values{"username": {name}, "password": {soakPassword}, "next": {"/"}})
	if err != nil {
		return nil, false
	}
	var cookie string
	for _, c := range a.cookies {
		if c.Name == "__Host-session" && c.Value != "" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if a.status != http.StatusSeeOther || cookie == "" {
		s.problem("sign-in of %s: %d without a session cookie: %.200s", name, a.status, a.body)
		s.mu.Lock()
		s.counts.Errors++
		s.mu.Unlock()
		return nil, false
	}
	h := &held{soakSession: &soakSession{User: name}, cookie: cookie}
	h.active(a, s.policyNow())
	st, ok := s.status(ctx, h)
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	if s.policy.idle == 0 {
		s.policy = soakPolicy{idle: secs(st.IdleTimeout), touch: secs(st.TouchInterval)}
	}
	s.mu.Unlock()
	list, err := s.call(ctx, http.MethodGet, "/auth/sessions", cookie, "application/json", nil)
	if err != nil {
		return nil, false
	}
	if s.lostIf(h, list, "GET /auth/sessions") {
		return nil, false
	}
	h.active(list, s.policyNow())
	var sessions struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(list.body, &sessions); err != nil || list.status != http.StatusOK {
		s.problem("GET /auth/sessions of %s: %d %.200s", name, list.status, list.body)
		return nil, false
	}
	for _, x := range sessions.Sessions {
		if x.Current {
			h.ID = x.ID
		}
	}
	if h.ID == "" {
		s.problem("GET /auth/sessions of %s lists no current session", name)
		return nil, false
	}
	s.mu.Lock()
	if _, dup := s.sessions[h.ID]; dup {
		s.noteLocked("session ID " + h.ID + " given twice")
	}
	s.sessions[h.ID] = h.soakSession
	s.mu.Unlock()
	return h, true
}

func (s *soakServer) policyNow() soakPolicy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policy.idle == 0 {
		// Before the first /auth/status: the configured idle timeout
		// and the command's default touch interval, a twentieth of it.
		return soakPolicy{idle: s.cfg.soakIdle, touch: s.cfg.soakIdle / 20}
	}
	return s.policy
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// statusAnswer is what GET /auth/status says.
type statusAnswer struct {
	Authenticated bool    `json:"authenticated"`
	Reason        string  `json:"reason"`
	IdleRemaining float64 `json:"idle_remaining_s"`
	IdleTimeout   float64 `json:"idle_timeout_s"`
	TouchInterval float64 `json:"touch_interval_s"`
}

// status polls /auth/status, passively, and checks the answer against the
// session's deadline. It reports whether the session is live.
func (s *soakServer) status(ctx context.Context, h *held) (statusAnswer, bool) {
	var st statusAnswer
	a, err := s.call(ctx, http.MethodGet, "/auth/status", h.cookie, "application/json", nil)
	if err != nil {
		return st, false
	}
	if err := json.Unmarshal(a.body, &st); err != nil {
		s.problem("GET /auth/status: %d %.200s", a.status, a.body)
		return st, false
	}
	if s.lostIf(h, a, "GET /auth/status") {
		return st, false
	}
	if a.status != http.StatusOK || !st.Authenticated {
		s.problem("GET /auth/status: %d %.200s", a.status, a.body)
		return st, false
	}
	s.lateIf(h, a)
	h.polled(a, secs(st.IdleRemaining))
	return st, true
}

// lostIf checks an answer for a refusal: one before the session's earliest
// deadline is a lost session. It reports whether the session is over.
func (s *soakServer) lostIf(h *held, a answer, what string) bool {
	if !a.refused() {
		return false
	}
	if a.received.Before(h.earliest.Add(-deadlineSlack)) {
		s.problem("lost session %s of %s: %s refused %s before its idle deadline (%d %s)", h.ID, h.User, what,
			h.earliest.Sub(a.received).Round(time.Millisecond), a.status, a.location)
	} else {
		s.problem("session %s of %s timed out while its user was active: %s refused %s after its earliest deadline", h.ID, h.User, what,
			a.received.Sub(h.earliest).Round(time.Millisecond))
	}
	if h.ID != "" {
		s.mu.Lock()
		h.Ended = "lost"
		s.mu.Unlock()
	}
	return true
}

// lateIf checks an accepted request against the session's latest deadline:
// a session must be refused from its deadline on.
func (s *soakServer) lateIf(h *held, a answer) {
	if !h.latest.IsZero() && a.sent.After(h.latest.Add(deadlineSlack)) {
		s.problem("session %s of %s answered %s after its idle deadline", h.ID, h.User, a.sent.Sub(h.latest).Round(time.Millisecond))
	}
}

// act is one step of browsing: a page, the sessions as JSON, the home page,
// a note saved with the session, or a passive poll. It reports whether the
// session is still live.
func (s *soakServer) act(ctx context.Context, h *held, rng *rand.Rand) bool {
	var a answer
	var err error
	var what string
	switch n := rng.IntN(10); {
	case n < 3:
		_, ok := s.status(ctx, h)
		return ok
	case n < 5:
		what = "GET /account"
		a, err = s.call(ctx, http.MethodGet, "/account", h.cookie, "text/html", nil)
	case n < 7:
		what = "GET /auth/sessions"
		a, err = s.call(ctx, http.MethodGet, "/auth/sessions", h.cookie, "application/json", nil)
	case n < 9:
		what = "GET /"
		a, err = s.call(ctx, http.MethodGet, "/", h.cookie, "text/html", nil)
	default:
		what = "POST /notes"
		a, err = s.call(ctx, http.MethodPost, "/notes", h.cookie, "text/html", url.Values{"note": {"soak note " + strconv.Itoa(rng.IntN(1000))}})
	}
	if err != nil {
		return false
	}
	if s.lostIf(h, a, what) {
		return false
	}
	want := http.StatusOK
	if what == "POST /notes" {
		want = http.StatusSeeOther
	}
	if a.status != want {
		s.problem("%s: %d, want %d: %.200s", what, a.status, want, a.body)
		return false
	}
	s.lateIf(h, a)
	h.active(a, s.policyNow())
	return true
}

// logout signs the session out and checks that its cookie is refused
// afterwards, saying why.
func (s *soakServer) logout(ctx context.Context, h *held) {
	a, err := s.call(ctx, http.MethodPost, "/auth/logout", h.cookie, "text/html", url.Values{})
	if err != nil {
		return
	}
	if a.status != http.StatusSeeOther || a.location != "/auth/login?reason=logout" {
		s.problem("logout of %s: %d to %q, want 303 to /auth/login?reason=logout", h.ID, a.status, a.location)
		return
	}
	after, err := s.call(ctx, http.MethodGet, "/auth/status", h.cookie, "application/json", nil)
	if err != nil {
		return
	}
	var st statusAnswer
	json.Unmarshal(after.body, &st)
	if after.status != http.StatusUnauthorized || st.Reason != "logout" {
		s.problem("session %s after its logout: %d %.200s, want 401 with reason logout", h.ID, after.status, after.body)
	}
	s.mu.Lock()
	h.Ended = "logout"
	s.counts.Logouts++
	s.mu.Unlock()
}

// expire stops all activity and polls /auth/status, as the timeout script
// does, until the session times out: not before its deadline, and not
// more than the poll's period after it.
func (s *soakServer) expire(ctx context.Context, h *held) {
	period := max(time.Second, s.policyNow().idle/10)
	for ctx.Err() == nil {
		pause(ctx, period)
		a, err := s.call(ctx, http.MethodGet, "/auth/status", h.cookie, "application/json", nil)
		if err != nil {
			return
		}
		var st statusAnswer
		if err := json.Unmarshal(a.body, &st); err != nil {
			s.problem("GET /auth/status: %d %.200s", a.status, a.body)
			return
		}
		if a.status == http.StatusOK && st.Authenticated {
			s.lateIf(h, a)
			h.polled(a, secs(st.IdleRemaining))
			continue
		}
		if a.status != http.StatusUnauthorized {
			s.problem("GET /auth/status while %s times out: %d %.200s", h.ID, a.status, a.body)
			return
		}
		if a.received.Before(h.earliest.Add(-deadlineSlack)) {
			s.problem("lost session %s of %s: refused %s before its idle deadline (reason %q)", h.ID, h.User,
				h.earliest.Sub(a.received).Round(time.Millisecond), st.Reason)
		}
		if st.Reason != "idle" {
			s.problem("session %s timed out with reason %q, want idle", h.ID, st.Reason)
		}
		s.mu.Lock()
		h.Ended = "idle"
		s.counts.Expiries++
		s.mu.Unlock()
		return
	}
}

// sample takes the server's figures and the latencies since the last one.
func (s *soakServer) sample(ctx context.Context, at time.Duration) {
	sm := soakSample{At: at}
	var err error
	if sm.Heap, err = liveHeap(ctx, s.srv.debug); err != nil {
		s.problem("sampling the heap at %s: %v", at.Round(time.Second), err)
	}
	metrics, err := scrape(ctx, s.srv.base+"/metrics")
	if err != nil {
		s.problem("sampling /metrics at %s: %v", at.Round(time.Second), err)
	}
	sm.Goroutines = int(metrics["go_goroutines"])
	sm.Live = int(metrics["sessionguard_sessions_active"])
	if sm.OpenFiles, err = openFiles(s.srv.proc.cmd.Process.Pid); err != nil {
		sm.OpenFiles = int(metrics["process_open_fds"])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(s.window)
	slices.Sort(s.signIns)
	sm.P99, sm.SignInP99 = percentile(s.window, 99), percentile(s.signIns, 99)
	sm.soakCounts = s.counts
	s.total.add(s.counts)
	s.window, s.signIns, s.counts = s.window[:0], s.signIns[:0], soakCounts{}
	s.samples = append(s.samples, sm)
}

// heapReadings is how many readings of the live heap one sample takes,
// heapGap apart; it keeps the smallest. A reading taken while a password
// is being hashed holds the hash's memory (19 MiB with the default
// parameters), which is gone a fraction of a second later.
const (
	heapReadings = 3
	heapGap      = 300 * time.Millisecond
)

// liveHeap returns the server's heap after a garbage collection, the
// smallest of heapReadings: the heap profile's page with gc=1 runs a
// collection first and lists runtime.MemStats.
func liveHeap(ctx context.Context, debug string) (uint64, error) {
	var least uint64
	for i := range heapReadings {
		if i > 0 {
			pause(ctx, heapGap)
		}
		body, err := fetch(ctx, debug+"/debug/pprof/heap?gc=1&debug=1")
		if err != nil {
			return 0, err
		}
		heap, err := heapAlloc(body)
		if err != nil {
			return 0, err
		}
		if i == 0 || heap < least {
			least = heap
		}
	}
	return least, nil
}

// heapAlloc reads HeapAlloc from a heap profile's text form.
func heapAlloc(profile []byte) (uint64, error) {
	for line := range strings.SplitSeq(string(profile), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("the heap profile lists no HeapAlloc")
}

// scrape returns the unlabelled samples (and the sums of labelled ones) of
// a Prometheus text page.
func scrape(ctx context.Context, u string) (map[string]float64, error) {
	body, err := fetch(ctx, u)
	if err != nil {
		return nil, err
	}
	return parseMetrics(body), nil
}

func parseMetrics(body []byte) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		out[name] += f
	}
	return out
}

func fetch(ctx context.Context, u string) ([]byte, error) {
	req, err := newGet(ctx, u)
	if err != nil {
		return nil, err
	}
	resp, err := httpClientLong.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, nil
}

// openFiles counts the open file descriptors of a process.
func openFiles(pid int) (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries), err
}

// finish checks, once every virtual user has stopped, that each session
// ended exactly once, as its user saw it end: from the server's metrics
// and, once it has stopped (and flushed its log), from its audit log.
func (s *soakServer) finish(ctx context.Context) (soakStore, error) {
	metrics, err := scrape(ctx, s.srv.base+"/metrics")
	if err != nil {
		return soakStore{}, err
	}
	s.srv.proc.stop()
	cmd := exec.CommandContext(ctx, s.bin, "audit", "-db", "sqlite:"+s.srv.dbFile, "-json", "-event", "session_ended")
	cmd.Env = childEnv()
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return soakStore{}, fmt.Errorf("sessionguard audit: %v: %s", err, stderr.String())
	}
	ends, err := parseAuditEnds(out.Bytes())
	if err != nil {
		return soakStore{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := soakStore{Store: s.store, Samples: s.samples, Total: s.total, Sessions: len(s.sessions),
		EndedMetric: int(metrics["sessionguard_sessions_ended_total"])}
	st.Total.add(s.counts)
	for id, reasons := range ends {
		st.Ended += len(reasons)
		sess, ours := s.sessions[id]
		switch {
		case !ours:
			s.noteLocked(fmt.Sprintf("the audit log ends session %s, which no soak user held (%v)", id, reasons))
		case len(reasons) > 1:
			st.EndedTwice++
			s.noteLocked(fmt.Sprintf("session %s ended %d times: %v", id, len(reasons), reasons))
		case sess.Ended != "lost" && reasons[0] != sess.Ended:
			s.noteLocked(fmt.Sprintf("session %s ended with reason %s, but its user saw %q", id, reasons[0], sess.Ended))
		}
	}
	for id, sess := range s.sessions {
		if len(ends[id]) == 0 {
			st.NeverEnded++
			s.noteLocked(fmt.Sprintf("session %s (%s) has no session_ended entry", id, cmp.Or(sess.Ended, "live")))
		}
		if sess.Ended == "lost" {
			st.Lost++
		}
	}
	if st.EndedMetric != st.Ended {
		s.noteLocked(fmt.Sprintf("the metrics count %d ended sessions, the audit log %d", st.EndedMetric, st.Ended))
	}
	st.Problems = slices.Clone(s.problems)
	if s.omitted > 0 {
		st.Problems = append(st.Problems, fmt.Sprintf("and %d more problems", s.omitted))
	}
	st.Growth = judgeGrowth(s.samples)
	return st, nil
}

// parseAuditEnds reads `sessionguard audit -json -event session_ended` and
// returns each session's end reasons.
func parseAuditEnds(out []byte) (map[string][]string, error) {
	ends := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e struct {
			Event   string `json:"event"`
			Session string `json:"session"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("the audit log's line %q: %v", sc.Text(), err)
		}
		if e.Event == "session_ended" {
			ends[e.Session] = append(ends[e.Session], e.Reason)
		}
	}
	return ends, sc.Err()
}
