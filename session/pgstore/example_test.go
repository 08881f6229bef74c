package pgstore_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/pgstore"
)

// Every instance of the server opens the same database; the first to start
// creates the tables. (Compiled, not run: it needs a PostgreSQL server.)
func ExampleOpen() {
	ctx := context.Background()
	// For example postgres://sessionguard:secret@db.internal:5432/app?search_path=sessions
	store, err := pgstore.Open(ctx, os.Getenv("SESSIONS_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// Each instance's Manager sweeps expired sessions; the sweeps share the
	// work, and each session's end event comes from one instance only.
	sessions, err := session.New(session.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /", sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello, " + session.FromContext(r.Context()).UserID()))
	})))
	log.Fatal(http.ListenAndServe("localhost:8080", sessions.Handler(mux)))
}

// A program with a pool of its own shares it with the store; closing the
// store leaves the pool open.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	store, err := pgstore.New(ctx, pool)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if err := store.Ping(ctx); err != nil {
		log.Fatal(err)
	}
}
