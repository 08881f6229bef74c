package account_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sessionguard/sessionguard/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
)

// openExampleDB opens a throwaway SQLite database for the examples.
func openExampleDB() (*sqldb.DB, func()) {
	dir, err := os.MkdirTemp("", "account-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(dir, "sessionguard.db"))
	if err != nil {
		log.Fatal(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

// A server creates its store and authenticator once, and checks each sign-in
// with the client's address.
func ExampleAuthenticator_Authenticate() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()

	store, err := account.NewStore(ctx, db, account.Options{}) // OWASP argon2id parameters
	if err != nil {
		log.Fatal(err)
	}
	auth, err := account.NewAuthenticator(store, account.AuthOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Create(ctx, "Alice", "correct horse battery staple", account.RoleUser); err != nil {
		log.Fatal(err)
	}

	user, err := auth.Authenticate(ctx, "alice", "correct horse battery staple", "192.0.2.10")
	fmt.Println(user.Name, user.Role, err)

	_, err = auth.Authenticate(ctx, "alice", "wrong password, sorry", "192.0.2.10")
	fmt.Println(err)
	_, err = auth.Authenticate(ctx, "nobody", "wrong password, sorry", "192.0.2.10")
	fmt.Println(err)

	// After five failures the account waits, whatever the password.
	for range 4 {
		auth.Authenticate(ctx, "alice", "wrong password, sorry", "192.0.2.10")
	}
	_, err = auth.Authenticate(ctx, "alice", "correct horse battery staple", "192.0.2.10")
	var throttled *account.ThrottledError
	if errors.As(err, &throttled) {
		fmt.Println("429 Too Many Requests, Retry-After:", throttled.RetryAfterSeconds())
	}
	// Output:
	// alice user <nil>
	// account: invalid user name or password
	// account: invalid user name or password
	// 429 Too Many Requests, Retry-After: 60
}

// Re-authentication before a sensitive action uses the same checks.
func ExampleAuthenticator_Verify() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()
	store, _ := account.NewStore(ctx, db, account.Options{})
	auth, _ := account.NewAuthenticator(store, account.AuthOptions{})
	store.Create(ctx, "alice", "correct horse battery staple", account.RoleUser)

	if err := auth.Verify(ctx, "alice", "correct horse battery staple"); err == nil {
		err = store.SetPassword(ctx, "alice", "a brand new passphrase for alice")
		fmt.Println("password changed:", err == nil)
	}
	// Output: password changed: true
}

func ExampleStore_Create() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()
	store, _ := account.NewStore(ctx, db, account.Options{})

	err := store.Create(ctx, "bob", "hunter2", account.RoleUser)
	fmt.Println(errors.Is(err, account.ErrWeakPassword), err)

	err = store.Create(ctx, "bob", "four random words together", account.RoleUser)
	fmt.Println(err)
	err = store.Create(ctx, "BOB", "four other words, all new", account.RoleUser)
	fmt.Println(errors.Is(err, account.ErrExists))

	users, _ := store.List(ctx)
	for _, u := range users {
		fmt.Println(u.Name, u.Role, u.Disabled)
	}
	// Output:
	// true password must have at least 15 characters (it has 7); a few unrelated words make a good one
	// <nil>
	// true
	// bob user false
}

// A server with no accounts prints a one-time link; its form creates the
// first administrator.
func ExampleSetupToken() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()
	store, _ := account.NewStore(ctx, db, account.Options{})

	if n, _ := store.Count(ctx); n == 0 {
		setup, secret := account.NewSetupToken(time.Hour, nil)
		// The server prints http://localhost:8080/setup?token=<secret>;
		// the form posts the token back with a name and a password.
		err := setup.Use(secret, func() error {
			return store.CreateFirstAdmin(ctx, "admin", "a long admin passphrase")
		})
		fmt.Println("first admin:", err)
		fmt.Println("link still valid:", setup.Valid(secret))
	}
	// Output:
	// first admin: <nil>
	// link still valid: false
}

func ExampleCheckPassword() {
	for _, pw := range []string{
		"Tr0ub4dor&3",
		"aaaaaaaaaaaaaaaa",
		"alice_password_1",
		"staple horse battery correct",
	} {
		fmt.Println(account.CheckPassword("alice", pw))
	}
	// Output:
	// password must have at least 15 characters (it has 11); a few unrelated words make a good one
	// password must not be one short pattern repeated
	// password is too easy to guess: it is mostly the user name, the service name, or common passwords and keyboard patterns
	// <nil>
}

func ExampleHashPassword() {
	hash, _ := account.HashPassword("correct horse battery staple", account.DefaultParams)
	ok, _ := account.CheckPasswordHash(hash, "correct horse battery staple")
	fmt.Println(hash[:30], ok, account.NeedsRehash(hash, account.DefaultParams))
	// Output: $argon2id$v=19$m=19456,t=2,p=1 true false
}
