package memstore_test

import (
	"fmt"
	"log"
	"net/http/httptest"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
)

// A Manager keeping its sessions in memory: the sessions last as long as the
// process.
func Example() {
	store := memstore.New()
	defer store.Close()
	m, err := session.New(session.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	r := httptest.NewRequest("POST", "https://example.com/login", nil)
	if _, err := m.Login(httptest.NewRecorder(), r, "alice", session.LoginOptions{}); err != nil {
		log.Fatal(err)
	}
	sessions, err := m.List(r.Context(), "alice", 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(sessions), "session of", sessions[0].UserID)
	// Output: 1 session of alice
}
