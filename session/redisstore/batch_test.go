package redisstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/storetest"
)

// TestABatchOfGetsIsOneRoundTrip reads live, missing, stale and corrupt
// records in one batch: each Get gets its own answer, in one round trip on a
// single server and two on a Cluster.
func TestABatchOfGetsIsOneRoundTrip(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, raw := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		live1 := storetest.NewRecord("ivy", now, session.Policy{})
		live2 := storetest.NewRecord("jack", now, session.Policy{})
		renewed := storetest.NewRecord("kate", now, session.Policy{})
		corrupt := storetest.NewRecord("liam", now, session.Policy{})
		for _, r := range []session.Record{live1, live2, renewed, corrupt} {
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		newHash := storetest.NewRecord("", now, session.Policy{}).TokenHash
		if err := s.Renew(ctx, renewed.ID, renewed.TokenHash, newHash, renewalAt(renewed.Policy, now)); err != nil {
			t.Fatal(err)
		}
		if err := raw.Set(ctx, s.tokenKey(renewed.TokenHash.String()), recordRef(renewed.UserID, renewed.ID), time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := raw.HSet(ctx, s.prefix+recordRef(corrupt.UserID, corrupt.ID), fieldLast, "noon").Err(); err != nil {
			t.Fatal(err)
		}
		missing := storetest.NewRecord("", now, session.Policy{}).TokenHash
		if err := s.c.ScriptLoad(ctx, getScript.src).Err(); err != nil {
			t.Fatal(err)
		}

		var rt roundTrips
		s.c.AddHook(&rt)
		hashes := []session.TokenHash{live1.TokenHash, missing, renewed.TokenHash, corrupt.TokenHash, live2.TokenHash, live1.TokenHash}
		results, err := s.getBatch(ctx, hashes)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if fm == clusterForm {
			want = 2
		}
		if rt.n != want {
			t.Errorf("a batch of %d Gets took %d round trips, want %d", len(hashes), rt.n, want)
		}
		if len(results) != len(hashes) {
			t.Fatalf("%d results for %d Gets", len(results), len(hashes))
		}
		for i, r := range []session.Record{live1, {}, {}, {}, live2, live1} {
			got := results[i]
			switch i {
			case 1, 2:
				if !errors.Is(got.Err, session.ErrNotFound) {
					t.Errorf("Get %d: %v, want ErrNotFound", i, got.Err)
				}
			case 3:
				if got.Err == nil || errors.Is(got.Err, session.ErrNotFound) {
					t.Errorf("Get of a corrupt record: %v, want an error other than ErrNotFound", got.Err)
				}
			default:
				if got.Err != nil || got.Value.ID != r.ID || got.Value.TokenHash != r.TokenHash {
					t.Errorf("Get %d: %s, %v; want %s", i, got.Value.ID, got.Err, r.ID)
				}
			}
		}
	})
}

// TestConcurrentGetsEachGetTheirOwnRecord runs many Gets at once, so that
// they share round trips, and checks that each gets the record of its own
// token.
func TestConcurrentGetsEachGetTheirOwnRecord(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, _ := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		recs := make([]session.Record, 40)
		for i := range recs {
			recs[i] = storetest.NewRecord(fmt.Sprint("user-", i%7), now, session.Policy{})
			if i%5 != 4 { // every fifth is never stored
				if err := s.Create(ctx, recs[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for i := range 60 {
					r := recs[(w*13+i)%len(recs)]
					got, err := s.Get(ctx, r.TokenHash)
					stored := (w*13+i)%len(recs)%5 != 4
					switch {
					case stored && (err != nil || got.ID != r.ID):
						t.Errorf("Get of %s: %s, %v", r.ID, got.ID, err)
						return
					case !stored && !errors.Is(err, session.ErrNotFound):
						t.Errorf("Get of a token never stored: %s, %v; want ErrNotFound", got.ID, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// TestAFailedBatchFailsEveryGet: with Redis unreachable, every Get of a
// batch fails with an error (the Manager then refuses the request), none
// with ErrNotFound.
func TestAFailedBatchFailsEveryGet(t *testing.T) {
	for _, fm := range []form{atomicForm, clusterForm} {
		t.Run(fm.String(), func(t *testing.T) {
			client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
			defer client.Close()
			s, err := New(client)
			if err != nil {
				t.Fatal(err)
			}
			if fm == clusterForm {
				s.atomic, s.mode = false, "0"
			}
			hashes := []session.TokenHash{{1}, {2}, {3}}
			if results, err := s.getBatch(context.Background(), hashes); err == nil {
				t.Fatalf("getBatch against no server = %v, nil; want an error", results)
			}
			if _, err := s.Get(context.Background(), hashes[0]); err == nil || errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Get against no server: %v, want an error other than ErrNotFound", err)
			}
		})
	}
}

// TestGetReadsEveryByte reads records whose fields hold every kind of
// value, at each length where the reply's encoding of a value changes, in
// one batch: each comes back exactly as stored.
func TestGetReadsEveryByte(t *testing.T) {
	eachForm(t, func(t *testing.T, fm form) {
		s, _ := newTestStore(t, fm)
		ctx := t.Context()
		now := time.Now()
		odd := "\x00\xff\xc0\xc2\x90:-\r\n"
		var recs []session.Record
		for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
			value := strings.Repeat(odd, n/len(odd)+1)[:n]
			rec := storetest.NewRecord(value, now, session.Policy{})
			rec.UserAgent, rec.IP = value, value
			rec.Persistent = n%2 == 1
			if n > 0 {
				rec.Data = map[string]string{value: value, "": "x"}
			}
			if err := s.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		hashes := make([]session.TokenHash, len(recs))
		for i, r := range recs {
			hashes[i] = r.TokenHash
		}
		results, err := s.getBatch(ctx, hashes)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range recs {
			got := results[i].Value
			if err := results[i].Err; err != nil {
				t.Errorf("Get of the record with %d-byte values: %v", len(want.UserAgent), err)
				continue
			}
			if got.ID != want.ID || got.UserID != want.UserID || got.UserAgent != want.UserAgent || got.IP != want.IP ||
				got.Persistent != want.Persistent || !maps.Equal(got.Data, want.Data) || !got.Expires.At.Equal(want.Expires.At) {
				t.Errorf("the record with %d-byte values came back changed", len(want.UserAgent))
			}
		}
	})
}
