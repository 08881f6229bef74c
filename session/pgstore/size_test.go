package pgstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sessionguard/sessionguard/session"
)

// TestSizing measures what a session costs on disk, tables, TOAST and
// indexes together (pg_total_relation_size), for the figures in the package
// documentation, and fails if the layout grows past them. Run with -v to see
// the numbers.
func TestSizing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	const n = 20_000
	recs := make([]session.Record, n)
	ended := make([][]any, n)
	for i := range recs {
		r := record(fmt.Sprint("size-", i))
		// IDs and user IDs as the server makes them: 22 characters of
		// base64, and an account's ID.
		r.ID = fmt.Sprintf("%022d", i)
		r.UserID = fmt.Sprint("user-", i%5000)
		r.IP = "203.0.113.254"
		r.UserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
		// Distinct times, as real ones are: an index deduplicates equal keys.
		at := t0.Add(time.Duration(i) * time.Millisecond)
		r.CreatedAt, r.AuthenticatedAt, r.LastActivity = at, at, at
		recs[i] = r
		h := hashOf(fmt.Sprint("ended-", i))
		ended[i] = []any{h[:], string(session.ReasonIdle), at.UnixNano(), at.Add(time.Hour).UnixNano()}
	}
	insertRecords(t, s, recs)
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"session_ended"}, []string{"token_hash", "reason", "ended_at", "keep_until"},
		pgx.CopyFromRows(ended)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE session_records, session_ended`); err != nil {
		t.Fatal(err)
	}
	perRow := func(table string) int64 {
		var size int64
		if err := s.pool.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, table).Scan(&size); err != nil {
			t.Fatal(err)
		}
		return size / n
	}
	records, endings := perRow("session_records"), perRow("session_ended")
	t.Logf("%d sessions: %d bytes per session record, %d per ended-token row", n, records, endings)
	rows, err := s.pool.Query(ctx, `SELECT c.relname, pg_relation_size(c.oid) / $1 FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'i')
			AND c.relname LIKE 'session\_%' ORDER BY 1`, n)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			t.Fatal(err)
		}
		t.Logf("\t%s: %d bytes per row", name, size)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if records > 600 || endings > 220 {
		t.Errorf("%d bytes per record and %d per ended-token row; the package documentation says about 525 and 185", records, endings)
	}
}
