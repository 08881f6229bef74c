package metrics_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/metrics"
	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/memstore"
)

// Metrics are created before the session Manager, which reports its events
// and how its store writes fare to them as an Observer.
func ExampleNew() {
	registry := prometheus.NewRegistry()
	m, err := metrics.New(registry)
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := session.New(session.Config{
		Store:     memstore.New(),
		Observers: []session.Observer{m},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close()
	// The gauge of live sessions asks the store, at most every 10 seconds.
	err = m.CountActive(func(ctx context.Context) (int, error) {
		list, err := sessions.List(ctx, "", 0)
		return len(list), err
	}, 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	m.Login(metrics.LoginFailure)
	m.ObserveRequest("POST /auth/login", 401, 40*time.Millisecond)

	families, _ := registry.Gather()
	for _, f := range families {
		fmt.Println(f.GetName(), len(f.GetMetric()))
	}
	// A readiness check asks whether the store takes writes.
	fmt.Println("store writes failing:", m.StoreWritesFailing())
	// Output:
	// sessionguard_http_request_duration_seconds 1
	// sessionguard_logins_total 3
	// sessionguard_sessions_active 1
	// sessionguard_sessions_ended_total 4
	// sessionguard_sessions_renewed_total 1
	// sessionguard_sessions_started_total 1
	// sessionguard_store_write_failures_total 6
	// store writes failing: <nil>
}
