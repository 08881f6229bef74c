package redisstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// TestTheSweepHoldsRedisForOneChunkAtATime ends and purges more than
// sweepChunk sessions in one EndExpired: on one server every script and
// transaction covers at most sweepChunk sessions, so that no command of the
// sweep holds Redis for a whole batch, and the result is the same.
func TestTheSweepHoldsRedisForOneChunkAtATime(t *testing.T) {
	const n = 2*sweepChunk + 50
	eachForm(t, func(t *testing.T, fm form) {
		s, _ := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		// Ended sessions whose ended-token records are due for purging.
		var gone []session.TokenHash
		for i := range n {
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
		for _, sc := range []*script{expireBatchScript, purgeBatchScript} {
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
		if fm == atomicForm {
			// Three scripts to end them (100, 100, 50), three transactions
			// to keep their endings, three purge scripts (100, 100, 50).
			if sent.scripts != 6 || len(sent.transactions) != 3 {
				t.Errorf("EndExpired of %d sent %d scripts and transactions of %v commands, want 6 scripts and 3 transactions",
					n, sent.scripts, sent.transactions)
			}
			for _, size := range sent.transactions {
				if size > 6*sweepChunk+2 { // MULTI and EXEC around 6 per session
					t.Errorf("a transaction of %d commands, more than %d sessions' worth", size, sweepChunk)
				}
			}
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

// sweepCommands counts the scripts a client runs and the size of each
// transaction it sends.
type sweepCommands struct {
	scripts      int
	transactions []int
}

func (c *sweepCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *sweepCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.scripts++
		}
		return next(ctx, cmd)
	}
}
func (c *sweepCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			c.transactions = append(c.transactions, len(cmds))
		}
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
	// Only the script, as the first half of EndExpired.
	recs, err := s.expireAtomic(ctx, now.Add(2*time.Hour).UnixNano(), 24*time.Hour, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("expireAtomic: %d records, %v", len(recs), err)
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
