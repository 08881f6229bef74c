package redisstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sessionguard/sessionguard/internal/batch"
	"github.com/sessionguard/sessionguard/session"
)

// DefaultKeyPrefix is the prefix of every key a Store writes, unless
// WithKeyPrefix sets another.
const DefaultKeyPrefix = "sg:"

// DefaultGrace is how long Redis keeps a record after its expiry, unless
// WithGrace sets another: one hour.
const DefaultGrace = time.Hour

// errClosed is returned by every call after Close.
var errClosed = errors.New("redisstore: store is closed")

// Option configures a Store made by Open or New.
type Option func(*config)

type config struct {
	prefix string
	grace  time.Duration
}

// WithKeyPrefix sets the prefix of every key the Store writes. The default
// is DefaultKeyPrefix, "sg:". Give applications (or tests) that share one
// Redis database prefixes of their own: Stores with different prefixes never
// see each other's sessions. The prefix may not contain '{' or '}', which
// would change how Redis Cluster places the keys.
func WithKeyPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithGrace sets how long Redis keeps a session's record after its expiry
// (Record.Expires.At) before dropping it by itself. The default is DefaultGrace, one hour.
//
// Within the grace the Manager's sweeper (or the next request) finds the
// expired record and ends it, with its "idle" or "absolute" end event; a
// record Redis drops first ends silently, with no event and no answer from
// Ended. So the grace should cover the longest time all instances could go
// without sweeping, plus any difference between the clocks of the
// application servers and of Redis. A long grace costs nothing while the
// sweeper runs, since it ends records as soon as they expire.
func WithGrace(d time.Duration) Option {
	return func(c *config) { c.grace = d }
}

// Store is a session.Store kept in Redis. Create one with Open or New; it is
// safe for concurrent use, and any number of Stores, in one process or many,
// may share one Redis deployment and key prefix.
type Store struct {
	c   redis.UniversalClient
	own bool // Open made the client, so Close closes it
	// atomic is set for a client that reaches one server (a single node or a
	// Sentinel-managed primary): every key is then in one place, and each
	// call is one script that also follows pointers and keeps the global
	// indexes. Otherwise (Cluster) scripts touch one slot each and the Store
	// does the rest in separate round trips.
	atomic bool
	mode   string // ARGV[2] of the scripts: "1" when atomic, else "0"
	prefix string
	grace  time.Duration
	// graceMs is grace in whole milliseconds, rounded up, as the scripts
	// take it.
	graceMs   int64
	expiryKey string
	endedKey  string
	closed    atomic.Bool
	gets      *batch.Batcher[session.TokenHash, session.Record]
	// beforeIndexWrites, if set, runs in a Cluster sweep between the
	// scripts that read the records and the writes to the expiry index,
	// for tests to interleave calls there.
	beforeIndexWrites func()
}

// New returns a Store on a client the caller made and shares with other
// code. Closing the Store leaves the client open; the caller closes it, after
// the Store.
//
// The client decides the round trips: a *redis.Client (one server, or the
// primary found through Sentinel by redis.NewFailoverClient) gets the atomic,
// one-round-trip form of every call; any other client, *redis.ClusterClient
// among them, the Cluster form (see the package documentation). The client
// must send every command to the primary: a client that reads from replicas
// (ReadOnly, RouteByLatency, RouteRandomly) could see a session that has
// already ended there.
//
// The client should set ContextTimeoutEnabled, so that the Manager's
// per-call timeout also bounds a call waiting on a slow server; Open does.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: New: nil client")
	}
	cfg := config{prefix: DefaultKeyPrefix, grace: DefaultGrace}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if strings.ContainsAny(cfg.prefix, "{}") {
		return nil, fmt.Errorf("redisstore: key prefix %q contains '{' or '}', which would defeat Redis Cluster's placement of each user's keys", cfg.prefix)
	}
	if cfg.grace < 0 {
		return nil, fmt.Errorf("redisstore: grace must not be negative, got %v", cfg.grace)
	}
	_, single := client.(*redis.Client)
	s := &Store{
		c:         client,
		atomic:    single,
		mode:      "0",
		prefix:    cfg.prefix,
		grace:     cfg.grace,
		graceMs:   msCeil(int64(cfg.grace)),
		expiryKey: cfg.prefix + "deadlines", // its name from before records kept their expiry
		endedKey:  cfg.prefix + "ended",
	}
	if single {
		s.mode = "1"
	}
	s.gets = batch.New(s.getBatch, batch.Options{MaxBatch: getBatchSize})
	return s, nil
}

// Close releases the Store: it closes the client if Open made it. Calls
// after Close fail. Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.own {
		return nil
	}
	return s.c.Close()
}

// Count returns the number of entries of the expiry index, one per
// record not yet swept (session.CountingStore): one ZCARD, whatever the
// number of sessions.
func (s *Store) Count(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	n, err := s.c.ZCard(ctx, s.expiryKey).Result()
	return int(n), wrap("count", err)
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return wrap("ping", s.c.Ping(ctx).Err())
}

// The keys. A record lives at prefix + its reference, {u:<user>}:s:<id>,
// where <user> is the user ID in unpadded base64url: the braces are Redis
// Cluster's hash tag, which puts a user's records and their index in one
// slot, and base64url (which has no '}' or ':') keeps every user ID, however
// odd, from breaking out of it.

func userTag(userID string) string {
	return "{u:" + base64.RawURLEncoding.EncodeToString([]byte(userID)) + "}"
}

func recordRef(userID, id string) string { return userTag(userID) + ":s:" + id }

// tagOf returns the user tag at the start of a record reference.
func tagOf(ref string) (string, bool) {
	if !strings.HasPrefix(ref, "{u:") {
		return "", false
	}
	i := strings.Index(ref, "}:s:")
	if i < 0 {
		return "", false
	}
	return ref[:i+1], true
}

func (s *Store) indexKey(tag string) string   { return s.prefix + tag + ":idx" }
func (s *Store) tokenKey(hash string) string  { return s.prefix + "t:" + hash }
func (s *Store) idKey(id string) string       { return s.prefix + "i:" + id }
func (s *Store) endingKey(hash string) string { return s.prefix + "e:" + hash }
func (s *Store) recordKeys(ref, tag string) []string {
	return []string{s.prefix + ref, s.indexKey(tag)}
}

// keysFor returns the keys a record script takes for the session with public
// ID id: in atomic mode the ID pointer, which the script follows itself; on
// a Cluster the record and user index keys, read from that pointer in a
// round trip of their own (the pointer is in another slot). It returns
// session.ErrNotFound if there is no pointer.
func (s *Store) keysFor(ctx context.Context, id string) (keys []string, ref string, err error) {
	if s.atomic {
		return []string{s.idKey(id)}, "", nil
	}
	ref, err = s.c.Get(ctx, s.idKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, "", session.ErrNotFound
	}
	if err != nil {
		return nil, "", err
	}
	tag, ok := tagOf(ref)
	if !ok {
		return nil, "", fmt.Errorf("the pointer of session %q holds a malformed reference", id)
	}
	return s.recordKeys(ref, tag), ref, nil
}

// Create stores rec, or returns an error wrapping session.ErrConflict if its
// ID or token hash is taken. Its keys expire DefaultGrace (or the WithGrace
// duration) after rec.Expires.At.
func (s *Store) Create(ctx context.Context, rec session.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	fields, expires, err := recordFields(rec)
	if err != nil {
		return err
	}
	tag := userTag(rec.UserID)
	ref := tag + ":s:" + rec.ID
	idKey, tokenKey := s.idKey(rec.ID), s.tokenKeyOf(rec.TokenHash)
	keyExp := msCeil(expires) + s.graceMs
	args := append([]any{s.prefix, s.mode, rec.ID, ref, keyExp, msFloor(expires)}, fields...)
	keys := s.recordKeys(ref, tag)
	if s.atomic {
		n, err := s.run(ctx, createScript, true, append(keys, idKey, tokenKey, s.expiryKey), args...).Int()
		if err != nil {
			return wrap("create", err)
		}
		if n == 0 {
			return fmt.Errorf("redisstore: create: %w", session.ErrConflict)
		}
		return nil
	}

	// Cluster: claim the two pointers (each in its own slot), then write the
	// record, then enter it in the global expiry index. A failure between
	// steps leaves pointers to nothing, which expire by themselves, or a
	// record the expiry index misses, which Redis drops at its expiry.
	pipe := s.c.Pipeline()
	claims := []*redis.Cmd{
		once(pipe, ctx, "SET", idKey, ref, "NX", "PXAT", keyExp),
		once(pipe, ctx, "SET", tokenKey, ref, "NX", "PXAT", keyExp),
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	var taken []string
	conflict := false
	for i, c := range claims {
		switch err := c.Err(); {
		case err == nil:
			taken = append(taken, []string{idKey, tokenKey}[i])
		case errors.Is(err, redis.Nil):
			conflict = true
		default:
			s.release(ctx, taken)
			return wrap("create", err)
		}
	}
	if conflict {
		s.release(ctx, taken)
		return fmt.Errorf("redisstore: create: %w", session.ErrConflict)
	}
	n, err := s.run(ctx, createScript, true, keys, args...).Int()
	if err != nil {
		return wrap("create", err)
	}
	if n == 0 {
		s.release(ctx, taken)
		return fmt.Errorf("redisstore: create: %w", session.ErrConflict)
	}
	return wrap("create", s.c.ZAdd(ctx, s.expiryKey, redis.Z{Score: float64(msFloor(expires)), Member: ref}).Err())
}

// release deletes pointers a failed Create claimed, best effort: they would
// expire anyway.
func (s *Store) release(ctx context.Context, keys []string) {
	for _, k := range keys {
		s.c.Del(ctx, k)
	}
}

// Get returns the record whose token hashes to h, expired or not (the
// Manager judges expiry), or session.ErrNotFound. It is one round trip on a
// single server and two on a Cluster. Gets that arrive while another is in
// flight wait for it and then share one round trip (see getBatch); each
// still reads Redis after it was called.
func (s *Store) Get(ctx context.Context, h session.TokenHash) (session.Record, error) {
	if s.closed.Load() {
		return session.Record{}, errClosed
	}
	return s.gets.Get(ctx, h)
}

// getBatchSize is the most Gets one round trip serves. In the script a
// lookup (GET, HMGET, packing) takes Redis some 7 to 12 µs (INFO
// commandstats), and Redis serves no one else while a script runs: a
// script of 32 holds it for a few hundred microseconds, as long as a step
// of the sweep.
const getBatchSize = 32

// getBatch reads the records of hashes in one round trip on a single server
// (one script for all of them) and in two pipelines on a Cluster (the
// pointers, then the records they name). A round trip that fails fails
// every Get of the batch.
func (s *Store) getBatch(ctx context.Context, hashes []session.TokenHash) ([]batch.Result[session.Record], error) {
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = s.tokenKeyOf(h)
	}
	out := make([]batch.Result[session.Record], len(hashes))
	if !s.atomic {
		fields, err := s.getCluster(ctx, keys)
		if err != nil {
			return nil, err
		}
		for i, m := range fields {
			rv := valuesOf(m)
			out[i].Value, out[i].Err = readRecord(&rv, len(m) > 0, hashes[i])
		}
		return out, nil
	}
	replies, err := runAs(ctx, s, redis.NewStringSliceCmd, getScript, false, keys, s.prefix).Result()
	if err != nil {
		return nil, wrap("get", err)
	}
	if len(replies) != len(keys) {
		return nil, fmt.Errorf("redisstore: get: %d replies for %d sessions", len(replies), len(keys))
	}
	for i, r := range replies {
		rv, found, err := unpackRecord(r)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Value, out[i].Err = readRecord(&rv, found, hashes[i])
	}
	return out, nil
}

// tokenKeyOf is tokenKey(h.String()), built in one allocation: Get builds
// one per request.
func (s *Store) tokenKeyOf(h session.TokenHash) string {
	var text [hashTextLen]byte
	base64.RawURLEncoding.Encode(text[:], h[:])
	var b strings.Builder
	b.Grow(len(s.prefix) + len("t:") + len(text))
	b.WriteString(s.prefix)
	b.WriteString("t:")
	b.Write(text[:])
	return b.String()
}

// getCluster is getBatch's reading on a Cluster: the fields of the record
// each pointer of keys names, nil where there is none.
func (s *Store) getCluster(ctx context.Context, keys []string) ([]map[string]string, error) {
	pipe := s.c.Pipeline()
	refs := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		refs[i] = pipe.Get(ctx, k)
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	pipe = s.c.Pipeline()
	recs := make([]*redis.MapStringStringCmd, len(keys))
	for i, ref := range refs {
		switch err := ref.Err(); {
		case err == nil:
			recs[i] = pipe.HGetAll(ctx, s.prefix+ref.Val())
		case !errors.Is(err, redis.Nil):
			return nil, wrap("get", err)
		}
	}
	fields := make([]map[string]string, len(keys))
	if pipe.Len() == 0 {
		return fields, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, wrap("get", err)
	}
	for i, c := range recs {
		if c != nil {
			fields[i] = c.Val()
		}
	}
	return fields, nil
}

// readRecord turns the fields of one Get's reply (none if not found) into
// the record whose token hashes to h, or session.ErrNotFound.
func readRecord(rv *recordValues, found bool, h session.TokenHash) (session.Record, error) {
	if !found {
		return session.Record{}, session.ErrNotFound
	}
	rec, err := rv.record()
	if err != nil {
		return session.Record{}, err
	}
	// The record, not the pointer, says which token is current: a pointer
	// may outlive a renewal by a moment (on a Cluster) and must not find the
	// renewed session.
	if rec.TokenHash != h {
		return session.Record{}, session.ErrNotFound
	}
	return rec, nil
}

// Touch records activity at at: LastActivity moves forward to at (never
// back), and Expires to exp if exp is later, with the keys' expiry. It
// returns session.ErrNotFound if the record is gone or expired at or before
// at.
func (s *Store) Touch(ctx context.Context, id string, at time.Time, exp session.Expiry) error {
	if s.closed.Load() {
		return errClosed
	}
	atNs, err1 := session.UnixNanos("touch time", at)
	expNs, reason, err2 := expiryArgs(exp)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	keys, _, err := s.keysFor(ctx, id)
	if err != nil {
		return wrapNotFound("touch", err)
	}
	for upgraded := false; ; upgraded = true {
		res, err := s.run(ctx, touchScript, false, keys, s.prefix, s.mode, id, itoa(atNs), itoa(expNs), reason, s.graceMs).Slice()
		if err != nil {
			return wrap("touch", err)
		}
		switch code, _ := res[0].(int64); {
		case code == 0:
			return session.ErrNotFound
		case code == 2 && len(res) == 3 && !s.atomic:
			// The pointers are in other slots: they follow the record's
			// expiry here, only ever later, since two touches may arrive
			// in either order.
			hash, _ := res[1].(string)
			keyExp, _ := res[2].(int64)
			pipe := s.c.Pipeline()
			pipe.Do(ctx, "PEXPIREAT", s.idKey(id), keyExp, "GT")
			pipe.Do(ctx, "PEXPIREAT", s.tokenKey(hash), keyExp, "GT")
			_, err := pipe.Exec(ctx)
			return wrap("touch", err)
		case code == 3 && len(res) == 2 && !upgraded:
			rk, _ := res[1].(string)
			if err := s.upgrade(ctx, rk); err != nil {
				return err
			}
			continue
		case code == 1 || code == 2:
			return nil
		}
		return fmt.Errorf("redisstore: touch: unexpected reply %v", res)
	}
}

// upgrade gives the record at key rk, written before records kept their
// expiry, the expiry its old fields say (see legacyExpiry). It is done once
// per record, by the first Touch or sweep that meets it.
func (s *Store) upgrade(ctx context.Context, rk string) error {
	m, err := s.c.HGetAll(ctx, rk).Result()
	if err != nil || len(m) == 0 {
		return wrap("upgrading a record", err)
	}
	if _, ok := m[fieldExpires]; ok {
		return nil
	}
	rec, err := parseRecord(m)
	if err != nil {
		return err
	}
	exp, reason, err := expiryArgs(rec.Expires)
	if err != nil {
		return err
	}
	return wrap("upgrading a record", s.run(ctx, upgradeScript, false, []string{rk}, s.prefix, s.mode, m[fieldLast], itoa(exp), reason).Err())
}

// SaveData replaces the record's data with data if it is still old. It
// returns session.ErrStale if the stored data differs from old, and
// session.ErrNotFound if the record is gone.
func (s *Store) SaveData(ctx context.Context, id string, old, data map[string]string) error {
	if s.closed.Load() {
		return errClosed
	}
	keys, _, err := s.keysFor(ctx, id)
	if err != nil {
		return wrapNotFound("save data", err)
	}
	n, err := s.run(ctx, saveDataScript, false, keys, s.prefix, s.mode, encodeData(old), encodeData(data)).Int()
	if err == nil && n == 2 {
		return session.ErrStale
	}
	return found("save data", n, err)
}

// Renew gives the record id the token hash new, if its hash is still old,
// and the times and expiry of r. Otherwise it returns session.ErrNotFound.
// If new is another record's hash it returns an error wrapping
// session.ErrConflict.
func (s *Store) Renew(ctx context.Context, id string, old, new session.TokenHash, r session.Renewal) error {
	if s.closed.Load() {
		return errClosed
	}
	if old == new {
		return errors.New("redisstore: renew: the new token hash equals the old one")
	}
	auth, err1 := session.UnixNanos("AuthenticatedAt", r.AuthenticatedAt)
	last, err2 := session.UnixNanos("LastActivity", r.LastActivity)
	exp, reason, err3 := expiryArgs(r.Expires)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	keys, ref, err := s.keysFor(ctx, id)
	if err != nil {
		return wrapNotFound("renew", err)
	}
	oldHash, newHash := old.String(), new.String()
	args := []any{s.prefix, s.mode, id, oldHash, newHash, itoa(auth), itoa(last), itoa(exp), reason, s.graceMs}
	if s.atomic {
		res, err := s.run(ctx, renewScript, true, keys, args...).Slice()
		if err != nil {
			return wrap("renew", err)
		}
		switch code, _ := res[0].(int64); code {
		case 1:
			return nil
		case 2:
			return fmt.Errorf("redisstore: renew: %w", session.ErrConflict)
		}
		return session.ErrNotFound
	}

	// Cluster: claim the new pointer first, for as long as the grace (the
	// script then tells how long it must live), so that the new token finds
	// the session as soon as the record names it.
	newKey := s.tokenKey(newHash)
	err = once(s.c, ctx, "SET", newKey, ref, "NX", "PX", max(s.graceMs, time.Minute.Milliseconds())).Err()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: renew: %w", session.ErrConflict)
	}
	if err != nil {
		return wrap("renew", err)
	}
	res, err := s.run(ctx, renewScript, true, keys, args...).Slice()
	if err != nil {
		return wrap("renew", err)
	}
	if code, _ := res[0].(int64); code != 1 || len(res) != 5 {
		s.c.Del(ctx, newKey)
		return session.ErrNotFound
	}
	score, _ := res[1].(int64)
	keyExp, _ := res[2].(int64)
	oldVer, _ := res[3].(string)
	newVer, _ := res[4].(string)
	// The renewal has happened; what follows only tidies up and is not
	// reported. Should it fail, the new pointer expires after the grace (the
	// user signs in again), the old one at its own time, and the sweep
	// restores the expiry index entry when it meets the old one. The entry
	// changes member with the record's version: a sweep that read the
	// record before the renewal can then only re-score the old member,
	// which this removes, never hide the new score.
	pipe := s.c.Pipeline()
	pipe.Do(ctx, "PEXPIREAT", newKey, keyExp)
	pipe.Do(ctx, "PEXPIREAT", s.idKey(id), keyExp)
	pipe.Del(ctx, s.tokenKey(oldHash))
	pipe.ZRem(ctx, s.expiryKey, indexMember(ref, oldVer))
	pipe.ZAdd(ctx, s.expiryKey, redis.Z{Score: float64(score), Member: indexMember(ref, newVer)})
	_, _ = pipe.Exec(ctx)
	return nil
}

// End deletes the record id and keeps why it ended until e.KeepUntil. It
// returns the deleted record, or session.ErrNotFound if another End (or
// EndExpired, in any process) deleted it first.
func (s *Store) End(ctx context.Context, id string, e session.Ending) (session.Record, error) {
	if s.closed.Load() {
		return session.Record{}, errClosed
	}
	if !e.Reason.Valid() {
		return session.Record{}, fmt.Errorf("redisstore: end: invalid reason %q", e.Reason)
	}
	at, err1 := session.UnixNanos("end time", e.At)
	keep, err2 := session.UnixNanos("KeepUntil", e.KeepUntil)
	if err := errors.Join(err1, err2); err != nil {
		return session.Record{}, err
	}
	keys, ref, err := s.keysFor(ctx, id)
	if err != nil {
		return session.Record{}, wrapNotFound("end", err)
	}
	reply, err := s.run(ctx, endScript, true, keys, s.prefix, s.mode, id,
		string(e.Reason), itoa(at), itoa(keep), msCeil(keep), msFloor(keep)).Result()
	if errors.Is(err, redis.Nil) {
		return session.Record{}, session.ErrNotFound
	}
	if err != nil {
		return session.Record{}, wrap("end", err)
	}
	m, err := pairs(reply)
	if err != nil {
		return session.Record{}, err
	}
	rec, err := parseRecord(m)
	if err != nil {
		return session.Record{}, err
	}
	if !s.atomic {
		// The session has ended; the ended-token record and the pointers
		// are bookkeeping in other slots, not reported if they fail: the
		// pointers then expire by themselves, and only Ended's answer is
		// lost.
		_ = s.keepEndings(ctx, []ending{{Ended: session.Ended{Record: rec, Ending: e}, member: indexMember(ref, m[fieldVersion])}})
	}
	return rec, nil
}

// ending is a record just ended, with its expiry index member.
type ending struct {
	session.Ended
	member string
}

// keepEndings writes the ended-token records of sessions just ended on a
// Cluster, and removes their pointers and expiry index entries, in
// pipelines of sweepStep sessions: Redis runs a pipeline's commands as
// they arrive, letting other clients' commands in between.
func (s *Store) keepEndings(ctx context.Context, ended []ending) error {
	var errs []error
	for chunk := range slices.Chunk(ended, sweepStep) {
		errs = append(errs, s.keepEndingsOnce(ctx, chunk))
	}
	return errors.Join(errs...)
}

// keepEndingsOnce is one round trip of keepEndings.
func (s *Store) keepEndingsOnce(ctx context.Context, ended []ending) error {
	pipe := s.c.Pipeline()
	for _, e := range ended {
		hash := e.TokenHash.String()
		at, err1 := session.UnixNanos("expiry", e.At)
		keep, err2 := session.UnixNanos("KeepUntil", e.KeepUntil)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		// One DEL per key: on a Cluster they are in different slots.
		pipe.Del(ctx, s.tokenKey(hash))
		pipe.Del(ctx, s.idKey(e.ID))
		pipe.ZRem(ctx, s.expiryKey, e.member)
		ek := s.endingKey(hash)
		pipe.HSet(ctx, ek, "r", string(e.Reason), "at", itoa(at), "ku", itoa(keep))
		pipe.Do(ctx, "PEXPIREAT", ek, msCeil(keep))
		pipe.ZAdd(ctx, s.endedKey, redis.Z{Score: float64(msFloor(keep)), Member: hash})
	}
	_, err := pipe.Exec(ctx)
	return wrap("keeping ended-token records", err)
}

// EndExpired ends up to limit records whose expiry is at or before now,
// each with the reason of its expiry, keeping their ended-token records
// until keep after their expiry, and deletes up to limit ended-token
// records whose KeepUntil is at or before now. Records are found through
// the global expiry index and each is ended by a script that first checks
// it still exists and has expired, so any number of processes may sweep at
// once and each record ends once. limit must be positive and keep not
// negative.
//
// The work is done in steps of sweepStep sessions, each one short script
// (one server) or pipeline of short scripts (Cluster): Redis runs one
// script at a time, and requests wait for the one running.
//
// If writing the ended-token records fails after records have ended (on a
// Cluster), EndExpired returns those records and the error, so that their
// end events are still sent.
func (s *Store) EndExpired(ctx context.Context, now time.Time, keep time.Duration, limit int) ([]session.Ended, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		return nil, fmt.Errorf("redisstore: end expired: limit must be positive, got %d", limit)
	}
	if keep < 0 {
		return nil, fmt.Errorf("redisstore: end expired: keep must not be negative, got %v", keep)
	}
	nowNs, err := session.UnixNanos("now", now)
	if err != nil {
		return nil, err
	}
	var ended []session.Ended
	if s.atomic {
		ended, err = s.sweepAtomic(ctx, nowNs, keep, limit)
	} else {
		ended, err = s.sweepCluster(ctx, nowNs, keep, limit)
	}
	slices.SortFunc(ended, func(a, b session.Ended) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID))
	})
	return ended, errors.Join(err, s.purgeEndings(ctx, nowNs, limit))
}

// sweepStep is the most sessions one step of a sweep visits: one script on
// one server, which holds Redis while it runs, or one pipeline of scripts on
// a Cluster.
const sweepStep = 8

// endedOf is the ended record of a record EndExpired ended: its expiry's
// reason and instant, kept until keep after it.
func endedOf(rec session.Record, keep time.Duration) session.Ended {
	at := rec.Expires.At
	keepUntil := at.Add(keep)
	if session.MaxStoreTime.Sub(at) < keep {
		keepUntil = session.MaxStoreTime // "keep for ever" must not wrap around
	}
	return session.Ended{Record: rec, Ending: session.Ending{Reason: rec.Expires.Reason, At: at, KeepUntil: keepUntil}}
}

// sweepAtomic is EndExpired's search and end on one server: one short
// script per step, each ending what it visits with its bookkeeping, until
// limit records have ended or the expired entries run out.
func (s *Store) sweepAtomic(ctx context.Context, nowNs int64, keep time.Duration, limit int) ([]session.Ended, error) {
	var ended []session.Ended
	var errs []error
	skip := int64(0)
	upgraded := false
	for len(ended) < limit {
		step := min(limit-len(ended), sweepStep)
		res, err := s.run(ctx, sweepStepScript, true, []string{s.expiryKey},
			s.prefix, s.mode, itoa(nowNs), msFloor(nowNs), step, skip, itoa(int64(keep))).Slice()
		if err == nil && len(res) != 4 {
			err = fmt.Errorf("unexpected reply %v", res)
		}
		if err != nil {
			errs = append(errs, wrap("end expired", err))
			break
		}
		recs, _ := res[0].([]any)
		visited, _ := res[1].(int64)
		stayed, _ := res[2].(int64)
		legacy, _ := res[3].([]any)
		for _, r := range recs {
			rec, err := unpackEnded(r)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ended = append(ended, endedOf(rec, keep))
		}
		for _, rk := range legacy {
			k, _ := rk.(string)
			if err := s.upgrade(ctx, k); err != nil {
				return ended, errors.Join(append(errs, err)...)
			}
		}
		skip += stayed
		// Upgraded records are visited again, once, by the next step.
		if visited < int64(step) && (len(legacy) == 0 || upgraded) {
			break
		}
		upgraded = upgraded || len(legacy) > 0
	}
	return ended, errors.Join(errs...)
}

// sweepCluster is EndExpired's search and end on a Cluster: the index is
// read here and each candidate is ended by its own script in its user's
// slot, sweepStep scripts to a pipeline.
func (s *Store) sweepCluster(ctx context.Context, nowNs int64, keep time.Duration, limit int) ([]session.Ended, error) {
	nowMs := msFloor(nowNs)
	var ended []ending
	// First the entries scored before now's millisecond: each is ended,
	// dropped or re-scored to at least nowMs, so every step makes progress.
	// Then those of now's own millisecond, which may not have expired yet
	// and then stay, in order, ahead of the ones not yet visited.
	ms := strconv.FormatInt(nowMs, 10)
	var err error
	upgraded := false
	for _, band := range []*redis.ZRangeBy{{Min: "-inf", Max: "(" + ms}, {Min: ms, Max: ms}} {
		for len(ended) < limit {
			step := min(limit-len(ended), sweepStep)
			band.Count = int64(step)
			var members []string
			members, err = s.c.ZRangeByScore(ctx, s.expiryKey, band).Result()
			if err != nil {
				err = wrap("end expired", err)
				break
			}
			var stayed, legacy int
			stayed, legacy, err = s.expireMembers(ctx, members, nowNs, nowMs, keep, &ended)
			if err != nil {
				break
			}
			band.Offset += int64(stayed)
			// Upgraded records are visited again, once, by the next step.
			if len(members) < step && (legacy == 0 || upgraded) {
				break
			}
			upgraded = upgraded || legacy > 0
		}
		if err != nil {
			break
		}
	}
	out := make([]session.Ended, len(ended))
	for i, e := range ended {
		out[i] = e.Ended
	}
	return out, errors.Join(err, s.keepEndings(ctx, ended))
}

// expireMembers runs the expiry script on the record of each index member,
// appends the records it ended to ended, and updates the expiry index:
// entries of ended and vanished records are removed, scores that were only
// lower bounds corrected, records without a stored expiry upgraded. It
// returns how many entries stayed at score nowMs, and how many records it
// upgraded.
func (s *Store) expireMembers(ctx context.Context, members []string, nowNs, nowMs int64, keep time.Duration, ended *[]ending) (stayed, upgraded int, err error) {
	calls := make([]scriptCall, 0, len(members))
	var valid, refs []string
	index := s.c.Pipeline()
	for _, m := range members {
		ref, ver := splitMember(m)
		tag, ok := tagOf(ref)
		if !ok {
			index.ZRem(ctx, s.expiryKey, m)
			continue
		}
		id := ref[len(tag)+len(":s:"):]
		valid, refs = append(valid, m), append(refs, ref)
		calls = append(calls, scriptCall{keys: s.recordKeys(ref, tag), args: []any{s.prefix, s.mode, id, ver, itoa(nowNs)}})
	}
	var errs []error
	for i, cmd := range s.runAll(ctx, expireScript, true, calls) {
		res, rerr := cmd.Slice()
		if rerr != nil || len(res) == 0 {
			errs = append(errs, wrap("end expired", cmp.Or(rerr, errors.New("empty reply"))))
			continue
		}
		switch code, _ := res[0].(int64); {
		case code == 1 && len(res) == 2:
			rec, perr := parseReply(res[1])
			if perr != nil {
				errs = append(errs, perr)
				continue
			}
			*ended = append(*ended, ending{Ended: endedOf(rec, keep), member: valid[i]})
		case code == 2 && len(res) == 2:
			score, _ := res[1].(int64)
			// XX: should a renewal have removed this member meanwhile, it
			// stays removed.
			index.ZAddXX(ctx, s.expiryKey, redis.Z{Score: float64(score), Member: valid[i]})
			if score <= nowMs {
				stayed++
			}
		case code == 4 && len(res) == 3:
			score, _ := res[1].(int64)
			ver, _ := res[2].(string)
			index.ZRem(ctx, s.expiryKey, valid[i])
			index.ZAddNX(ctx, s.expiryKey, redis.Z{Score: float64(score), Member: indexMember(refs[i], ver)})
		case code == 3:
			tag, _ := tagOf(refs[i])
			if uerr := s.upgrade(ctx, s.recordKeys(refs[i], tag)[0]); uerr != nil {
				errs = append(errs, uerr)
			}
			upgraded++
		default:
			index.ZRem(ctx, s.expiryKey, valid[i])
		}
	}
	if s.beforeIndexWrites != nil {
		s.beforeIndexWrites()
	}
	if index.Len() > 0 {
		if _, err := index.Exec(ctx); err != nil {
			errs = append(errs, wrap("end expired", err))
		}
	}
	return stayed, upgraded, errors.Join(errs...)
}

// purgeEndings deletes up to limit ended-token records whose KeepUntil is
// at or before now. Redis would drop them at KeepUntil by itself; this makes
// the store follow the caller's clock, as the contract asks.
func (s *Store) purgeEndings(ctx context.Context, nowNs int64, limit int) error {
	nowMs := msFloor(nowNs)
	if s.atomic {
		for done := 0; done < limit; {
			step := min(limit-done, purgeStep)
			n, err := s.run(ctx, purgeStepScript, false, []string{s.endedKey},
				s.prefix, s.mode, itoa(nowNs), nowMs, step).Int()
			if err != nil || n < step {
				return wrap("purging ended-token records", err)
			}
			done += n
		}
		return nil
	}
	var errs []error
	// Records whose KeepUntil is in now's millisecond but after now stay,
	// ahead of the ones not yet visited: skip counts them.
	for done, skip := 0, 0; done < limit; {
		step := min(limit-done, purgeStep)
		hashes, err := s.c.ZRangeByScore(ctx, s.endedKey, &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(nowMs, 10), Offset: int64(skip), Count: int64(step)}).Result()
		if err != nil {
			errs = append(errs, err)
			break
		}
		calls := make([]scriptCall, len(hashes))
		for i, h := range hashes {
			calls[i] = scriptCall{keys: []string{s.endingKey(h)}, args: []any{s.prefix, s.mode, itoa(nowNs)}}
		}
		var gone []any
		for i, cmd := range s.runAll(ctx, purgeScript, false, calls) {
			n, err := cmd.Int()
			if err != nil {
				errs = append(errs, err)
			} else if n == 1 {
				gone = append(gone, hashes[i])
			}
		}
		if len(gone) > 0 {
			errs = append(errs, s.c.ZRem(ctx, s.endedKey, gone...).Err())
		}
		skip += len(hashes) - len(gone)
		done += len(hashes)
		if len(hashes) < step {
			break
		}
	}
	return wrap("purging ended-token records", errors.Join(errs...))
}

// purgeStep is the most ended-token records one step of the purge visits.
const purgeStep = 32

// Ended returns why the token with hash h stopped working, or
// session.ErrNotFound if no ending is kept for it.
func (s *Store) Ended(ctx context.Context, h session.TokenHash) (session.Ending, error) {
	if s.closed.Load() {
		return session.Ending{}, errClosed
	}
	v, err := s.c.HMGet(ctx, s.endingKey(h.String()), "r", "at", "ku").Result()
	if err != nil {
		return session.Ending{}, wrap("ended", err)
	}
	reason, ok1 := v[0].(string)
	at, ok2 := v[1].(string)
	keep, ok3 := v[2].(string)
	if !ok1 && !ok2 && !ok3 {
		return session.Ending{}, session.ErrNotFound
	}
	atNs, err1 := strconv.ParseInt(at, 10, 64)
	keepNs, err2 := strconv.ParseInt(keep, 10, 64)
	if err := errors.Join(err1, err2); err != nil || !session.EndReason(reason).Valid() {
		return session.Ending{}, fmt.Errorf("redisstore: the ended-token record of %s is unreadable", h)
	}
	return session.Ending{Reason: session.EndReason(reason), At: fromNanos(atNs), KeepUntil: fromNanos(keepNs)}, nil
}

// List returns the records of userID, or of every user if userID is empty,
// oldest first (by CreatedAt, then ID), at most limit of them (limit <= 0: no
// limit). Like Get, it returns records past their expiry that EndExpired
// has not yet removed.
//
// A user's records are read in one round trip, by a script in the user's
// slot. Every user's records (userID empty) are read by walking the global
// expiry index in batches: that costs a round trip per 500 sessions, for
// administration pages, not for requests; and as sessions come and go during
// the walk it is not a snapshot.
func (s *Store) List(ctx context.Context, userID string, limit int) ([]session.Record, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	if userID == "" {
		return s.listAll(ctx, limit)
	}
	tag := userTag(userID)
	reply, err := s.run(ctx, listScript, false, []string{s.indexKey(tag)}, s.prefix, s.mode, tag).Slice()
	if err != nil {
		return nil, wrap("list", err)
	}
	recs := make([]session.Record, 0, len(reply))
	for _, r := range reply {
		rec, err := parseReply(r)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return oldest(recs, limit), nil
}

// listBatch is how many sessions List("") reads per round trip.
const listBatch = 500

func (s *Store) listAll(ctx context.Context, limit int) ([]session.Record, error) {
	var recs []session.Record
	seen := make(map[string]bool)
	for start := int64(0); ; start += listBatch {
		members, err := s.c.ZRange(ctx, s.expiryKey, start, start+listBatch-1).Result()
		if err != nil {
			return nil, wrap("list", err)
		}
		if len(members) == 0 {
			break
		}
		pipe := s.c.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(members))
		for i, m := range members {
			ref, _ := splitMember(m)
			cmds[i] = pipe.HGetAll(ctx, s.prefix+ref)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, wrap("list", err)
		}
		for _, cmd := range cmds {
			m := cmd.Val()
			if len(m) == 0 {
				continue // ended or dropped since the index was read
			}
			rec, err := parseRecord(m)
			if err != nil {
				return nil, err
			}
			// An entry re-scored during the walk, or a record with entries
			// of two versions, can be met twice.
			if !seen[rec.ID] {
				seen[rec.ID] = true
				recs = append(recs, rec)
			}
		}
		recs = oldest(recs, limit)
		if len(members) < listBatch {
			break
		}
	}
	return recs, nil
}

// oldest sorts recs oldest first and keeps at most limit (all if limit <= 0).
func oldest(recs []session.Record, limit int) []session.Record {
	slices.SortFunc(recs, func(a, b session.Record) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	return recs
}

// parseReply reads a record from a script's reply.
func parseReply(r any) (session.Record, error) {
	m, err := pairs(r)
	if err != nil {
		return session.Record{}, err
	}
	return parseRecord(m)
}

// unpackEnded reads a record the sweep step ended, packed as getScript packs
// records.
func unpackEnded(r any) (session.Record, error) {
	s, _ := r.(string)
	rv, found, err := unpackRecord(s)
	if err == nil && !found {
		err = errMalformed
	}
	if err != nil {
		return session.Record{}, wrap("end expired", err)
	}
	return rv.record()
}

// found turns a script's 1 or 0 into nil or session.ErrNotFound.
func found(op string, n int, err error) error {
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// wrapNotFound is wrap, except that session.ErrNotFound passes unchanged.
func wrapNotFound(op string, err error) error {
	if errors.Is(err, session.ErrNotFound) {
		return err
	}
	return wrap(op, err)
}

// wrap prefixes a Redis error with the package and operation; nil stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}
