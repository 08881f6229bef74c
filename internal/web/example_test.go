package web_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/web"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
)

// The wiring of a server: metrics first (the session Manager reports to
// them), then the Manager, the accounts, and the web application on top.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(ctx, "sqlite:"+filepath.Join(dir, "example.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	accounts, err := account.NewStore(ctx, db, account.Options{})
	if err != nil {
		log.Fatal(err)
	}
	authn, err := account.NewAuthenticator(accounts, account.AuthOptions{})
	if err != nil {
		log.Fatal(err)
	}

	registry := prometheus.NewRegistry()
	m, err := metrics.New(registry)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := session.New(session.Config{
		Store:     memstore.New(),
		Observers: []session.Observer{m}, // and the audit log
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()

	srv, err := web.New(web.Config{
		Sessions:      sessions,
		Accounts:      accounts,
		Authenticator: authn,
		SecondFactors: accounts, // administrators need one by default
		Metrics:       m,
		Gatherer:      registry,
		Policies: map[string]session.Policy{
			"admin": session.Presets[1].Policy, // nist-aal3: 15 minutes idle
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// http.ListenAndServe("localhost:8080", srv.Handler()) in a program.
	h := srv.Handler()

	for _, path := range []string{"/healthz", "/", "/auth/login"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		line := fmt.Sprint(path, " ", rec.Code)
		if loc := rec.Header().Get("Location"); loc != "" {
			line += " to " + loc
		}
		fmt.Println(line)
	}
	// Output:
	// /healthz 200
	// / 303 to /auth/login?next=%2F
	// /auth/login 200
}
