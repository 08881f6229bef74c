package account_test

import (
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/account"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

func TestSetupToken(t *testing.T) {
	clock := sessiontest.NewClock(start)
	st, secret := account.NewSetupToken(0, clock.Now)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(secret) {
		t.Fatalf("secret %q is not 256 bits of base64url", secret)
	}
	if got, want := st.ExpiresAt(), start.Add(account.DefaultSetupTTL); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v (one hour)", got, want)
	}
	if _, other := account.NewSetupToken(0, clock.Now); other == secret {
		t.Fatal("two setup tokens share a secret")
	}
	for _, wrong := range []string{"", secret[:42], secret + "A", secret[:42] + "x"} {
		if st.Valid(wrong) {
			t.Errorf("Valid(%q) = true", wrong)
		}
		if err := st.Use(wrong, func() error { t.Error("create ran for a wrong token"); return nil }); !errors.Is(err, account.ErrInvalidSetupToken) {
			t.Errorf("Use(%q) = %v", wrong, err)
		}
	}
	if !st.Valid(secret) {
		t.Fatal("the secret is not valid")
	}

	// A failed creation leaves the token usable, so the form can be retried.
	weak := errors.New("password too short")
	if err := st.Use(secret, func() error { return weak }); err != weak {
		t.Fatalf("Use with a failing create = %v", err)
	}
	if !st.Valid(secret) {
		t.Fatal("a failed creation used the token up")
	}
	ran := 0
	if err := st.Use(secret, func() error { ran++; return nil }); err != nil || ran != 1 {
		t.Fatalf("Use = %v, create ran %d times", err, ran)
	}
	// One time only.
	if st.Valid(secret) {
		t.Error("the token is still valid after use")
	}
	if err := st.Use(secret, func() error { ran++; return nil }); !errors.Is(err, account.ErrInvalidSetupToken) || ran != 1 {
		t.Errorf("second Use = %v, create ran %d times", err, ran)
	}
}

func TestSetupTokenExpires(t *testing.T) {
	clock := sessiontest.NewClock(start)
	st, secret := account.NewSetupToken(10*time.Minute, clock.Now)
	clock.Advance(10*time.Minute - time.Nanosecond)
	if !st.Valid(secret) {
		t.Fatal("expired early")
	}
	clock.Advance(time.Nanosecond)
	if st.Valid(secret) {
		t.Fatal("valid at its expiry")
	}
	if err := st.Use(secret, func() error { return nil }); !errors.Is(err, account.ErrInvalidSetupToken) {
		t.Errorf("Use after expiry = %v", err)
	}
}

func TestSetupTokenConcurrentUse(t *testing.T) {
	st, secret := account.NewSetupToken(0, nil)
	var mu sync.Mutex
	created := 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			st.Use(secret, func() error {
				mu.Lock()
				created++
				mu.Unlock()
				return nil
			})
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d concurrent uses created an admin, want 1", created)
	}
}
