package sqldb

import (
	"context"

	"github.com/sessionguard/sessionguard/internal/sqlstore"
)

// ErrSchemaTooNew is returned by Migrate when the database holds a newer
// schema for the component than the running program knows: a newer version
// of sessionguard has used it. It is the error the session stores return in
// the same case.
var ErrSchemaTooNew = sqlstore.ErrSchemaTooNew

// Migration is one step of a component's schema (see sqlstore.Migration):
// steps are applied in order, each once per database, and a released step
// is never edited or reordered.
type Migration = sqlstore.Migration

// Migrate brings component's tables to version len(steps): steps[i] takes
// them from version i to i+1. It runs the missing steps and records the new
// version in one transaction, so a failed step leaves the database as it
// was. Several processes may migrate the same database at once: one does the
// work and the others then find nothing to do.
//
// It returns an error wrapping ErrSchemaTooNew, changing nothing, if the
// database is at a version beyond len(steps).
func (db *DB) Migrate(ctx context.Context, component string, steps []Migration) error {
	return sqlstore.Migrate(ctx, sqlstore.SQL(db.DB), db.Dialect, sqlstore.Schema{Component: component, Steps: steps})
}

// SchemaVersion returns the version of component's tables: the number of
// its migration steps the database has run, 0 if none.
func (db *DB) SchemaVersion(ctx context.Context, component string) (int, error) {
	return sqlstore.Version(ctx, sqlstore.SQL(db.DB), db.Dialect, component)
}
