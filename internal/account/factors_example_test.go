package account_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sessionguard/sessionguard/internal/account"
)

// Enrolling an authenticator app: the page shows the QR code and the secret,
// the user types the code the app then shows, and from then on each sign-in
// asks for a fresh code. A code is accepted once.
func ExampleStore_VerifyTOTP() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	store, err := account.NewStore(ctx, db, account.Options{Issuer: "Example Corp", Clock: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}
	store.Create(ctx, "alice", "correct horse battery staple", account.RoleUser)

	enrolment, err := store.BeginTOTP(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	// The page shows enrolment.QRCode (a PNG) and enrolment.Secret; here,
	// the app is played by the otp package.
	app := func() string { c, _ := totp.GenerateCode(enrolment.Secret, now); return c }
	fmt.Println("confirm:", store.ConfirmTOTP(ctx, "alice", app()))

	now = now.Add(time.Minute) // the next sign-in
	code := app()
	fmt.Println("sign-in:", store.VerifyTOTP(ctx, "alice", code))
	err = store.VerifyTOTP(ctx, "alice", code)
	fmt.Println("the same code again refused:", errors.Is(err, account.ErrWrongCode))

	f, _ := store.Factors(ctx, "alice")
	fmt.Println("has an app:", f.TOTP)
	// Output:
	// confirm: <nil>
	// sign-in: <nil>
	// the same code again refused: true
	// has an app: true
}

// Recovery codes are shown once; each works once.
func ExampleStore_UseRecoveryCode() {
	db, done := openExampleDB()
	defer done()
	ctx := context.Background()
	store, err := account.NewStore(ctx, db, account.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store.Create(ctx, "alice", "correct horse battery staple", account.RoleUser)

	codes, err := store.NewRecoveryCodes(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(codes), "codes like", len(codes[0]), "characters: xxxx-xxxx-xxxx-xxxx")

	fmt.Println(store.UseRecoveryCode(ctx, "alice", codes[0]))
	fmt.Println(store.UseRecoveryCode(ctx, "alice", codes[0]))
	f, _ := store.Factors(ctx, "alice")
	fmt.Println(f.RecoveryCodesLeft, "left")
	// Output:
	// 10 codes like 19 characters: xxxx-xxxx-xxxx-xxxx
	// <nil>
	// account: wrong or expired code
	// 9 left
}

// After a right password, the policy for the user's role says what comes
// next.
func ExampleMFAPolicy_Decide() {
	policy, err := account.ParseMFAPolicy("required") // from -mfa
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(policy.Decide(false, 0))
	fmt.Println(policy.Decide(true, 0))

	aal3, _ := account.ParseMFAPolicy("passkey")
	fmt.Println(aal3.Decide(true, 0), "| TOTP accepted:", aal3.Accepts(account.FactorTOTP))
	fmt.Println(aal3.Decide(true, 1))
	// Output:
	// must enrol
	// ask second factor
	// must enrol | TOTP accepted: false
	// ask second factor
}
