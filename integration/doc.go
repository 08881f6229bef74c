// Package integration holds tests of sessionguard as it is deployed: real
// `sessionguard serve` processes on real PostgreSQL and Redis servers.
//
//   - Stores that fail: each test starts a private redis-server or
//     PostgreSQL server on a free port, runs a server on it, stops the store
//     and checks that protected requests get 503 (nobody is signed in, the
//     process lives on), then starts the store again and checks that service
//     resumes by itself. They need the redis-server binary, or PostgreSQL's
//     initdb and postgres (as in Debian's postgresql package), and skip
//     without them unless SESSIONGUARD_TEST_REDIS or
//     SESSIONGUARD_TEST_POSTGRES is set, when their absence is a failure.
//   - Many instances, one truth: three servers share one PostgreSQL schema
//     (SESSIONGUARD_TEST_POSTGRES), or one Redis key prefix
//     (SESSIONGUARD_TEST_REDIS) for the sessions, and every sign-in,
//     sign-out, timeout and revocation holds on all of them.
//   - The gateway behind real proxies: nginx (auth_request) and Caddy
//     (forward_auth), each started on a free port with the configuration
//     docs/gateway.md shows (package internal/testproxy), in front of an
//     application written in the test: sign-in and the way back, 401 for
//     scripts, identity headers that a client cannot forge, roles, idle
//     timeouts, polls that never keep a session alive, request bodies,
//     logout and a gateway that is down. They need nginx and caddy (Debian
//     packages) and skip with a message naming the package without them.
//   - Reverse-proxy mode (-upstream) without a front proxy: the same
//     matrix, plus script injection into plain and gzip pages, WebSockets
//     and server-sent events.
//
// The binary is built once per run. There is no code outside the tests.
package integration
