package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// onceCmd is a command the client must not resend. go-redis resends a
// command whose connection failed after it was written (a timeout, a reset),
// which is harmless for reads and for Touch, but would run Create, Renew,
// End or a sweep a second time: the second run finds its work done and
// answers "conflict" or "not found", and the caller would lose the session
// it created or the record it ended, and with it the end event. Sent once,
// a lost reply is an error instead, like a lost reply from any database.
type onceCmd struct{ redis.Cmder }

// NoRetry tells go-redis not to resend the command.
func (onceCmd) NoRetry() bool { return true }

// processor is a client or a pipeline.
type processor interface {
	Process(ctx context.Context, cmd redis.Cmder) error
}

// once sends a command that must not be resent (see onceCmd) through p. On a
// pipeline, the command's result is there after Exec.
func once(p processor, ctx context.Context, args ...any) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	_ = p.Process(ctx, onceCmd{cmd}) // the error is also the command's
	return cmd
}

// scriptCall is one run of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// evalArgs are the arguments of EVALSHA (or, with src, EVAL) of sc for
// call.
func evalArgs(sc *script, src bool, call scriptCall) []any {
	name, body := "evalsha", sc.shaArg
	if src {
		name, body = "eval", sc.src
	}
	args := make([]any, 0, 3+len(call.keys)+len(call.args))
	args = append(args, name, body)
	args = append(args, len(call.keys))
	for _, k := range call.keys {
		args = append(args, k)
	}
	return append(args, call.args...)
}

// evalCmd builds EVALSHA (or, with src, EVAL) of sc for call.
func evalCmd(ctx context.Context, sc *script, src bool, call scriptCall) *redis.Cmd {
	return redis.NewCmd(ctx, evalArgs(sc, src, call)...)
}

// send queues or runs cmd on p, never to be resent if single is set.
func send(p processor, ctx context.Context, cmd redis.Cmder, single bool) {
	if single {
		cmd = onceCmd{cmd}
	}
	_ = p.Process(ctx, cmd)
}

// noScript reports whether err says that the server did not have the
// script cached (a new or restarted server, SCRIPT FLUSH).
func noScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// run runs sc by its SHA-1 and, if the server does not have it cached, by
// its text, which caches it. A script that changes what it finds (single)
// is sent once: see onceCmd.
func (s *Store) run(ctx context.Context, sc *script, single bool, keys []string, args ...any) *redis.Cmd {
	return runAs(ctx, s, redis.NewCmd, sc, single, keys, args...)
}

// runAs is run for a script whose reply newCmd's command reads: one that
// reads its reply into the type the caller needs spares the generic
// reply's allocations.
func runAs[C redis.Cmder](ctx context.Context, s *Store, newCmd func(context.Context, ...any) C, sc *script, single bool, keys []string, args ...any) C {
	call := scriptCall{keys: keys, args: args}
	cmd := newCmd(ctx, evalArgs(sc, false, call)...)
	send(s.c, ctx, cmd, single)
	if noScript(cmd.Err()) {
		cmd = newCmd(ctx, evalArgs(sc, true, call)...)
		send(s.c, ctx, cmd, single)
	}
	return cmd
}

// runAll runs sc once per call, in one pipeline (on a Cluster, go-redis
// sends each node its share at once), and again by text those calls whose
// node did not have the script cached. NOSCRIPT means the script did not
// run, so that second attempt is its first.
func (s *Store) runAll(ctx context.Context, sc *script, single bool, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	if len(calls) == 0 {
		return cmds
	}
	pipe := s.c.Pipeline()
	for i, call := range calls {
		cmds[i] = evalCmd(ctx, sc, false, call)
		send(pipe, ctx, cmds[i], single)
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	retry := s.c.Pipeline()
	for i, call := range calls {
		if noScript(cmds[i].Err()) {
			cmds[i] = evalCmd(ctx, sc, true, call)
			send(retry, ctx, cmds[i], single)
		}
	}
	if retry.Len() > 0 {
		_, _ = retry.Exec(ctx)
	}
	return cmds
}
