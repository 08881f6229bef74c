package dataversion_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/sessionguard/sessionguard/internal/dataversion"
)

// The version changes when another connection commits, and only then.
func TestReadSeesOtherConnectionsCommits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	watched, writer := open(), open()
	if _, err := writer.Exec(`CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	c, err := dataversion.Open(ctx, watched)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() int64 {
		t.Helper()
		v, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := read()
	if v := read(); v != v0 {
		t.Fatalf("nothing was written, yet the version went from %d to %d", v0, v)
	}
	if _, err := writer.Exec(`INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	v1 := read()
	if v1 == v0 {
		t.Fatal("another connection committed, yet the version stayed")
	}
	// A pooled connection of the same *sql.DB is another connection too.
	if _, err := watched.Exec(`INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if v := read(); v == v1 {
		t.Fatal("another connection of the same pool committed, yet the version stayed")
	}
}
