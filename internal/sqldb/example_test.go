package sqldb_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// A component opens the shared database, migrates its own tables, and writes
// its queries once with ? placeholders.
func Example() {
	dir, _ := os.MkdirTemp("", "sqldb-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := sqldb.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	err = db.Migrate(ctx, "notes", []sqldb.Migration{{
		Name:     "notes table",
		SQLite:   `CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)`,
		Postgres: `CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body TEXT NOT NULL)`,
	}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO notes (body) VALUES (?)`), "hello"); err != nil {
		log.Fatal(err)
	}
	var body string
	if err := db.QueryRowContext(ctx, db.Rebind(`SELECT body FROM notes WHERE id = ?`), 1).Scan(&body); err != nil {
		log.Fatal(err)
	}
	fmt.Println(db.Dialect, body)
	// Output: sqlite hello
}

func ExampleOpen_badDSN() {
	_, err := sqldb.Open(context.Background(), "mysql://db/app")
	fmt.Println(err)
	// Output: sqldb: unsupported database scheme "mysql": use sqlite:PATH (for example sqlite:sessionguard.db) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS] (postgresql:// also works)
}

func ExampleDB_Rebind() {
	db := &sqldb.DB{Dialect: sqldb.Postgres}
	fmt.Println(db.Rebind(`SELECT name FROM users WHERE name = ? AND role = ?`))
	// Output: SELECT name FROM users WHERE name = $1 AND role = $2
}
