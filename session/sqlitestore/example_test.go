package sqlitestore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/sqlitestore"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// One file holds the sessions; it is created and migrated on first use.
	store, err := sqlitestore.Open(filepath.Join(dir, "sessionguard.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The Manager is the store's real caller; here we store a record by hand.
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	hash := session.TokenHash(sha256.Sum256([]byte("a token")))
	err = store.Create(ctx, session.Record{
		Info: session.Info{
			ID: "public-id", UserID: "ada",
			CreatedAt: now, AuthenticatedAt: now, LastActivity: now,
			Policy:  session.DefaultPolicy,
			Expires: session.Expiry{At: now.Add(30 * time.Minute), Reason: session.ReasonIdle},
		},
		TokenHash: hash,
	})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := store.Get(ctx, hash)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.UserID, rec.Expires.At, rec.Expires.Reason)
	// Output: ada 2026-03-01 09:30:00 +0000 UTC idle
}
