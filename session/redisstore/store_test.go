package redisstore

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// eachForm runs f once per form, in parallel.
func eachForm(t *testing.T, f func(t *testing.T, fm form)) {
	testDSN(t)
	for _, fm := range []form{atomicForm, clusterForm} {
		t.Run(fm.String(), func(t *testing.T) {
			t.Parallel()
			f(t, fm)
		})
	}
}

// expiryOf is the expiry the Manager gives a session of policy p
// authenticated at auth and last active at last.
func expiryOf(p session.Policy, auth, last time.Time) session.Expiry {
	idle, abs := last.Add(p.IdleTimeout), auth.Add(p.AbsoluteTimeout)
	if !abs.After(idle) {
		return session.Expiry{At: abs, Reason: session.ReasonAbsolute}
	}
	return session.Expiry{At: idle, Reason: session.ReasonIdle}
}

// renewalAt is the Manager's renewal at at of a session of policy p.
func renewalAt(p session.Policy, at time.Time) session.Renewal {
	return session.Renewal{AuthenticatedAt: at, LastActivity: at, Expires: expiryOf(p, at, at)}
}

// touch records activity of rec at at as the Manager would, and returns
// the record as the store now keeps it.
func touch(t *testing.T, s *Store, rec session.Record, at time.Time) session.Record {
	t.Helper()
	exp := expiryOf(rec.Policy, rec.AuthenticatedAt, at)
	if err := s.Touch(t.Context(), rec.ID, at, exp); err != nil {
		t.Fatal(err)
	}
	if at.After(rec.LastActivity) {
		rec.LastActivity = at
	}
	if exp.At.After(rec.Expires.At) {
		rec.Expires = exp
	}
	return rec
}

// expireTime returns the Unix millisecond at which Redis drops key, or -1
// if it never does, -2 if the key does not exist.
func expireTime(t *testing.T, c redis.UniversalClient, key string) int64 {
	t.Helper()
	ms, err := c.Do(context.Background(), "PEXPIRETIME", key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func score(t *testing.T, c redis.UniversalClient, key, member string) (float64, bool) {
	t.Helper()
	v, err := c.ZScore(context.Background(), key, member).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

func TestKeysExpireAGraceAfterTheExpiry(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		const grace = 90*time.Second + 1 // rounds up to the next millisecond
		s, raw := newTestStore(t, fm, WithGrace(grace))
		ctx := t.Context()
		now := time.Unix(time.Now().Unix(), 500_000_001) // half a millisecond and 1ns past
		p := session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 2 * time.Hour}
		rec := storetest.NewRecord("alice", now, p)
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ref := recordRef(rec.UserID, rec.ID)
		rk, idx := s.prefix+ref, s.indexKey(userTag(rec.UserID))
		graceMs := int64(90_001)

		check := func(when string, rec session.Record, member string) {
			t.Helper()
			want := msCeil(rec.Expires.At.UnixNano()) + graceMs
			if got := expireTime(t, raw, rk); got != want {
				t.Errorf("%s: the record expires at %d, want %d (expiry %s + grace, rounded up)", when, got, want, rec.Expires.At)
			}
			if got, _ := score(t, raw, idx, rec.ID); int64(got) != want {
				t.Errorf("%s: the user index scores the record %d, want its keys' expiry %d", when, int64(got), want)
			}
			if got := expireTime(t, raw, idx); got != want {
				t.Errorf("%s: the user index expires at %d, want %d, with its only record", when, got, want)
			}
			for _, k := range []string{s.tokenKey(rec.TokenHash.String()), s.idKey(rec.ID)} {
				if got := expireTime(t, raw, k); got != want {
					t.Errorf("%s: pointer %s expires at %d, want the record's %d", when, k, got, want)
				}
			}
			if got, ok := score(t, raw, s.expiryKey, member); !ok || int64(got) > msFloor(rec.Expires.At.UnixNano()) {
				t.Errorf("%s: the expiry index scores %s %d (present %v), want at most the expiry rounded down, %d",
					when, member, int64(got), ok, msFloor(rec.Expires.At.UnixNano()))
			}
		}
		check("after Create", rec, ref)
		if got, _ := score(t, raw, s.expiryKey, ref); int64(got) != msFloor(rec.Expires.At.UnixNano()) {
			t.Errorf("the expiry index scores the record %d, want its expiry rounded down, %d", int64(got), msFloor(rec.Expires.At.UnixNano()))
		}

		rec = touch(t, s, rec, now.Add(10*time.Minute+1))
		check("after Touch", rec, ref)
		rec = touch(t, s, rec, now.Add(time.Minute))
		check("after a Touch older than the last", rec, ref)

		renewed := rec
		renewed.TokenHash = storetest.NewRecord("", now, p).TokenHash
		r := renewalAt(p, now.Add(20*time.Minute))
		// An expiry earlier than the stored one: Renew writes what it is
		// given, where Touch only moves it later.
		r.Expires.At = now.Add(25 * time.Minute)
		renewed.AuthenticatedAt, renewed.LastActivity, renewed.Expires = r.AuthenticatedAt, r.LastActivity, r.Expires
		if err := s.Renew(ctx, rec.ID, rec.TokenHash, renewed.TokenHash, r); err != nil {
			t.Fatal(err)
		}
		check("after Renew", renewed, indexMember(ref, "1"))
		if got := expireTime(t, raw, s.tokenKey(rec.TokenHash.String())); got != -2 {
			t.Errorf("the old token's pointer is still there after Renew (expiry %d)", got)
		}
		if _, ok := score(t, raw, s.expiryKey, ref); ok {
			t.Error("the expiry index still holds the member of the record before its renewal")
		}

		e := session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(24*time.Hour + 1)}
		if _, err := s.End(ctx, rec.ID, e); err != nil {
			t.Fatal(err)
		}
		if got, want := expireTime(t, raw, s.endingKey(renewed.TokenHash.String())), msCeil(e.KeepUntil.UnixNano()); got != want {
			t.Errorf("the ended-token record expires at %d, want KeepUntil rounded up, %d", got, want)
		}
		if n := raw.ZCard(ctx, s.expiryKey).Val(); n != 0 {
			t.Errorf("the expiry index holds %d entries after End, want 0", n)
		}
	})
}

// dropRecord makes Redis expire a record's key now, as it would once the
// record's deadline and grace had passed without a sweep, and gives its
// user index entry that expiry too.
func dropRecord(t *testing.T, s *Store, raw redis.UniversalClient, rec session.Record) {
	t.Helper()
	ctx := context.Background()
	past := time.Now().Add(-time.Second).UnixMilli()
	if err := raw.Do(ctx, "PEXPIREAT", s.prefix+recordRef(rec.UserID, rec.ID), past).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.ZAddXX(ctx, s.indexKey(userTag(rec.UserID)), redis.Z{Score: float64(past), Member: rec.ID}).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestARecordRedisDroppedIsGone(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		dropped := storetest.NewRecord("alice", now, session.Policy{})
		kept := storetest.NewRecord("alice", now.Add(time.Second), session.Policy{})
		for _, r := range []session.Record{dropped, kept} {
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		dropRecord(t, s, raw, dropped)

		if _, err := s.Get(ctx, dropped.TokenHash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get of a dropped record: %v, want ErrNotFound", err)
		}
		at := now.Add(time.Minute)
		p := dropped.Policy
		for name, err := range map[string]error{
			"Touch":    s.Touch(ctx, dropped.ID, at, expiryOf(p, now, at)),
			"SaveData": s.SaveData(ctx, dropped.ID, nil, map[string]string{"k": "v"}),
			"Renew":    s.Renew(ctx, dropped.ID, dropped.TokenHash, storetest.NewRecord("", now, p).TokenHash, renewalAt(p, at)),
		} {
			if !errors.Is(err, session.ErrNotFound) {
				t.Errorf("%s of a dropped record: %v, want ErrNotFound", name, err)
			}
		}
		if _, err := s.End(ctx, dropped.ID, session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(time.Hour)}); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("End of a dropped record: %v, want ErrNotFound", err)
		}
		if got := ids(mustList(t, s, "alice")); !slices.Equal(got, []string{kept.ID}) {
			t.Errorf("List(alice) = %v, want only %s", got, kept.ID)
		}
		if _, ok := score(t, raw, s.indexKey(userTag("alice")), dropped.ID); ok {
			t.Error("the user index still lists the dropped record after List")
		}
		if got := ids(mustList(t, s, "")); !slices.Equal(got, []string{kept.ID}) {
			t.Errorf("List(\"\") = %v, want only %s", got, kept.ID)
		}
		ended, err := s.EndExpired(ctx, now.Add(24*time.Hour), time.Hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := endedIDs(ended); !slices.Equal(got, []string{kept.ID}) {
			t.Errorf("EndExpired ended %v, want only %s (the dropped one ended silently)", got, kept.ID)
		}
		if _, ok := score(t, raw, s.expiryKey, recordRef(dropped.UserID, dropped.ID)); ok {
			t.Error("the deadline index still holds the dropped record after a sweep")
		}
	})
}

func TestCreatePrunesTheUserIndex(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		var recs []session.Record
		for i := range 3 {
			rec := storetest.NewRecord("bob", now.Add(time.Duration(i)), session.Policy{})
			if err := s.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		dropRecord(t, s, raw, recs[0])
		dropRecord(t, s, raw, recs[1])
		if err := s.Create(ctx, storetest.NewRecord("bob", now, session.Policy{})); err != nil {
			t.Fatal(err)
		}
		// Without any List: Create alone keeps a user's index from growing
		// with sessions Redis dropped.
		if n := raw.ZCard(ctx, s.indexKey(userTag("bob"))).Val(); n != 2 {
			t.Errorf("bob's index holds %d entries, want 2 (1 kept, 1 new)", n)
		}
	})
}

func TestKeysLeftBehind(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		rec := storetest.NewRecord("carol", now, session.Policy{})
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		hash := rec.TokenHash.String()
		want := []string{s.prefix + recordRef("carol", rec.ID), s.indexKey(userTag("carol")),
			s.tokenKey(hash), s.idKey(rec.ID), s.expiryKey}
		wantKeys := func(when string, want ...string) {
			t.Helper()
			got := keys(t, raw, s.prefix)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: keys %q, want %q", when, got, want)
			}
		}
		wantKeys("after Create", want...)
		e := session.Ending{Reason: session.ReasonRevoked, At: now, KeepUntil: now.Add(time.Hour)}
		if _, err := s.End(ctx, rec.ID, e); err != nil {
			t.Fatal(err)
		}
		wantKeys("after End", s.endingKey(hash), s.endedKey)
		if _, err := s.EndExpired(ctx, now.Add(time.Hour+1), time.Hour, 10); err != nil {
			t.Fatal(err)
		}
		wantKeys("after a sweep past KeepUntil")
	})
}

func TestKeyPrefixIsolation(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		a, raw := newTestStore(t, fm)
		b, _ := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		rec := storetest.NewRecord("dave", now, session.Policy{})
		if err := a.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, rec.TokenHash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("another prefix's Get: %v, want ErrNotFound", err)
		}
		if got := mustList(t, b, ""); len(got) != 0 {
			t.Errorf("another prefix's List(\"\") = %v", ids(got))
		}
		if got := mustList(t, b, "dave"); len(got) != 0 {
			t.Errorf("another prefix's List(dave) = %v", ids(got))
		}
		if got, err := b.EndExpired(ctx, now.Add(24*time.Hour), time.Hour, 10); err != nil || len(got) != 0 {
			t.Errorf("another prefix's EndExpired = %v, %v", endedIDs(got), err)
		}
		if _, err := b.End(ctx, rec.ID, session.Ending{Reason: session.ReasonRevoked, At: now, KeepUntil: now.Add(time.Hour)}); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("another prefix's End: %v, want ErrNotFound", err)
		}
		if got := keys(t, raw, b.prefix); len(got) != 0 {
			t.Errorf("the other prefix's store wrote %q", got)
		}
		if _, err := a.Get(ctx, rec.TokenHash); err != nil {
			t.Errorf("Get under the record's own prefix: %v", err)
		}
	})
}

func TestAStalePointerFindsNothing(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		rec := storetest.NewRecord("erin", now, session.Policy{})
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		newHash := storetest.NewRecord("", now, session.Policy{}).TokenHash
		if err := s.Renew(ctx, rec.ID, rec.TokenHash, newHash, renewalAt(rec.Policy, now)); err != nil {
			t.Fatal(err)
		}
		// A pointer left by a renewal that was cut short: the record, which
		// names the current token, must refuse it.
		oldKey := s.tokenKey(rec.TokenHash.String())
		if err := raw.Set(ctx, oldKey, recordRef(rec.UserID, rec.ID), time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, rec.TokenHash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get through a stale pointer: %v, want ErrNotFound", err)
		}
	})
}

// TestTheSweepCorrectsTheExpiryIndex: on a Cluster, Touch leaves the
// expiry index alone (it is in another slot), and the sweep corrects a
// score that has become a lower bound; on one server Touch keeps it exact.
func TestTheSweepCorrectsTheExpiryIndex(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		rec := storetest.NewRecord("frank", now, session.Policy{})
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ref := recordRef(rec.UserID, rec.ID)
		first := msFloor(rec.Expires.At.UnixNano())
		rec = touch(t, s, rec, now.Add(20*time.Minute))
		want := msFloor(rec.Expires.At.UnixNano())
		afterTouch := want
		if fm == clusterForm {
			afterTouch = first
		}
		if got, _ := score(t, raw, s.expiryKey, ref); int64(got) != afterTouch {
			t.Errorf("after Touch the expiry index scores the record %d, want %d", int64(got), afterTouch)
		}
		ended, err := s.EndExpired(ctx, time.Unix(0, first*1e6).Add(time.Minute), time.Hour, 10)
		if err != nil || len(ended) != 0 {
			t.Fatalf("EndExpired before the touched expiry = %v, %v", endedIDs(ended), err)
		}
		if got, _ := score(t, raw, s.expiryKey, ref); int64(got) != want {
			t.Errorf("after a sweep the expiry index scores the record %d, want its new expiry %d", int64(got), want)
		}
	})
}

func TestACorruptRecordIsAnError(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		rec := storetest.NewRecord("gina", now, session.Policy{})
		healthy := storetest.NewRecord("hank", now, session.Policy{})
		for _, r := range []session.Record{rec, healthy} {
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := raw.HSet(ctx, s.prefix+recordRef(rec.UserID, rec.ID), fieldLast, "noon").Err(); err != nil {
			t.Fatal(err)
		}
		_, err := s.Get(ctx, rec.TokenHash)
		if err == nil || errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get of a corrupt record: %v, want an error other than ErrNotFound", err)
		}
		if _, err := s.List(ctx, "gina", 0); err == nil {
			t.Error("List of a corrupt record succeeded")
		}
		if err := s.Touch(ctx, rec.ID, now.Add(time.Minute), expiryOf(rec.Policy, now, now.Add(time.Minute))); err == nil {
			t.Error("Touch of a corrupt record succeeded")
		}
		// The sweep passes over it and ends the others.
		ended, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, 10)
		if err != nil {
			t.Fatalf("EndExpired with a corrupt record in the index: %v", err)
		}
		if got := endedIDs(ended); !slices.Equal(got, []string{healthy.ID}) {
			t.Errorf("EndExpired ended %v, want only the healthy %s", got, healthy.ID)
		}
	})
}

// roundTrips counts what a client sends: commands and pipelines, each one
// round trip.
type roundTrips struct{ n int }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n++
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n++
		return next(ctx, cmds)
	}
}

func TestRoundTrips(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, _ := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		rec := storetest.NewRecord("hal", now, session.Policy{})
		// Warm up the server's script cache, so that no call needs a second
		// try by text.
		if err := s.Create(ctx, storetest.NewRecord("hal", now, session.Policy{})); err != nil {
			t.Fatal(err)
		}
		for _, sc := range []*script{getScript, touchScript, saveDataScript, renewScript, endScript, listScript, sweepStepScript, purgeStepScript, expireScript, purgeScript} {
			if err := s.c.ScriptLoad(ctx, sc.src).Err(); err != nil {
				t.Fatal(err)
			}
		}
		// And open a connection of each pool: go-redis keeps pipelines on
		// connections of their own, whose handshake is not a call's cost.
		if _, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() }); err != nil {
			t.Fatal(err)
		}
		var rt roundTrips
		s.c.AddHook(&rt)
		calls := []struct {
			name            string
			call            func() error
			atomic, sharded int
		}{
			{"Create", func() error { return s.Create(ctx, rec) }, 1, 3},
			{"Get", func() error { _, err := s.Get(ctx, rec.TokenHash); return err }, 1, 2},
			{"Touch", func() error {
				at := now.Add(time.Minute)
				return s.Touch(ctx, rec.ID, at, expiryOf(rec.Policy, now, at))
			}, 1, 3},
			{"Touch, expiry unchanged", func() error {
				return s.Touch(ctx, rec.ID, now.Add(2*time.Minute), rec.Expires)
			}, 1, 2},
			{"SaveData", func() error { return s.SaveData(ctx, rec.ID, nil, map[string]string{"k": "v"}) }, 1, 2},
			{"Renew", func() error {
				renewed := storetest.NewRecord("", now, session.Policy{}).TokenHash
				err := s.Renew(ctx, rec.ID, rec.TokenHash, renewed, renewalAt(rec.Policy, now))
				rec.TokenHash = renewed
				return err
			}, 1, 4},
			{"List(user)", func() error { _, err := s.List(ctx, "hal", 0); return err }, 1, 1},
			{"End", func() error {
				_, err := s.End(ctx, rec.ID, session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(time.Hour)})
				return err
			}, 1, 3},
			{"Ended", func() error { _, err := s.Ended(ctx, rec.TokenHash); return err }, 1, 1},
			// One record to end and one ended-token record to purge (End's
			// above): on one server a step script and a purge script; on a
			// Cluster per band (before now's millisecond and within it) a
			// range read, and for the first one the scripts' pipeline, then
			// the ended-token records, and the purge's range read, script
			// and index removal.
			{"EndExpired", func() error {
				ended, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, 10)
				if len(ended) != 1 {
					t.Errorf("EndExpired ended %d sessions, want 1", len(ended))
				}
				return err
			}, 2, 7},
		}
		for _, c := range calls {
			rt.n = 0
			if err := c.call(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want := c.atomic
			if fm == clusterForm {
				want = c.sharded
			}
			if rt.n != want {
				t.Errorf("%s took %d round trips, want %d", c.name, rt.n, want)
			}
		}
	})
}

// TestLuaTimeArithmetic checks the scripts' exact time arithmetic against
// Go's int64 arithmetic, around the boundaries where doubles would fail:
// nanosecond differences at today's magnitudes, negative times, carries.
func TestLuaTimeArithmetic(t *testing.T) {
	s, _ := newTestStore(t, atomicForm)
	ctx := t.Context()
	check := newScript(prelude + `
local a, d, b = split(ARGV[3]), split(ARGV[4]), split(ARGV[5])
local sum = add(a, d)
return {before(sum, b) and 1 or 0, before(b, sum) and 1 or 0, msFloor(sum), msCeil(sum)}
`)
	type tcase struct{ a, d int64 }
	cases := []tcase{
		{0, 0}, {-1, 0}, {-1, 1}, {-999_999_999, 0}, {-1_000_000_000, 0}, {-1_000_000_001, 2},
		{-1_500_000, 0}, {1_500_000, 0}, {999_999_999, 1}, {1_999_999_999, 1},
		{time.Now().UnixNano(), int64(30 * time.Minute)}, {time.Now().UnixNano(), int64(12*time.Hour) + 1},
		{math.MinInt64, 0}, {math.MaxInt64 - 5, 5}, {math.MinInt64, math.MaxInt64},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a := r.Int64N(1<<62) - 1<<61
		cases = append(cases, tcase{a, r.Int64N(1 << 60)})
	}
	for _, c := range cases {
		sum := c.a + c.d
		for _, b := range []int64{sum - 1, sum, sum + 1} {
			if (b == sum-1 && sum == math.MinInt64) || (b == sum+1 && sum == math.MaxInt64) {
				continue
			}
			res, err := s.run(ctx, check, false, []string{"k"}, "", "0", itoa(c.a), itoa(c.d), itoa(b)).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			want := []int64{b2i(sum < b), b2i(b < sum), msFloor(sum), msCeil(sum)}
			if !slices.Equal(res, want) {
				t.Errorf("a=%d d=%d b=%d: Lua says [before, after, msFloor, msCeil] = %v, Go %v", c.a, c.d, b, res, want)
			}
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestMemoryPerSession measures what the package documentation's sizing
// section says, with MEMORY USAGE summed over every key.
func TestMemoryPerSession(t *testing.T) {
	s, raw := newTestStore(t, atomicForm)
	ctx := t.Context()
	const n = 1000
	now := time.Now()
	var recs []session.Record
	for i := range n {
		rec := storetest.NewRecord("user-"+strconv.Itoa(i%250)+"@example.com", now, session.Policy{})
		rec.IP = "203.0.113.42"
		rec.UserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
		rec.Data = map[string]string{"csrf": "0123456789abcdef0123456789abcdef"}
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	usage := func() (total, records int64) {
		for _, k := range keys(t, raw, s.prefix) {
			b, err := raw.MemoryUsage(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			total += b
			if strings.HasPrefix(k, s.prefix+"{") && !strings.HasSuffix(k, ":idx") {
				records += b
			}
		}
		return total / n, records / n
	}
	perSession, perRecord := usage()
	t.Logf("%d sessions of 250 users: %d bytes each in all, %d of them in the record's hash", n, perSession, perRecord)
	if perSession > 2048 {
		t.Errorf("a session takes %d bytes, more than the 2 KiB the package documentation allows for", perSession)
	}
	e := session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(24 * time.Hour)}
	for _, rec := range recs {
		if _, err := s.End(ctx, rec.ID, e); err != nil {
			t.Fatal(err)
		}
	}
	perEnded, _ := usage()
	t.Logf("an ended session's ended-token record takes %d bytes", perEnded)
	if perEnded > 400 {
		t.Errorf("an ended-token record takes %d bytes, more than the package documentation says", perEnded)
	}
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

func TestCloseLeavesTheCallersClientOpen(t *testing.T) {
	client := rawClient(t)
	defer client.Close()
	s, err := New(client, WithKeyPrefix(testPrefix()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), session.TokenHash{}); !errors.Is(err, errClosed) {
		t.Errorf("Get after Close: %v, want errClosed", err)
	}
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Errorf("the caller's client after the Store's Close: %v", err)
	}
}

// TestARecordWithoutExpiryIsUpgraded: a record written before records kept
// their expiry is read, touched and swept with the expiry its old fields
// give, which the first Touch or sweep stores.
func TestARecordWithoutExpiryIsUpgraded(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		p := session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: time.Hour}
		touched := storetest.NewRecord("old", now, p)
		swept := storetest.NewRecord("old", now, p)
		for _, rec := range []session.Record{touched, swept} {
			if err := s.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			if err := raw.HDel(ctx, s.prefix+recordRef(rec.UserID, rec.ID), fieldExpires, fieldReason).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.Get(ctx, swept.TokenHash); err != nil || !got.Expires.At.Equal(now.Add(30*time.Minute)) || got.Expires.Reason != session.ReasonIdle {
			t.Errorf("Get of a record without expiry: %+v, %v; want idle at %v", got.Expires, err, now.Add(30*time.Minute))
		}
		touched = touch(t, s, touched, now.Add(20*time.Minute)) // to idle at now+50m
		if got, _ := raw.HGet(ctx, s.prefix+recordRef(touched.UserID, touched.ID), fieldExpires).Result(); got != itoa(now.Add(50*time.Minute).UnixNano()) {
			t.Errorf("after Touch the record's expiry is %s, want now+50m", got)
		}
		ended, err := s.EndExpired(ctx, now.Add(45*time.Minute), time.Hour, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ended) != 1 || ended[0].ID != swept.ID || ended[0].Reason != session.ReasonIdle || !ended[0].At.Equal(now.Add(30*time.Minute)) {
			t.Errorf("EndExpired ended %+v, want %s, idle at %v", ended, swept.ID, now.Add(30*time.Minute))
		}
		ended, err = s.EndExpired(ctx, now.Add(time.Hour), time.Hour, 10)
		if err != nil || len(ended) != 1 || ended[0].ID != touched.ID || !ended[0].At.Equal(now.Add(50*time.Minute)) {
			t.Errorf("EndExpired at the absolute deadline ended %+v, %v; want %s at now+50m", ended, err, touched.ID)
		}
	})
}
