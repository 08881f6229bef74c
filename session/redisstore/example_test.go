package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/session"
	"github.com/sessionguard/sessionguard/session/redisstore"
)

// Open a Store on a Redis server and give it to the Manager, which is its
// only caller. This example needs a server, so it is compiled but not run.
func ExampleOpen() {
	// rediss:// for TLS; "redis://h1:6379,h2:6379,h3:6379" for a Cluster;
	// "redis://s1:26379,s2:26379/0?master_name=mymaster" for Sentinel.
	store, err := redisstore.Open("redis://127.0.0.1:6379/0", redisstore.WithKeyPrefix("myapp:"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Ping(context.Background()); err != nil {
		log.Fatal("Redis does not answer: ", err)
	}

	m, err := session.New(session.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	http.Handle("/", m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})))
}

// Give New a client you made yourself, here for a Redis Cluster. The Store
// leaves it open on Close.
func ExampleNew() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		ContextTimeoutEnabled: true, // the Manager's store timeout bounds each call
	})
	defer client.Close()
	store, err := redisstore.New(client, redisstore.WithGrace(2*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_ = store // give it to session.New
}
