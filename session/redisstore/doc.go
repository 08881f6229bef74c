// Package redisstore is a session.Store on Redis, for several instances of
// an application that must see the same sessions: one server, a primary
// managed by Sentinel, or a Redis Cluster, all through go-redis's
// UniversalClient and one DSN style (see Open). It needs Redis 7.0 or later
// and is tested on 7.0, against one server and against a three-node Cluster.
//
// # Keys
//
// With the default prefix "sg:", a session of user U (written in base64url,
// so any user ID is safe in a key) with public ID I and token hash H is:
//
//	sg:{u:U}:s:I   hash     the record: the truth about the session
//	sg:{u:U}:idx   zset     the user's sessions (I scored by their expiry), for List and revoke-all
//	sg:t:H         string   pointer from the token hash to the record, for Get
//	sg:i:I         string   pointer from the public ID to the record, for Touch, Renew, End
//	sg:deadlines   zset     every session, scored by its expiry, for EndExpired and List("")
//	sg:e:H         hash     why the token stopped working (reason, time, KeepUntil), for Ended
//	sg:ended       zset     ended-token records by KeepUntil, for EndExpired's purge
//
// A session's member in sg:deadlines is {u:U}:s:I, followed by "#" and a
// version once Renew has changed it (see "The expiry index" below).
//
// {u:U} is a Redis Cluster hash tag: a user's records and index share a slot,
// so one script updates them together. The pointers and global indexes are
// hints, never trusted on their own: Get checks that the record it reaches
// names the token asked for, and every change is a Lua script that first
// checks the record itself. So nothing can bring a deleted session back, and
// of any number of concurrent End and EndExpired calls, in any number of
// processes, exactly one gets the record.
//
// # Round trips
//
// On one server or Sentinel (a *redis.Client) every call but EndExpired is
// one script, atomic, in one round trip: Get, for one, follows the token
// pointer inside the script. A Cluster cannot run a script across slots, so
// there the Store reads the pointer first and does the pointer and index
// bookkeeping in pipelines of its own:
//
//	                   one server   Cluster
//	Get                1            2   pointer, record
//	Touch              1            3   pointer, script, pointers' expiry
//	SaveData           1            2   pointer, script
//	Create             1            3   claim pointers, script, expiry index
//	End                1            3   pointer, script, bookkeeping
//	Renew              1            4   pointer, claim new pointer, script, bookkeeping
//	List(user), Ended  1            1
//	EndExpired         2 or more    5 or more: steps of the search and end,
//	                                the endings, steps of the purge
//
// (A Cluster Touch that leaves the expiry where it was takes 2.)
//
// EndExpired goes in small steps: on one server a step is one script that
// visits 8 entries of the expiry index and ends the sessions that expired,
// with their pointers, index entries and ended-token records; the purge of
// old ended-token records is a script per 32. Redis runs one script at a
// time, and a request that arrives meanwhile waits for it: a step takes a
// few hundred microseconds, so no request waits longer, where a sweep in
// scripts and transactions of 100 sessions made live users' requests wait
// milliseconds at a time. The Manager's batch of 500 is then some 60 round
// trips; see docs/benchmarks.md for what that costs a sweep in speed.
//
// Gets that arrive while a Get is in flight wait for it, and then go
// together: one script for up to 32 of them on one server, two pipelines
// on a Cluster. Each still reads Redis after it was called (nothing is
// cached, so a sign-out on one instance is seen at once on all), a Get that
// finds none in flight is sent at once, and the round trips saved are most
// of the cost of a session check under load.
//
// What a failure between the Cluster steps can leave is harmless: pointers
// to nothing, which expire by themselves; an expiry index entry that is
// missing (Redis then drops the session at its expiry, without an end event)
// or stale (the next sweep corrects it); at worst a lost Ended answer. Who is
// signed in is decided by the record alone.
//
// # The expiry index
//
// The global indexes are single keys, so on a Cluster one node takes a write
// for every login and logout, and every sweep. That is a hot spot by design:
// a session store does a few such writes per session, far below what one
// Redis node serves. Touch, the frequent write, and Get stay off it on a
// Cluster: there the expiry index holds a lower bound of each expiry, which
// a touch can only move later, and EndExpired corrects an entry when it
// comes due early. On one server Touch keeps the score exact, in its script.
//
// Renew can move an expiry earlier, and on a Cluster the record and the
// index are in different slots: a sweep that read the record just before a
// renewal could write its stale, later score after the renewal wrote the
// earlier one, and the session would end (and its end event go out) late.
// So each renewal gives the record a new version and its index entry a new
// member: the renewal removes the old member, and the sweep only re-scores
// a member that still exists (ZADD XX), so its stale write finds nothing.
// A sweep that meets an entry of an older version (the renewal's index
// write was lost) replaces it with the current one.
//
// A script that ends, creates or renews a session is never sent twice: where
// go-redis would resend a command whose connection failed after writing it,
// such a script could otherwise run twice, and its second run would answer
// "not found", losing the record it had ended and with it the end event.
//
// # Expiry
//
// Records carry Redis TTLs set from the expiry the Manager gives them
// (Record.Expires): each expires a grace period (WithGrace, one hour by
// default) after it, and Touch and Renew move the keys' expiry with it. The
// pointers expire with their record, ended-token records at their
// KeepUntil. Redis measures TTLs with its own
// clock, so the application servers' clocks must agree with it to well
// within the grace.
//
// The Manager's sweeper ends expired sessions through EndExpired, normally
// within a second of their expiry, and sends their "idle" or "absolute"
// end event once. The grace is what keeps the record until then. If every
// instance stops sweeping for longer than the grace, Redis drops the records
// by itself: those sessions end all the same, but silently, with no event
// and no Ended answer. A long grace costs nothing while the sweeper runs.
//
// Records written by earlier versions of this package, which kept no
// expiry, are read with the expiry their idle and absolute deadlines give;
// the first Touch or sweep that meets one stores it.
//
// List("") walks the expiry index: a round trip per 500 sessions, for
// administration pages. A user's List is one round trip.
//
// # When Redis crashes
//
// A session works only while its record exists, so losing data can sign
// people out but never sign anyone in: a token whose record is gone is
// refused.
//
// Without persistence (the default of many installations), a restart of
// Redis loses every session: everyone signs in again; nobody is signed in
// wrongly.
//
// With persistence, what a crash loses can also undo an end. With AOF and
// appendfsync everysec, up to about a second of writes is lost: logins
// (sign in again), touches (a session may time out a little early), and
// logouts and revocations, whose sessions then work again until their own
// deadlines. Restoring an RDB snapshot does the same for every end since the
// snapshot was taken. Deployments that cannot accept an undone logout should
// run appendonly yes with appendfsync always (each write then waits for the
// disk), and know that a fail-over to an asynchronous replica, under
// Sentinel or Cluster, can lose the last writes in the same way.
//
// Redis must be configured with maxmemory-policy noeviction: every key here
// has a TTL, so the volatile-* policies would evict sessions early, and
// losing the expiry index silences end events.
//
// # Sizing
//
// Measured with Redis 7.0 for sessions with a 117-byte user agent, an IP
// address and 40 bytes of data, four sessions per user: about 1.6 KB per
// session by MEMORY USAGE summed over every key, 2.0 KB of used_memory (1 GB
// holds some 500,000 sessions). The record's hash is about two thirds of
// that, because a user agent longer than 64 bytes makes Redis store the hash
// as a hash table; hash-max-listpack-value 256 keeps it compact and brings a
// session to about 1.3 KB of used_memory. Ended-token records, kept for the
// Manager's EndedRetention (24 hours by default), add about 300 bytes per
// session ended in that period.
package redisstore
