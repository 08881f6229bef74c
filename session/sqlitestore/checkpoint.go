package sqlitestore

import (
	"context"
	"database/sql"
	"sync/atomic"
)

// checkpointEvery is how many records a sweep ends or purges between two
// of its checkpoints.
const checkpointEvery = 500

// checkpointer copies what the write-ahead log holds back into the
// database file, on a goroutine of its own. The sweep asks for it every
// checkpointEvery records and when it is done, so that the log stays small
// and the write connection's automatic checkpoint (see writeDSN) has
// nothing to do: that one would run inside the commit of whichever write
// crossed its threshold, often a request's Touch, and copy the whole log
// before the request could go on. Between sweeps, the Manager's sweeper
// calls EndExpired every second, which asks for one to copy what requests
// wrote.
//
// It does not run inside EndExpired: a checkpoint waits for the disk (two
// syncs), and the Manager pauses after each call of a sweep in proportion
// to the call's length, so a checkpoint inside the calls lengthened the
// sweep without sparing the CPU anything.
type checkpointer struct {
	db      *sql.DB
	wanted  chan struct{} // holds one token while a checkpoint is wanted
	ctx     context.Context
	stop    context.CancelFunc
	done    chan struct{}
	pending atomic.Int64 // wanted and not yet finished, for tests
}

func startCheckpointer(db *sql.DB) *checkpointer {
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, wanted: make(chan struct{}, 1), ctx: ctx, stop: stop, done: make(chan struct{})}
	go c.run()
	return c
}

// want asks for a checkpoint that starts after the call, without waiting
// for it. Asks that come while one is already wanted are that one.
func (c *checkpointer) want() {
	c.pending.Add(1)
	select {
	case c.wanted <- struct{}{}:
	default:
		c.pending.Add(-1)
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wanted:
			c.checkpoint()
			c.pending.Add(-1)
		}
	}
}

// checkpoint runs a PASSIVE checkpoint, on a connection of the read pool:
// it waits for and blocks no one, leaving out the frames that readers still
// use and letting writers append meanwhile. One that fails, or finds
// another under way (SQLITE_BUSY), is left to the next.
func (c *checkpointer) checkpoint() {
	var busy, frames, copied int
	_ = c.db.QueryRowContext(c.ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
}

// close stops the checkpointer, interrupting a checkpoint under way, and
// returns once it has stopped. A nil checkpointer (a Store whose Open
// failed early) is closed.
func (c *checkpointer) close() {
	if c == nil {
		return
	}
	c.stop()
	<-c.done
}
