package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// Option enables the optional groups of Run.
type Option func(*config)

type config struct {
	reopen       func(t testing.TB, s session.Store) session.Store
	secondHandle func(t testing.TB, s session.Store) session.Store
}

// WithReopen gives Run a way to close s and open the same database again,
// as a restarted process would. It enables the Durable group: records,
// endings and data survive a reopen. The store reopen returns is closed by
// the cleanup reopen registers.
func WithReopen(reopen func(t testing.TB, s session.Store) session.Store) Option {
	return func(c *config) { c.reopen = reopen }
}

// WithSecondHandle gives Run a way to open another handle on the database
// of s, as a second process would. open registers the cleanup that closes
// it. It enables the SecondHandle group: concurrent sweepers on both
// handles end each record once, End races across handles have one winner,
// and writes through one handle are seen by the other.
func WithSecondHandle(open func(t testing.TB, s session.Store) session.Store) Option {
	return func(c *config) { c.secondHandle = open }
}

// Run checks that the stores made by newStore keep every rule of the
// session.Store contract. newStore is called once per subtest and must return
// a fresh, empty store, and register a t.Cleanup that releases it; see the
// package documentation.
func Run(t *testing.T, newStore func(t testing.TB) session.Store, opts ...Option) {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	groups := []struct {
		name  string
		cases []testCase
		skip  string // why the group does not run, if it does not
	}{
		{"Create", createCases, ""},
		{"Touch", touchCases, ""},
		{"SaveData", saveDataCases, ""},
		{"Renew", renewCases, ""},
		{"End", endCases, ""},
		{"EndExpired", endExpiredCases, ""},
		{"List", listCases, ""},
		{"Count", countCases, ""},
		{"Concurrency", concurrencyCases, ""},
		{"PingClose", pingCloseCases, ""},
		{"Durable", durableCases, unless(cfg.reopen != nil, "needs WithReopen")},
		{"SecondHandle", secondHandleCases, unless(cfg.secondHandle != nil, "needs WithSecondHandle")},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			if g.skip != "" {
				t.Skip(g.skip)
			}
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					s := newStore(t)
					if s == nil {
						t.Fatal("newStore returned a nil Store")
					}
					c.run(&harness{T: t, ctx: t.Context(), s: s, now: baseTime(), cfg: &cfg})
				})
			}
		})
	}
}

// unless returns why if ok is false, and "" otherwise.
func unless(ok bool, why string) string {
	if ok {
		return ""
	}
	return why
}

// NewRecord returns a session record of userID created, authenticated and
// last active at now, with policy p (session.DefaultPolicy when p is zero),
// Expires as the Manager computes it (the earlier of now+IdleTimeout and
// now+AbsoluteTimeout; a tie is absolute), a random 128-bit ID, a random
// token hash (from crypto/rand), IP 192.0.2.1 (RFC 5737 documentation
// range), user agent "storetest", not Persistent, and nil Data.
func NewRecord(userID string, now time.Time, p session.Policy) session.Record {
	if p == (session.Policy{}) {
		p = session.DefaultPolicy
	}
	var id [16]byte
	rand.Read(id[:]) // never fails; it crashes the program if the OS has no randomness
	return session.Record{
		Info: session.Info{
			ID:              base64.RawURLEncoding.EncodeToString(id[:]),
			UserID:          userID,
			CreatedAt:       now,
			AuthenticatedAt: now,
			LastActivity:    now,
			Policy:          p,
			IP:              "192.0.2.1",
			UserAgent:       "storetest",
			Expires:         expiry(p, now, now),
		},
		TokenHash: randomHash(),
	}
}

// expiry is the Manager's rule, for the records the suite makes: the
// earlier of the idle and the absolute deadline, a tie being absolute.
func expiry(p session.Policy, authAt, last time.Time) session.Expiry {
	idle, abs := last.Add(p.IdleTimeout), authAt.Add(p.AbsoluteTimeout)
	if !abs.After(idle) {
		return session.Expiry{At: abs, Reason: session.ReasonAbsolute}
	}
	return session.Expiry{At: idle, Reason: session.ReasonIdle}
}

// testCase is one rule of the contract, checked against a fresh store.
type testCase struct {
	name string
	run  func(h *harness)
}

// harness is a subtest's store with the helpers that check it. It embeds the
// subtest's *testing.T so failures point at the case.
type harness struct {
	*testing.T
	ctx context.Context
	s   session.Store
	now time.Time // the subtest's "now"; every expiry is after it
	cfg *config
}

// policy is the suite's usual policy: NIST AAL2's timeouts.
var policy = session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}

// baseTime is a subtest's "now": the current second of the real clock (so
// that stores with real TTLs keep the records) with a nanosecond part that
// storage at microsecond precision would lose.
func baseTime() time.Time { return time.Unix(time.Now().Unix(), 123456789) }

// Zones other than UTC, for times that must keep their instant when a store
// drops or misreads the offset.
var (
	zoneEast = time.FixedZone("storetest+0530", 5*3600+30*60)
	zoneWest = time.FixedZone("storetest-0300", -3*3600)
)

func randomHash() session.TokenHash {
	var h session.TokenHash
	rand.Read(h[:])
	return h
}

// sub runs f as a subtest on the same store.
func (h *harness) sub(name string, f func(h *harness)) {
	h.Run(name, func(t *testing.T) {
		sh := *h
		sh.T, sh.ctx = t, t.Context()
		f(&sh)
	})
}

// on returns the harness checking s instead, another handle or a reopened
// store.
func (h *harness) on(s session.Store) *harness {
	oh := *h
	oh.s = s
	return &oh
}

// record returns a new record of userID at the subtest's now with policy.
func (h *harness) record(userID string) session.Record {
	return NewRecord(userID, h.now, policy)
}

// expiresAt returns rec with Expires set to now+d for reason.
func (h *harness) expiresAt(rec session.Record, d time.Duration, reason session.EndReason) session.Record {
	rec.Expires = session.Expiry{At: h.now.Add(d), Reason: reason}
	return rec
}

// create stores rec and stops the subtest if that fails.
func (h *harness) create(rec session.Record) session.Record {
	h.Helper()
	if err := h.s.Create(h.ctx, rec); err != nil {
		h.Fatalf("Create(%s): %v", rec.ID, err)
	}
	return rec
}

// get returns the record of hash, stopping the subtest if Get fails.
func (h *harness) get(hash session.TokenHash) session.Record {
	h.Helper()
	got, err := h.s.Get(h.ctx, hash)
	if err != nil {
		h.Fatalf("Get: %v, want the record", err)
	}
	return got
}

// wantRecord checks that Get(want.TokenHash) returns want, field by field.
func (h *harness) wantRecord(want session.Record) {
	h.Helper()
	got, err := h.s.Get(h.ctx, want.TokenHash)
	if err != nil {
		h.Fatalf("Get(hash of %s): %v, want the record", want.ID, err)
	}
	if d := diff(got, want); d != "" {
		h.Errorf("Get(hash of %s) returned a different record:\n%s", want.ID, d)
	}
}

// wantGone checks that Get(hash) answers ErrNotFound.
func (h *harness) wantGone(hash session.TokenHash, why string) {
	h.Helper()
	got, err := h.s.Get(h.ctx, hash)
	if !errors.Is(err, session.ErrNotFound) {
		h.Errorf("Get %s: got (record %q, error %v), want ErrNotFound", why, got.ID, err)
	}
}

// wantEnded checks that Ended(hash) answers want.
func (h *harness) wantEnded(hash session.TokenHash, want session.Ending) {
	h.Helper()
	got, err := h.s.Ended(h.ctx, hash)
	if err != nil {
		h.Fatalf("Ended: %v, want %+v", err, want)
	}
	if d := diffEnding(got, want); d != "" {
		h.Errorf("Ended returned a different ending:\n%s", d)
	}
}

// wantNoEnded checks that Ended(hash) answers ErrNotFound.
func (h *harness) wantNoEnded(hash session.TokenHash, why string) {
	h.Helper()
	got, err := h.s.Ended(h.ctx, hash)
	if !errors.Is(err, session.ErrNotFound) {
		h.Errorf("Ended %s: got (%+v, %v), want ErrNotFound", why, got, err)
	}
}

// wantErr checks that err is target (by errors.Is).
func (h *harness) wantErr(err, target error, call string) {
	h.Helper()
	if !errors.Is(err, target) {
		h.Errorf("%s: got error %v, want %v", call, err, target)
	}
}

// list calls List and stops the subtest if it fails.
func (h *harness) list(userID string, limit int) []session.Record {
	h.Helper()
	recs, err := h.s.List(h.ctx, userID, limit)
	if err != nil {
		h.Fatalf("List(%q, %d): %v", userID, limit, err)
	}
	return recs
}

// wantList checks that List(userID, limit) returns want, in order.
func (h *harness) wantList(userID string, limit int, want ...session.Record) {
	h.Helper()
	got := h.list(userID, limit)
	if !slices.Equal(ids(got), ids(want)) {
		h.Errorf("List(%q, %d) = %v, want %v", userID, limit, ids(got), ids(want))
		return
	}
	for i := range got {
		if d := diff(got[i], want[i]); d != "" {
			h.Errorf("List(%q, %d)[%d] differs from the stored record:\n%s", userID, limit, i, d)
		}
	}
}

// endExpired calls EndExpired and stops the subtest if it fails.
func (h *harness) endExpired(now time.Time, keep time.Duration, limit int) []session.Ended {
	h.Helper()
	ended, err := h.s.EndExpired(h.ctx, now, keep, limit)
	if err != nil {
		h.Fatalf("EndExpired(now+%v, %v, %d): %v", now.Sub(h.now), keep, limit, err)
	}
	return ended
}

// sweptEnding is the Ending EndExpired gives rec: its expiry, kept for keep.
func sweptEnding(rec session.Record, keep time.Duration) session.Ending {
	return session.Ending{Reason: rec.Expires.Reason, At: rec.Expires.At, KeepUntil: rec.Expires.At.Add(keep)}
}

func ids(recs []session.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func endedIDs(ended []session.Ended) []string {
	out := make([]string, len(ended))
	for i, e := range ended {
		out[i] = e.ID
	}
	return out
}

// diff describes how got differs from want, or returns "" if they are the
// same record: times are compared with Equal, and nil Data equals empty Data.
func diff(got, want session.Record) string {
	var b strings.Builder
	field := func(name string, same bool, g, w any) {
		if !same {
			fmt.Fprintf(&b, "\t%s: got %v, want %v\n", name, g, w)
		}
	}
	field("ID", got.ID == want.ID, got.ID, want.ID)
	field("UserID", got.UserID == want.UserID, got.UserID, want.UserID)
	field("CreatedAt", got.CreatedAt.Equal(want.CreatedAt), fmtTime(got.CreatedAt), fmtTime(want.CreatedAt))
	field("AuthenticatedAt", got.AuthenticatedAt.Equal(want.AuthenticatedAt), fmtTime(got.AuthenticatedAt), fmtTime(want.AuthenticatedAt))
	field("LastActivity", got.LastActivity.Equal(want.LastActivity), fmtTime(got.LastActivity), fmtTime(want.LastActivity))
	field("Policy", got.Policy == want.Policy, got.Policy, want.Policy)
	field("IP", got.IP == want.IP, got.IP, want.IP)
	field("UserAgent", got.UserAgent == want.UserAgent, got.UserAgent, want.UserAgent)
	field("Expires.At", got.Expires.At.Equal(want.Expires.At), fmtTime(got.Expires.At), fmtTime(want.Expires.At))
	field("Expires.Reason", got.Expires.Reason == want.Expires.Reason, got.Expires.Reason, want.Expires.Reason)
	field("Persistent", got.Persistent == want.Persistent, got.Persistent, want.Persistent)
	field("TokenHash", got.TokenHash == want.TokenHash, got.TokenHash, want.TokenHash)
	field("Data", maps.Equal(got.Data, want.Data), got.Data, want.Data)
	return b.String()
}

func diffEnding(got, want session.Ending) string {
	var b strings.Builder
	if got.Reason != want.Reason {
		fmt.Fprintf(&b, "\tReason: got %q, want %q\n", got.Reason, want.Reason)
	}
	if !got.At.Equal(want.At) {
		fmt.Fprintf(&b, "\tAt: got %s, want %s\n", fmtTime(got.At), fmtTime(want.At))
	}
	if !got.KeepUntil.Equal(want.KeepUntil) {
		fmt.Fprintf(&b, "\tKeepUntil: got %s, want %s\n", fmtTime(got.KeepUntil), fmtTime(want.KeepUntil))
	}
	return b.String()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
