package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// TestTheSweepGoesInShortSteps ends and purges many times sweepStep
// sessions in one EndExpired: on one server every script of the sweep
// visits at most sweepStep sessions (or purgeStep ended-token records) and
// no transaction holds Redis, so that a request waits for one short step at
// most, and the result is the same.
func TestTheSweepGoesInShortSteps(t *testing.T) {
	const n = 4*sweepStep + 3
	eachForm(t, func(t *testing.T, fm form) {
		s, _ := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		// Ended sessions whose ended-token records are due for purging.
		var gone []session.TokenHash
		for i := range 2 * purgeStep {
			rec := storetest.NewRecord(fmt.Sprint("gone-", i%10), now, session.Policy{})
			if err := s.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			if _, err := s.End(ctx, rec.ID, session.Ending{Reason: session.ReasonLogout, At: now, KeepUntil: now.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			gone = append(gone, rec.TokenHash)
		}
		// And sessions to end.
		for i := range n {
			if err := s.Create(ctx, storetest.NewRecord(fmt.Sprint("user-", i%10), now, session.Policy{})); err != nil {
				t.Fatal(err)
			}
		}
		// Load the scripts, so that none needs a second try by text.
		for _, sc := range []*script{sweepStepScript, purgeStepScript, expireScript, purgeScript} {
			if err := s.c.ScriptLoad(ctx, sc.src).Err(); err != nil {
				t.Fatal(err)
			}
		}
		var sent sweepCommands
		s.c.AddHook(&sent)
		ended, err := s.EndExpired(ctx, now.Add(time.Hour), time.Hour, 2*n)
		if err != nil {
			t.Fatal(err)
		}
		if len(ended) != n {
			t.Fatalf("EndExpired ended %d sessions, want %d", len(ended), n)
		}
		if sent.transactions > 0 {
			t.Errorf("the sweep sent %d transactions", sent.transactions)
		}
		if fm == atomicForm {
			// n/sweepStep full steps and one short; the purge's steps.
			if want := n/sweepStep + 1 + 2*purgeStep/purgeStep + 1; sent.scripts != want {
				t.Errorf("EndExpired of %d sent %d scripts, want %d", n, sent.scripts, want)
			}
		}
		if sent.largest > max(sweepStep, purgeStep) {
			t.Errorf("a step of the sweep covered %d sessions, more than %d", sent.largest, max(sweepStep, purgeStep))
		}
		for _, h := range gone {
			if _, err := s.Ended(ctx, h); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Ended of a purged token: %v, want ErrNotFound", err)
			}
		}
		for _, e := range ended {
			if got, err := s.Ended(ctx, e.TokenHash); err != nil || got.Reason != e.Reason {
				t.Fatalf("Ended of a swept token = %+v, %v; want reason %s", got, err, e.Reason)
			}
		}
	})
}

// sweepCommands counts the scripts a client runs, the transactions it
// sends, and the most scripts or range reads one pipeline or step covers.
type sweepCommands struct {
	scripts, transactions, largest int
}

func (c *sweepCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *sweepCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.scripts++
			// A step script's limit follows the script, the key count,
			// the key, the prefix, the mode and now (ns and ms).
			if args := cmd.Args(); len(args) > 8 && (args[1] == sweepStepScript.sha || args[1] == purgeStepScript.sha) {
				if n, err := strconv.Atoi(fmt.Sprint(args[8])); err == nil {
					c.largest = max(c.largest, n)
				}
			}
		}
		return next(ctx, cmd)
	}
}
func (c *sweepCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		scripts := 0
		for _, cmd := range cmds {
			switch cmd.Name() {
			case "multi":
				c.transactions++
			case "evalsha", "eval":
				scripts++
			}
		}
		c.largest = max(c.largest, scripts)
		return next(ctx, cmds)
	}
}

// TestTheSweepKeepsTheReasonAtOnce: on one server, the script that ends an
// expired session also records why, so that a request presenting its token
// while EndExpired runs is told "idle" or "absolute", never nothing.
func TestTheSweepKeepsTheReasonAtOnce(t *testing.T) {
	s, _ := newTestStore(t, atomicForm)
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	p := session.Policy{IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour}
	idle := storetest.NewRecord("alice", now, p)
	absolute := storetest.NewRecord("bob", now, session.Policy{IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour})
	for _, rec := range []session.Record{idle, absolute} {
		if err := s.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	// Only the step scripts, without the purge.
	ended, err := s.sweepAtomic(ctx, now.Add(2*time.Hour).UnixNano(), 24*time.Hour, 10)
	if err != nil || len(ended) != 2 {
		t.Fatalf("sweepAtomic: %d records, %v", len(ended), err)
	}
	for _, tc := range []struct {
		rec    session.Record
		reason session.EndReason
		at     time.Time
	}{
		{idle, session.ReasonIdle, now.Add(time.Minute)},
		{absolute, session.ReasonAbsolute, now.Add(time.Hour)},
	} {
		e, err := s.Ended(ctx, tc.rec.TokenHash)
		if err != nil {
			t.Fatalf("%s: no ended-token record right after the script: %v", tc.rec.UserID, err)
		}
		if e.Reason != tc.reason || !e.At.Equal(tc.at) || !e.KeepUntil.Equal(tc.at.Add(24*time.Hour)) {
			t.Errorf("%s: ended %+v, want %s at %v kept a day", tc.rec.UserID, e, tc.reason, tc.at)
		}
	}
}
