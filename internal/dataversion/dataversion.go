// Package dataversion tells whether other connections have committed to a
// SQLite database, with PRAGMA data_version on a connection kept for that
// purpose: its value changes whenever another connection, of this process or
// another, has committed since the last time this connection asked, and
// never for the connection's own writes (it makes none).
//
// Asking costs a few microseconds: the start of a read transaction, with no
// table read. It is how a cache of what a SQLite file holds stays exact
// across processes at a fraction of the cost of reading the rows again.
package dataversion

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// Conn asks one SQLite connection for its data version. It is not safe for
// concurrent use: callers serialise its use (see internal/coalesce).
type Conn struct {
	conn *sql.Conn
	// stmt is the pragma prepared on conn's driver connection and run on it
	// directly (in conn.Raw), without database/sql's rows and conversions,
	// which would double the cost of every Read.
	stmt   driver.Stmt
	values []driver.Value
}

// Open takes a connection from db, which must be a SQLite database, and
// keeps it until Close.
func Open(ctx context.Context, db *sql.DB) (_ *Conn, err error) {
	c := &Conn{values: make([]driver.Value, 1)}
	if c.conn, err = db.Conn(ctx); err != nil {
		return nil, err
	}
	err = c.conn.Raw(func(dc any) (err error) {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("dataversion: driver connection %T cannot prepare with a context", dc)
		}
		c.stmt, err = prep.PrepareContext(ctx, `PRAGMA data_version`)
		return err
	})
	if err == nil {
		if _, ok := c.stmt.(driver.StmtQueryContext); !ok {
			err = fmt.Errorf("dataversion: driver statement %T cannot query with a context", c.stmt)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Read returns the connection's data version. Two reads give different
// values if and only if another connection committed in between.
//
// The pragma itself runs without ctx's cancellation: it reads no table and
// never waits for a writer (in WAL mode only, rarely and briefly, for a
// checkpoint that restarts the log), while the driver (modernc.org/sqlite)
// would watch a cancellable context with a goroutine per statement, which
// costs more than the pragma. ctx is checked before it.
func (c *Conn) Read(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var version int64
	err := c.conn.Raw(func(any) error {
		rows, err := c.stmt.(driver.StmtQueryContext).QueryContext(context.WithoutCancel(ctx), nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		if err := rows.Next(c.values); err != nil {
			return err
		}
		v, ok := c.values[0].(int64)
		if !ok {
			return fmt.Errorf("dataversion: PRAGMA data_version gave %T", c.values[0])
		}
		version = v
		return nil
	})
	return version, err
}

// Close releases the statement and gives the connection back to its pool.
func (c *Conn) Close() error {
	var errs []error
	if c.stmt != nil {
		errs = append(errs, c.conn.Raw(func(any) error { return c.stmt.Close() }))
	}
	if c.conn != nil {
		errs = append(errs, c.conn.Close())
	}
	return errors.Join(errs...)
}
