package account_test

import (
	"bytes"
	"errors"
	"image/png"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

// step is one TOTP time step.
const step = account.TOTPPeriod

// code is what an authenticator app holding secret shows at t.
func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newUser creates a user with a password the tests never use.
func newUser(t *testing.T, s *account.Store, name string) {
	t.Helper()
	if err := s.Create(t.Context(), name, alicePassword, account.RoleUser); err != nil {
		t.Fatal(err)
	}
}

// enrolTOTP gives user a confirmed authenticator app and returns its secret.
// The confirming code is the one for the clock's current time.
func enrolTOTP(t *testing.T, s *account.Store, clock *sessiontest.Clock, user string) string {
	t.Helper()
	e, err := s.BeginTOTP(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmTOTP(t.Context(), user, code(t, e.Secret, clock.Now())); err != nil {
		t.Fatal(err)
	}
	return e.Secret
}

func TestTOTPEnrolment(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		s := newStore(t, db, clock)
		newUser(t, s, "alice")

		e, err := s.BeginTOTP(ctx, "Alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Secret) != 32 || strings.Trim(e.Secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Errorf("Secret %q is not 160 bits of unpadded base32", e.Secret)
		}
		u, err := url.Parse(e.URL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/sessionguard:alice" ||
			q.Get("secret") != e.Secret || q.Get("issuer") != "sessionguard" ||
			q.Get("period") != "30" || q.Get("digits") != "6" || q.Get("algorithm") != "SHA1" {
			t.Errorf("URL = %s", e.URL)
		}
		img, err := png.Decode(bytes.NewReader(e.QRCode))
		if err != nil {
			t.Fatalf("QRCode is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
			t.Errorf("QR code is %v", b)
		}

		// Until confirmed, the secret counts for nothing.
		if f, err := s.Factors(ctx, "alice"); err != nil || f.TOTP {
			t.Errorf("Factors before confirmation = %+v, %v", f, err)
		}
		if err := s.VerifyTOTP(ctx, "alice", code(t, e.Secret, clock.Now())); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("VerifyTOTP with an unconfirmed secret = %v, want ErrWrongCode", err)
		}
		if err := s.RemoveTOTP(ctx, "alice"); !errors.Is(err, account.ErrNoTOTP) {
			t.Errorf("RemoveTOTP with only an unconfirmed secret = %v, want ErrNoTOTP", err)
		}
		if err := s.ConfirmTOTP(ctx, "alice", code(t, e.Secret, clock.Now())); !errors.Is(err, account.ErrNoTOTPEnrolment) {
			t.Errorf("ConfirmTOTP after RemoveTOTP = %v, want ErrNoTOTPEnrolment", err)
		}

		e, err = s.BeginTOTP(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if err := s.ConfirmTOTP(ctx, "alice", code(t, e.Secret, clock.Now().Add(2*step))); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("ConfirmTOTP with a code two steps ahead = %v, want ErrWrongCode", err)
		}
		confirming := code(t, e.Secret, clock.Now())
		if err := s.ConfirmTOTP(ctx, "alice", confirming); err != nil {
			t.Fatalf("ConfirmTOTP: %v", err)
		}
		f, err := s.Factors(ctx, "alice")
		if err != nil || !f.TOTP || !f.TOTPSince.Equal(start.Add(time.Minute)) {
			t.Errorf("Factors after confirmation = %+v, %v", f, err)
		}
		if err := s.ConfirmTOTP(ctx, "alice", confirming); !errors.Is(err, account.ErrNoTOTPEnrolment) {
			t.Errorf("second ConfirmTOTP = %v, want ErrNoTOTPEnrolment", err)
		}
		// The confirming code is used.
		if err := s.VerifyTOTP(ctx, "alice", confirming); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("VerifyTOTP with the confirming code = %v, want ErrWrongCode", err)
		}
		clock.Advance(step)
		if err := s.VerifyTOTP(ctx, "alice", code(t, e.Secret, clock.Now())); err != nil {
			t.Errorf("VerifyTOTP with the next code = %v", err)
		}

		if err := s.RemoveTOTP(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.Factors(ctx, "alice"); f.TOTP {
			t.Error("TOTP counts after RemoveTOTP")
		}
		clock.Advance(step)
		if err := s.VerifyTOTP(ctx, "alice", code(t, e.Secret, clock.Now())); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("VerifyTOTP after RemoveTOTP = %v, want ErrWrongCode", err)
		}
		if err := s.RemoveTOTP(ctx, "alice"); !errors.Is(err, account.ErrNoTOTP) {
			t.Errorf("second RemoveTOTP = %v, want ErrNoTOTP", err)
		}

		if _, err := s.BeginTOTP(ctx, "nobody"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("BeginTOTP for a missing user = %v, want ErrNotFound", err)
		}
		if err := s.VerifyTOTP(ctx, "nobody", "123456"); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("VerifyTOTP for a missing user = %v, want ErrWrongCode", err)
		}
	})
}

func TestTOTPIssuer(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	s, err := account.NewStore(t.Context(), db, account.Options{Params: fastParams, Issuer: "Example Corp"})
	if err != nil {
		t.Fatal(err)
	}
	newUser(t, s, "alice")
	e, err := s.BeginTOTP(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.URL)
	if u.Path != "/Example Corp:alice" || u.Query().Get("issuer") != "Example Corp" {
		t.Errorf("URL = %s", e.URL)
	}
	if _, err := account.NewStore(t.Context(), db, account.Options{Params: fastParams, Issuer: "a:b"}); err == nil {
		t.Error("NewStore accepted an Issuer with a colon")
	}
}

// A new enrolment leaves the confirmed app in use until it is confirmed, and
// replaces an earlier unconfirmed one.
func TestTOTPReenrolment(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		s := newStore(t, db, clock)
		newUser(t, s, "alice")
		old := enrolTOTP(t, s, clock, "alice")

		first, err := s.BeginTOTP(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		second, err := s.BeginTOTP(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(step)
		if err := s.VerifyTOTP(ctx, "alice", code(t, old, clock.Now())); err != nil {
			t.Errorf("the confirmed app stopped working during a new enrolment: %v", err)
		}
		if f, _ := s.Factors(ctx, "alice"); !f.TOTP || !f.TOTPSince.Equal(start) {
			t.Errorf("Factors during a new enrolment = %+v", f)
		}
		if err := s.ConfirmTOTP(ctx, "alice", code(t, first.Secret, clock.Now())); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("ConfirmTOTP of a replaced enrolment = %v, want ErrWrongCode", err)
		}
		if err := s.ConfirmTOTP(ctx, "alice", code(t, second.Secret, clock.Now())); err != nil {
			t.Fatal(err)
		}
		clock.Advance(step)
		if err := s.VerifyTOTP(ctx, "alice", code(t, old, clock.Now())); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("the old app still works after the new one was confirmed: %v", err)
		}
		if err := s.VerifyTOTP(ctx, "alice", code(t, second.Secret, clock.Now())); err != nil {
			t.Errorf("the new app does not work: %v", err)
		}
	})
}

// Codes one step early or late are accepted, two steps are not; the edges
// of a step are exact.
func TestTOTPWindow(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	stepStart := time.Unix(totpStepOf(start)*30, 0)
	clock := sessiontest.NewClock(stepStart)
	s := newStore(t, db, clock)
	for i, tc := range []struct {
		now, codeAt time.Time
		accepted    bool
	}{
		{stepStart, stepStart, true},
		{stepStart.Add(step - time.Nanosecond), stepStart, true},
		{stepStart, stepStart.Add(-step), true},
		{stepStart, stepStart.Add(-time.Nanosecond), true},
		{stepStart, stepStart.Add(step), true},
		{stepStart, stepStart.Add(2*step - time.Nanosecond), true},
		{stepStart, stepStart.Add(-step - time.Nanosecond), false},
		{stepStart, stepStart.Add(-2 * step), false},
		{stepStart, stepStart.Add(2 * step), false},
		{stepStart.Add(step - time.Nanosecond), stepStart.Add(-step - time.Nanosecond), false},
		{stepStart, stepStart.Add(-time.Hour), false},
	} {
		// A user each, enrolled an hour before, so that no earlier
		// acceptance stands in the way.
		user := "user" + string(rune('a'+i))
		newUser(t, s, user)
		clock.Set(tc.now.Add(-time.Hour))
		secret := enrolTOTP(t, s, clock, user)
		clock.Set(tc.now)
		err := s.VerifyTOTP(t.Context(), user, code(t, secret, tc.codeAt))
		if tc.accepted && err != nil || !tc.accepted && !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("at %v, the code of %v: %v", tc.now.Sub(stepStart), tc.codeAt.Sub(stepStart), err)
		}
	}
}

// totpStepOf returns the number of t's TOTP step.
func totpStepOf(t time.Time) int64 { return t.Unix() / 30 }

// Each code is accepted once, and never a code older than one accepted.
func TestTOTPReplay(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		s := newStore(t, db, clock)
		newUser(t, s, "alice")
		secret := enrolTOTP(t, s, clock, "alice")

		clock.Advance(step)
		now := code(t, secret, clock.Now())
		if err := s.VerifyTOTP(ctx, "alice", now); err != nil {
			t.Fatal(err)
		}
		err := s.VerifyTOTP(ctx, "alice", now)
		if !errors.Is(err, account.ErrWrongCode) || !strings.Contains(err.Error(), "used") {
			t.Errorf("replayed code = %v, want ErrWrongCode saying it was used", err)
		}
		// Still within its window, a few seconds later.
		clock.Advance(step / 2)
		if err := s.VerifyTOTP(ctx, "alice", now); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("code replayed later in its window = %v, want ErrWrongCode", err)
		}
		// An early code (the app's clock runs ahead) is accepted, and then
		// the current one is at or before it.
		clock.Advance(step)
		current, early := code(t, secret, clock.Now()), code(t, secret, clock.Now().Add(step))
		if err := s.VerifyTOTP(ctx, "alice", early); err != nil {
			t.Errorf("code one step early = %v", err)
		}
		if err := s.VerifyTOTP(ctx, "alice", current); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("code older than an accepted one = %v, want ErrWrongCode", err)
		}
		clock.Advance(2 * step)
		if err := s.VerifyTOTP(ctx, "alice", code(t, secret, clock.Now())); err != nil {
			t.Errorf("the next code = %v", err)
		}
	})
}

// People type codes with spaces and dashes, and paste them with stray ones.
func TestTOTPTypedForms(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	clock := sessiontest.NewClock(start)
	s := newStore(t, db, clock)
	newUser(t, s, "alice")
	secret := enrolTOTP(t, s, clock, "alice")
	for _, form := range []func(string) string{
		func(c string) string { return c[:3] + " " + c[3:] },
		func(c string) string { return c[:3] + "-" + c[3:] },
		func(c string) string { return " " + c + "\n" },
		func(c string) string { return c[:3] + "\u00a0" + c[3:] },
		func(c string) string { return c[:3] + "\u2013" + c[3:] },
	} {
		clock.Advance(step)
		c := form(code(t, secret, clock.Now()))
		if err := s.VerifyTOTP(t.Context(), "alice", c); err != nil {
			t.Errorf("VerifyTOTP(%q) = %v", c, err)
		}
	}
	clock.Advance(step)
	c := code(t, secret, clock.Now())
	for _, bad := range []string{c[:5], c + "0", "x" + c, c[:3] + "." + c[3:], ""} {
		if err := s.VerifyTOTP(t.Context(), "alice", bad); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("VerifyTOTP(%q) = %v, want ErrWrongCode", bad, err)
		}
	}
}

// Of concurrent verifications of one code, exactly one succeeds: on one
// Store, and on two Stores (two processes) sharing a SQLite file.
func TestTOTPConcurrentVerify(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		clock := sessiontest.NewClock(start)
		s := newStore(t, db, clock)
		newUser(t, s, "alice")
		secret := enrolTOTP(t, s, clock, "alice")
		for range 3 {
			clock.Advance(step)
			c := code(t, secret, clock.Now())
			raceOnce(t, "VerifyTOTP", []*account.Store{s}, func(s *account.Store) error {
				return s.VerifyTOTP(t.Context(), "alice", c)
			})
		}
	})
	t.Run("two stores on one SQLite file", func(t *testing.T) {
		clock := sessiontest.NewClock(start)
		stores := twoStores(t, clock)
		newUser(t, stores[0], "alice")
		secret := enrolTOTP(t, stores[1], clock, "alice")
		for range 3 {
			clock.Advance(step)
			c := code(t, secret, clock.Now())
			raceOnce(t, "VerifyTOTP", stores, func(s *account.Store) error {
				return s.VerifyTOTP(t.Context(), "alice", c)
			})
		}
	})
}

// twoStores returns two Stores, each with a database pool of its own, on
// one SQLite file: as two server processes would have.
func twoStores(t *testing.T, clock *sessiontest.Clock) []*account.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shared.db")
	var stores []*account.Store
	for range 2 {
		db, err := sqldb.Open(t.Context(), "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		stores = append(stores, newStore(t, db, clock))
	}
	return stores
}

// raceOnce runs use from 8 goroutines at once, spread over stores, and
// checks that exactly one succeeds and the others get ErrWrongCode.
func raceOnce(t *testing.T, what string, stores []*account.Store, use func(*account.Store) error) {
	t.Helper()
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-ready
			errs[i] = use(stores[i%len(stores)])
		})
	}
	close(ready)
	wg.Wait()
	succeeded := 0
	for _, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case !errors.Is(err, account.ErrWrongCode):
			t.Errorf("concurrent %s: %v", what, err)
		}
	}
	if succeeded != 1 {
		t.Errorf("%d of %d concurrent %s calls with one code succeeded, want 1", succeeded, n, what)
	}
}
