package redisstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Open connects to the Redis deployment named by dsn and returns a Store on
// it. The Store owns the client it makes and closes it on Close. Open does
// not wait for the server: a wrong address shows in the first call (call Ping
// to check at start-up).
//
// The DSN forms:
//
//	redis://[user[:password]@]host[:port][/db][?options]        one server
//	rediss://...                                                the same over TLS
//	unix://[user[:password]@]/path/to/redis.sock[?db=N&options] one server, Unix socket
//	redis[s]://[user[:password]@]h1:port,h2:port,...[?options]   Redis Cluster
//	redis[s]://[...]host:port?cluster=true                       Cluster, one seed address
//	redis[s]://[user[:password]@]s1:26379,s2:26379[/db]?master_name=NAME[&options]
//	                                                            Sentinel
//
// The port defaults to 6379, and to 26379 for Sentinel addresses. db (the
// logical database) defaults to 0, the only one a Cluster has. user and
// password are those of the Redis servers; Sentinels that require their own
// take sentinel_username and sentinel_password. Special characters in a
// password must be percent-encoded, as in any URL.
//
// options are go-redis's URL options (dial_timeout, read_timeout,
// write_timeout, pool_size, max_retries, client_name, protocol, skip_verify
// for rediss://, and the others redis.ParseURL documents); an unknown option
// is an error, so a typo is not silently ignored. Options that would send
// reads to replicas do not exist here: a replica may still hold a session
// that has ended.
//
// Every client Open makes has ContextTimeoutEnabled set, so the context of a
// call (the Manager's store timeout) bounds the wait for a slow server.
func Open(dsn string, opts ...Option) (*Store, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var client redis.UniversalClient
	if cfg.single != nil {
		client = redis.NewClient(cfg.single)
	} else {
		client = redis.NewUniversalClient(cfg.multi)
	}
	s, err := New(client, opts...)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// dsnConfig is a parsed DSN: options for one server, or for a Cluster or
// Sentinel deployment.
type dsnConfig struct {
	single *redis.Options
	multi  *redis.UniversalOptions
}

// errDSNForm describes the DSN forms, for errors; it never echoes the DSN,
// which may hold a password.
const errDSNForm = "want redis://[user:password@]host[:port][/db][?options], rediss:// for TLS, " +
	"several host:port separated by commas for a Cluster, or ?master_name= for Sentinel"

// parseDSN reads a DSN of one of the forms Open documents. The parts that
// concern one connection (credentials, database, TLS, go-redis's query
// options) are read by redis.ParseURL, from the DSN rewritten to its first
// address; the parts it does not know (the other addresses, cluster,
// master_name and the Sentinel credentials) are taken out first and read
// here.
func parseDSN(dsn string) (dsnConfig, error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	switch {
	case !ok:
		return dsnConfig{}, fmt.Errorf("redisstore: the DSN is not a URL: %s", errDSNForm)
	case scheme != "redis" && scheme != "rediss" && scheme != "unix":
		return dsnConfig{}, fmt.Errorf("redisstore: unknown DSN scheme %q: %s", scheme, errDSNForm)
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hostlist := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostlist = authority[:i+1], authority[i+1:]
	}
	path, rawQuery, _ := strings.Cut(tail, "?")
	rawQuery, _, _ = strings.Cut(rawQuery, "#")
	if i := strings.Index(path, "#"); i >= 0 {
		path = path[:i]
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return dsnConfig{}, fmt.Errorf("redisstore: the DSN's query is malformed: %s", errDSNForm)
	}
	ours := query.Has("master_name") || query.Has("cluster") ||
		query.Has("sentinel_username") || query.Has("sentinel_password")
	take := func(name string) string {
		v := query.Get(name)
		query.Del(name)
		return v
	}
	master := take("master_name")
	sentinelUser, sentinelPassword := take("sentinel_username"), take("sentinel_password")
	clusterParam := take("cluster")
	cluster := false
	if clusterParam != "" {
		if cluster, err = strconv.ParseBool(clusterParam); err != nil {
			return dsnConfig{}, fmt.Errorf("redisstore: DSN option cluster=%q is not a boolean", clusterParam)
		}
	}

	if scheme == "unix" {
		if ours {
			return dsnConfig{}, errors.New("redisstore: a unix:// DSN names one server: it cannot take master_name, cluster or Sentinel credentials")
		}
		o, err := redis.ParseURL(dsn)
		if err != nil {
			return dsnConfig{}, dsnError(err)
		}
		o.ContextTimeoutEnabled = true
		return dsnConfig{single: o}, nil
	}

	hosts := strings.Split(hostlist, ",")
	defaultPort := "6379"
	if master != "" {
		defaultPort = "26379"
	}
	addrs := make([]string, len(hosts))
	for i, h := range hosts {
		if addrs[i], err = hostPort(h, defaultPort); err != nil {
			return dsnConfig{}, err
		}
	}
	if master != "" && cluster {
		return dsnConfig{}, errors.New("redisstore: the DSN sets both master_name (Sentinel) and cluster")
	}
	if master == "" && (sentinelUser != "" || sentinelPassword != "") {
		return dsnConfig{}, errors.New("redisstore: the DSN sets Sentinel credentials without master_name")
	}
	if len(addrs) > 1 && master == "" {
		cluster = true
	}

	// The rest of the DSN, on the first address, for go-redis.
	single := scheme + "://" + userinfo + addrs[0] + path
	if len(query) > 0 {
		single += "?" + query.Encode()
	}
	o, err := redis.ParseURL(single)
	if err != nil {
		return dsnConfig{}, dsnError(err)
	}
	o.ContextTimeoutEnabled = true
	if !cluster && master == "" {
		return dsnConfig{single: o}, nil
	}
	if cluster && o.DB != 0 {
		return dsnConfig{}, fmt.Errorf("redisstore: a Redis Cluster has only database 0; the DSN asks for %d", o.DB)
	}
	return dsnConfig{multi: &redis.UniversalOptions{
		Addrs:                   addrs,
		IsClusterMode:           cluster,
		MasterName:              master,
		SentinelUsername:        sentinelUser,
		SentinelPassword:        sentinelPassword,
		DB:                      o.DB,
		ClientName:              o.ClientName,
		Protocol:                o.Protocol,
		Username:                o.Username,
		Password:                o.Password,
		MaxRetries:              o.MaxRetries,
		MinRetryBackoff:         o.MinRetryBackoff,
		MaxRetryBackoff:         o.MaxRetryBackoff,
		DialTimeout:             o.DialTimeout,
		ReadTimeout:             o.ReadTimeout,
		WriteTimeout:            o.WriteTimeout,
		ContextTimeoutEnabled:   true,
		PoolFIFO:                o.PoolFIFO,
		PoolSize:                o.PoolSize,
		MaxConcurrentDials:      o.MaxConcurrentDials,
		PoolTimeout:             o.PoolTimeout,
		MinIdleConns:            o.MinIdleConns,
		MaxIdleConns:            o.MaxIdleConns,
		MaxActiveConns:          o.MaxActiveConns,
		ConnMaxIdleTime:         o.ConnMaxIdleTime,
		ConnMaxLifetime:         o.ConnMaxLifetime,
		ConnMaxLifetimeJitter:   o.ConnMaxLifetimeJitter,
		PipelinePoolSize:        o.PipelinePoolSize,
		PipelineReadBufferSize:  o.PipelineReadBufferSize,
		PipelineWriteBufferSize: o.PipelineWriteBufferSize,
		TLSConfig:               o.TLSConfig,
	}}, nil
}

// hostPort normalizes one address of a DSN to host:port, adding the default
// port if it has none.
func hostPort(h, defaultPort string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("redisstore: DSN address %q %s: %s", h, why, errDSNForm)
	}
	if h == "" {
		return bad("is empty")
	}
	host, port, err := net.SplitHostPort(h)
	switch {
	case err == nil:
	case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]"):
		host, port = h[1:len(h)-1], defaultPort
	case !strings.Contains(h, ":"):
		host, port = h, defaultPort
	default:
		return bad("is not host:port (an IPv6 address needs brackets)")
	}
	if host == "" {
		return bad("has no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("has an invalid port")
	}
	return net.JoinHostPort(host, port), nil
}

// dsnError rewrites an error of redis.ParseURL without the DSN, which
// url.Error would quote, password and all.
func dsnError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("redisstore: invalid DSN: %w", err)
}
