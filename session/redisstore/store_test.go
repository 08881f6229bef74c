package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
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

func TestExpiryFollowsTheDeadline(t *testing.T) {
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
		wantExpiry := func(deadline time.Time) int64 { return msCeil(deadline.UnixNano()) + graceMs }

		check := func(when string, rec session.Record) {
			t.Helper()
			want := wantExpiry(rec.Deadline())
			if got := expireTime(t, raw, rk); got != want {
				t.Errorf("%s: the record expires at %d, want %d (deadline %s + grace, rounded up)", when, got, want, rec.Deadline())
			}
			if got, _ := score(t, raw, idx, rec.ID); int64(got) != want {
				t.Errorf("%s: the user index scores the record %d, want its expiry %d", when, int64(got), want)
			}
			if got := expireTime(t, raw, idx); got != want {
				t.Errorf("%s: the user index expires at %d, want %d, with its only record", when, got, want)
			}
			wantPtr := wantExpiry(rec.AbsoluteDeadline())
			for _, k := range []string{s.tokenKey(rec.TokenHash.String()), s.idKey(rec.ID)} {
				if got := expireTime(t, raw, k); got != wantPtr {
					t.Errorf("%s: pointer %s expires at %d, want the absolute deadline + grace, %d", when, k, got, wantPtr)
				}
			}
		}
		check("after Create", rec)
		if got, _ := score(t, raw, s.deadlinesKey, ref); int64(got) != msFloor(rec.Deadline().UnixNano()) {
			t.Errorf("the deadline index scores the record %d, want its deadline rounded down, %d", int64(got), msFloor(rec.Deadline().UnixNano()))
		}

		at := now.Add(10*time.Minute + 1)
		if err := s.Touch(ctx, rec.ID, at); err != nil {
			t.Fatal(err)
		}
		rec.LastActivity = at
		check("after Touch", rec)

		if err := s.Touch(ctx, rec.ID, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		check("after a Touch older than the last", rec)

		renewed := rec
		renewed.TokenHash = storetest.NewRecord("", now, p).TokenHash
		renewed.AuthenticatedAt = now.Add(20 * time.Minute)
		renewed.LastActivity = renewed.AuthenticatedAt
		if err := s.Renew(ctx, rec.ID, rec.TokenHash, renewed.TokenHash, renewed.AuthenticatedAt, renewed.LastActivity); err != nil {
			t.Fatal(err)
		}
		check("after Renew", renewed)
		if got := expireTime(t, raw, s.tokenKey(rec.TokenHash.String())); got != -2 {
			t.Errorf("the old token's pointer is still there after Renew (expiry %d)", got)
		}

		e := session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(24*time.Hour + 1)}
		if _, err := s.End(ctx, rec.ID, e); err != nil {
			t.Fatal(err)
		}
		if got, want := expireTime(t, raw, s.endingKey(renewed.TokenHash.String())), msCeil(e.KeepUntil.UnixNano()); got != want {
			t.Errorf("the ended-token record expires at %d, want KeepUntil rounded up, %d", got, want)
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
		for name, err := range map[string]error{
			"Touch":    s.Touch(ctx, dropped.ID, at),
			"SaveData": s.SaveData(ctx, dropped.ID, map[string]string{"k": "v"}),
			"Renew":    s.Renew(ctx, dropped.ID, dropped.TokenHash, storetest.NewRecord("", now, session.Policy{}).TokenHash, at, at),
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
		if _, ok := score(t, raw, s.deadlinesKey, recordRef(dropped.UserID, dropped.ID)); ok {
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
			s.tokenKey(hash), s.idKey(rec.ID), s.deadlinesKey}
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
		if err := s.Renew(ctx, rec.ID, rec.TokenHash, newHash, now, now); err != nil {
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

func TestTheSweepCorrectsTheDeadlineIndex(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		rec := storetest.NewRecord("frank", now, session.Policy{}) // deadline now+30m
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ref := recordRef(rec.UserID, rec.ID)
		at := now.Add(20 * time.Minute)
		if err := s.Touch(ctx, rec.ID, at); err != nil {
			t.Fatal(err)
		}
		// Touch leaves the index alone: its score is a lower bound.
		if got, _ := score(t, raw, s.deadlinesKey, ref); int64(got) != msFloor(now.Add(30*time.Minute).UnixNano()) {
			t.Errorf("Touch changed the deadline index score to %d", int64(got))
		}
		ended, err := s.EndExpired(ctx, now.Add(35*time.Minute), time.Hour, 10)
		if err != nil || len(ended) != 0 {
			t.Fatalf("EndExpired before the touched deadline = %v, %v", endedIDs(ended), err)
		}
		want := msFloor(at.Add(30 * time.Minute).UnixNano())
		if got, _ := score(t, raw, s.deadlinesKey, ref); int64(got) != want {
			t.Errorf("after a sweep the deadline index scores the record %d, want its new deadline %d", int64(got), want)
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
		if err := s.Touch(ctx, rec.ID, now.Add(time.Minute)); err == nil {
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
		for _, sc := range []*script{getScript, touchScript, saveDataScript, renewScript, endScript, listScript, expireBatchScript, purgeBatchScript} {
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
			{"Touch", func() error { return s.Touch(ctx, rec.ID, now.Add(time.Minute)) }, 1, 2},
			{"SaveData", func() error { return s.SaveData(ctx, rec.ID, map[string]string{"k": "v"}) }, 1, 2},
			{"Renew", func() error {
				renewed := storetest.NewRecord("", now, session.Policy{}).TokenHash
				err := s.Renew(ctx, rec.ID, rec.TokenHash, renewed, now, now)
				rec.TokenHash = renewed
				return err
			}, 1, 4},
			{"List(user)", func() error { _, err := s.List(ctx, "hal", 0); return err }, 1, 1},
			{"End", func() error {
				_, err := s.End(ctx, rec.ID, session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(time.Hour)})
				return err
			}, 1, 3},
			{"Ended", func() error { _, err := s.Ended(ctx, rec.TokenHash); return err }, 1, 1},
			// One record to end: the search, the ended-token records, the
			// purge; on a Cluster the search is a range read and a
			// pipeline per phase, and the purge finds nothing to do.
			{"EndExpired", func() error {
				ended, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, 10)
				if len(ended) != 1 {
					t.Errorf("EndExpired ended %d sessions, want 1", len(ended))
				}
				return err
			}, 3, 7},
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

// TestSeveralInstancesSweepEachRecordOnce runs the sweeps of three Stores
// with clients of their own, as three application instances would, and an
// End for every fifth session, all at once: each session must end exactly
// once.
func TestSeveralInstancesSweepEachRecordOnce(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		first, _ := newTestStore(t, fm)
		stores := []*Store{first}
		for range 2 {
			s, err := Open(testDSN(t), WithKeyPrefix(first.prefix))
			if err != nil {
				t.Fatal(err)
			}
			if fm == clusterForm {
				s.atomic, s.mode = false, "0"
			}
			t.Cleanup(func() { s.Close() })
			stores = append(stores, s)
		}
		ctx := t.Context()
		now := time.Now()
		const n = 300
		var recs []session.Record
		for i := range n {
			rec := storetest.NewRecord(fmt.Sprint("user-", i%7), now.Add(time.Duration(i)*time.Millisecond), session.Policy{})
			if err := first.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		var mu sync.Mutex
		endings := make(map[string]int)
		var wg sync.WaitGroup
		for _, s := range stores {
			wg.Go(func() {
				for {
					ended, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, 16)
					if err != nil {
						t.Errorf("EndExpired: %v", err)
						return
					}
					mu.Lock()
					for _, e := range ended {
						endings[e.ID]++
					}
					mu.Unlock()
					if len(ended) < 16 {
						return
					}
				}
			})
			wg.Go(func() {
				for i := 0; i < n; i += 5 {
					_, err := s.End(ctx, recs[i].ID, session.Ending{Reason: session.ReasonRevoked, At: now, KeepUntil: now.Add(time.Hour)})
					switch {
					case err == nil:
						mu.Lock()
						endings[recs[i].ID]++
						mu.Unlock()
					case !errors.Is(err, session.ErrNotFound):
						t.Errorf("End: %v", err)
					}
				}
			})
		}
		wg.Wait()
		for _, rec := range recs {
			if c := endings[rec.ID]; c != 1 {
				t.Errorf("session %s ended %d times, want once", rec.ID, c)
			}
		}
	})
}
