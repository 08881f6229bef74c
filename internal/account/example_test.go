package account_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
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

	user, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "correct horse battery staple", IP: "192.0.2.10"})
	fmt.Println(user.Name, user.Role, err)

	_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "wrong password, sorry", IP: "192.0.2.10"})
	fmt.Println(err)
	_, err = auth.Authenticate(ctx, account.Attempt{Name: "nobody", Password: "wrong password, sorry", IP: "192.0.2.10"})
	fmt.Println(err)

	// After five failures the account waits, whatever the password.
	for range 4 {
		auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "wrong password, sorry", IP: "192.0.2.10"})
	}
	_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "correct horse battery staple", IP: "192.0.2.10"})
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

// Re-authentication before a sensitive action is throttled per session:
// failures on the name by anyone else never lock the signed-in user out.
func ExampleAuthenticator_Verify() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()
	store, _ := account.NewStore(ctx, db, account.Options{})
	auth, _ := account.NewAuthenticator(store, account.AuthOptions{})
	store.Create(ctx, "alice", "correct horse battery staple", account.RoleUser)

	// Someone guesses at alice's name until it locks...
	for range 5 {
		auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "wrong password, sorry", IP: "203.0.113.9"})
	}
	// ...while alice, signed in, confirms her password to change it.
	err := auth.Verify(ctx, account.Attempt{Name: "alice", Password: "correct horse battery staple", Session: "her-session-id"})
	if err == nil {
		err = store.SetPassword(ctx, "alice", "a brand new passphrase for alice")
		fmt.Println("password changed:", err == nil)
	}
	// Output: password changed: true
}

// A browser that signed in before keeps a device token (in a cookie) and
// presents it with its next sign-ins: a lock on the name, which anyone can
// cause, then does not hold it back.
func ExampleAuthenticator_RememberClient() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()
	store, _ := account.NewStore(ctx, db, account.Options{})
	auth, _ := account.NewAuthenticator(store, account.AuthOptions{})
	store.Create(ctx, "alice", "correct horse battery staple", account.RoleUser)

	signIn := account.Attempt{Name: "alice", Password: "correct horse battery staple", IP: "192.0.2.10"}
	if _, err := auth.Authenticate(ctx, signIn); err == nil {
		signIn.Device, _ = auth.RememberClient(ctx, signIn) // set it in the device cookie
	}

	for range 5 { // an attacker locks the name
		auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "wrong password, sorry", IP: "203.0.113.9"})
	}
	_, err := auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "correct horse battery staple", IP: "198.51.100.7"})
	var throttled *account.ThrottledError
	if errors.As(err, &throttled) {
		fmt.Println("without the device: 429, Retry-After:", throttled.RetryAfterSeconds())
	}
	_, err = auth.Authenticate(ctx, account.Attempt{Name: "alice", Password: "correct horse battery staple", IP: "198.51.100.7", Device: signIn.Device})
	fmt.Println("from her device:", err)
	// Output:
	// without the device: 429, Retry-After: 60
	// from her device: <nil>
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
		setup, secret, err := store.NewSetupToken(ctx, time.Hour)
		if err != nil {
			log.Fatal(err)
		}
		// The server prints http://localhost:8080/setup?token=<secret>;
		// the form, on this instance or any other on the same database,
		// posts the token back with a name and a password.
		err = setup.Use(ctx, secret, func() error {
			return store.CreateFirstAdmin(ctx, "admin", "a long admin passphrase")
		})
		fmt.Println("first admin:", err)
		valid, _ := setup.Valid(ctx, secret)
		fmt.Println("link still valid:", valid)
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
