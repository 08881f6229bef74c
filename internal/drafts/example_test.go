package drafts_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/sessionguard/sessionguard/internal/drafts"
	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// openExampleDB opens a throwaway SQLite database for the examples.
func openExampleDB() (*sqldb.DB, func()) {
	dir, err := os.MkdirTemp("", "drafts-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(dir, "sessionguard.db"))
	if err != nil {
		log.Fatal(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

// The browser script saves a form shortly before the session times out and
// asks for it again after the same user signs in.
func ExampleStore() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()

	store, err := drafts.NewStore(ctx, db, drafts.Options{}) // kept a day, 64 KiB, 20 per user
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Save(ctx, drafts.Draft{User: "alice", Path: "/", Form: "note",
		Fields: map[string]string{"note": "Call the bank about the transfer"}})
	if err != nil {
		log.Fatal(err)
	}

	list, _ := store.Load(ctx, "alice", "/")
	fmt.Println(len(list), list[0].Form, list[0].Fields["note"])
	list, _ = store.Load(ctx, "bob", "/")
	fmt.Println(len(list), "for bob")

	store.Delete(ctx, "alice", "/", "note") // once restored
	list, _ = store.Load(ctx, "alice", "/")
	fmt.Println(len(list), "after delete")
	// Output:
	// 1 note Call the bank about the transfer
	// 0 for bob
	// 0 after delete
}

// A server mounts the handler inside its session middleware; by default the
// user is the session's. Here a stand-in tells who is signed in.
func ExampleHandler() {
	db, done := openExampleDB()
	defer done()
	store, err := drafts.NewStore(context.Background(), db, drafts.Options{})
	if err != nil {
		log.Fatal(err)
	}
	signedIn := func(r *http.Request) (string, bool) { return "alice", true }
	mux := http.NewServeMux()
	mux.Handle("/auth/drafts", drafts.Handler(store, signedIn))

	r := httptest.NewRequest("POST", "/auth/drafts",
		strings.NewReader(`{"form":"note","path":"/","fields":{"note":"half a thought"}}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println("save:", w.Code)

	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/auth/drafts?path=/", nil))
	fmt.Println("load:", w.Code, strings.Contains(w.Body.String(), `"note":"half a thought"`))
	// Output:
	// save: 200
	// load: 200 true
}

// Save drops the fields that hold secrets, judged by their names and by
// what the page marks them as.
func ExampleSensitive() {
	fmt.Println(drafts.Sensitive("note", ""), drafts.Sensitive("spinner", ""))
	fmt.Println(drafts.Sensitive("newPassword", ""), drafts.Sensitive("card_number", ""), drafts.Sensitive("cvc", ""))
	fmt.Println(drafts.Sensitive("answer", "sensitive"), drafts.Sensitive("field3", "billing cc-number"))
	// Output:
	// false false
	// true true true
	// true true
}
