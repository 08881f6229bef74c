package audit

import (
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

func TestPrune(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		l, err := NewLog(ctx, db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.pruneBatch = 10 // so that a few dozen rows take several batches
		start := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		for i := 1; i <= 33; i++ { // times 1..33 ns after start
			if err := l.Record(ctx, Entry{Time: start.Add(time.Duration(i)), Event: LoginFailed}); err != nil {
				t.Fatal(err)
			}
		}
		deleted, err := l.Prune(ctx, start.Add(31)) // 1..30: exactly three full batches
		if err != nil || deleted != 30 {
			t.Fatalf("Prune = %d, %v; want 30", deleted, err)
		}
		left, _ := l.Query(ctx, Filter{})
		if len(left) != 3 || !left[0].Time.Equal(start.Add(31)) {
			t.Fatalf("%d entries left, want 3 from %v: %v", len(left), start.Add(31), left)
		}
		if deleted, err := l.Prune(ctx, start.Add(32)); err != nil || deleted != 1 {
			t.Errorf("Prune of one = %d, %v", deleted, err)
		}
		if deleted, err := l.Prune(ctx, start); err != nil || deleted != 0 {
			t.Errorf("Prune of nothing = %d, %v", deleted, err)
		}
	})
}
