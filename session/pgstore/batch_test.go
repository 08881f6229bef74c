package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionguard/sessionguard/session"
)

// TestABatchOfGetsIsOneQuery reads live, missing, repeated and unreadable
// records in one batch, in every query mode: each Get gets its own answer.
func TestABatchOfGetsIsOneQuery(t *testing.T) {
	t.Parallel()
	dsn := freshDSN(t)
	for _, mode := range []string{"", "exec", "simple_protocol"} {
		t.Run("mode="+mode, func(t *testing.T) {
			ctx := context.Background()
			modeDSN := dsn
			if mode != "" {
				modeDSN += "&default_query_exec_mode=" + mode
			}
			s := openDSN(t, modeDSN)
			live1, live2, corrupt := record(mode+"-live1"), record(mode+"-live2"), record(mode+"-corrupt")
			live2.Data = map[string]string{"k": "v"}
			mustCreate(t, s, live1, live2, corrupt)
			// Valid jsonb, but not the object of strings the store writes.
			if _, err := s.pool.Exec(ctx, `UPDATE session_records SET data = '[1]' WHERE id = $1`, corrupt.ID); err != nil {
				t.Fatal(err)
			}
			hashes := []session.TokenHash{live1.TokenHash, hashOf(mode + "-missing"), corrupt.TokenHash, live2.TokenHash, live1.TokenHash}
			results, err := s.getBatch(ctx, hashes)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != len(hashes) {
				t.Fatalf("%d results for %d Gets", len(results), len(hashes))
			}
			for i, want := range []session.Record{live1, {}, {}, live2, live1} {
				got := results[i]
				switch i {
				case 1:
					if !errors.Is(got.Err, session.ErrNotFound) {
						t.Errorf("Get of a missing token: %v, want ErrNotFound", got.Err)
					}
				case 2:
					if got.Err == nil || errors.Is(got.Err, session.ErrNotFound) {
						t.Errorf("Get of an unreadable record: %v, want an error other than ErrNotFound", got.Err)
					}
				default:
					if got.Err != nil || !equalRecords(got.Value, want) {
						t.Errorf("Get %d = %+v, %v; want %+v", i, got.Value, got.Err, want)
					}
				}
			}
		})
	}
}

// TestConcurrentGetsEachGetTheirOwnRecord runs many Gets at once, so that
// they share queries, and checks that each gets the record of its own
// token.
func TestConcurrentGetsEachGetTheirOwnRecord(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	recs := make([]session.Record, 40)
	for i := range recs {
		recs[i] = record(fmt.Sprint("concurrent-", i))
		if i%5 != 4 { // every fifth is never stored
			mustCreate(t, s, recs[i])
		}
	}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 60 {
				n := (w*13 + i) % len(recs)
				got, err := s.Get(ctx, recs[n].TokenHash)
				switch stored := n%5 != 4; {
				case stored && (err != nil || !equalRecords(got, recs[n])):
					t.Errorf("Get of %s: %s, %v", recs[n].ID, got.ID, err)
					return
				case !stored && !errors.Is(err, session.ErrNotFound):
					t.Errorf("Get of a token never stored: %s, %v; want ErrNotFound", got.ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestAFailedBatchFailsEveryGet: with the database gone, every Get of a
// batch fails with an error (the Manager then refuses the request), none
// with ErrNotFound.
func TestAFailedBatchFailsEveryGet(t *testing.T) {
	t.Parallel()
	dsn := freshDSN(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	hashes := []session.TokenHash{hashOf("a"), hashOf("b"), hashOf("c")}
	if results, err := s.getBatch(context.Background(), hashes); err == nil {
		t.Fatalf("getBatch on a closed pool = %v, nil; want an error", results)
	}
	if _, err := s.Get(context.Background(), hashes[0]); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get on a closed pool: %v, want an error other than ErrNotFound", err)
	}
}
