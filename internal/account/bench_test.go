package account_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// BenchmarkGetCached is the account lookup of every signed-in request on
// SQLite, answered from the cache once it has checked that nobody changed
// an account meanwhile.
func BenchmarkGetCached(b *testing.B) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := account.NewStore(ctx, db, account.Options{Params: fastParams})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Create(ctx, "alice", "violet kettle drums at dawn", account.RoleUser); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "alice"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
