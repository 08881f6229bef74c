package account_test

import (
	"errors"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

func TestMFAPolicyDecide(t *testing.T) {
	const (
		none   = account.MFANoneNeeded
		ask    = account.MFAAskSecondFactor
		enrol  = account.MFAMustEnrol
		unset  = account.MFAPolicy("")
		typoed = account.MFAPolicy("requried")
	)
	for _, tc := range []struct {
		policy   account.MFAPolicy
		hasTOTP  bool
		passkeys int
		want     account.MFADecision
	}{
		{account.MFAOff, false, 0, none},
		{account.MFAOff, true, 0, none},
		{account.MFAOff, false, 2, none},
		{account.MFAOff, true, 1, none},

		{account.MFAOptional, false, 0, none},
		{account.MFAOptional, true, 0, ask},
		{account.MFAOptional, false, 1, ask},
		{account.MFAOptional, true, 3, ask},

		{account.MFARequired, false, 0, enrol},
		{account.MFARequired, true, 0, ask},
		{account.MFARequired, false, 1, ask},
		{account.MFARequired, true, 1, ask},

		// Only a passkey counts.
		{account.MFAPasskey, false, 0, enrol},
		{account.MFAPasskey, true, 0, enrol},
		{account.MFAPasskey, false, 1, ask},
		{account.MFAPasskey, true, 2, ask},

		// An unset or unknown policy is MFARequired: it fails closed.
		{unset, false, 0, enrol},
		{unset, true, 0, ask},
		{typoed, false, 0, enrol},
		{typoed, false, 1, ask},
	} {
		if got := tc.policy.Decide(tc.hasTOTP, tc.passkeys); got != tc.want {
			t.Errorf("%q.Decide(totp %v, %d passkeys) = %v, want %v", tc.policy, tc.hasTOTP, tc.passkeys, got, tc.want)
		}
	}
}

func TestMFAPolicyAccepts(t *testing.T) {
	kinds := []account.FactorKind{account.FactorTOTP, account.FactorRecoveryCode, account.FactorPasskey}
	for _, tc := range []struct {
		policy account.MFAPolicy
		want   []bool // in the order of kinds
	}{
		{account.MFAOff, []bool{false, false, false}},
		{account.MFAOptional, []bool{true, true, true}},
		{account.MFARequired, []bool{true, true, true}},
		{account.MFAPasskey, []bool{false, false, true}},
		{"", []bool{true, true, true}},
	} {
		for i, k := range kinds {
			if got := tc.policy.Accepts(k); got != tc.want[i] {
				t.Errorf("%q.Accepts(%s) = %v, want %v", tc.policy, k, got, tc.want[i])
			}
		}
		if tc.policy.Accepts("password") {
			t.Errorf("%q accepts a password as the second factor", tc.policy)
		}
	}
}

func TestParseMFAPolicy(t *testing.T) {
	for _, s := range []string{"off", "optional", "required", "passkey"} {
		p, err := account.ParseMFAPolicy(s)
		if err != nil || p.String() != s {
			t.Errorf("ParseMFAPolicy(%q) = %q, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "Required", "on", "passkeys", " optional"} {
		if p, err := account.ParseMFAPolicy(s); err == nil {
			t.Errorf("ParseMFAPolicy(%q) = %q, want an error", s, p)
		}
	}
}

func TestMFADecisionZeroValue(t *testing.T) {
	var d account.MFADecision
	if d == account.MFANoneNeeded || d == account.MFAAskSecondFactor || d == account.MFAMustEnrol {
		t.Errorf("the zero MFADecision is %v", d)
	}
	if d.String() != "MFADecision(0)" || account.MFAMustEnrol.String() != "must enrol" {
		t.Errorf("String: %q, %q", d, account.MFAMustEnrol)
	}
}

func TestResetSecondFactors(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		clock := sessiontest.NewClock(start)
		s := newStore(t, db, clock)
		newUser(t, s, "alice")
		newUser(t, s, "bob")
		secret := enrolTOTP(t, s, clock, "alice")
		pending, err := s.BeginTOTP(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		codes, err := s.NewRecoveryCodes(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		bobSecret := enrolTOTP(t, s, clock, "bob")
		bobCodes, err := s.NewRecoveryCodes(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}

		if err := s.ResetSecondFactors(ctx, "ALICE"); err != nil {
			t.Fatal(err)
		}
		if f, err := s.Factors(ctx, "alice"); err != nil || f != (account.Factors{}) {
			t.Errorf("Factors after reset = %+v, %v", f, err)
		}
		clock.Advance(step)
		if err := s.VerifyTOTP(ctx, "alice", code(t, secret, clock.Now())); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("VerifyTOTP after reset = %v, want ErrWrongCode", err)
		}
		if err := s.ConfirmTOTP(ctx, "alice", code(t, pending.Secret, clock.Now())); !errors.Is(err, account.ErrNoTOTPEnrolment) {
			t.Errorf("ConfirmTOTP of an enrolment begun before the reset = %v, want ErrNoTOTPEnrolment", err)
		}
		if err := s.UseRecoveryCode(ctx, "alice", codes[0]); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("UseRecoveryCode after reset = %v, want ErrWrongCode", err)
		}
		// Nothing left to reset is no error; bob keeps his.
		if err := s.ResetSecondFactors(ctx, "alice"); err != nil {
			t.Errorf("second reset = %v", err)
		}
		if err := s.VerifyTOTP(ctx, "bob", code(t, bobSecret, clock.Now())); err != nil {
			t.Errorf("bob's app after alice's reset: %v", err)
		}
		if err := s.UseRecoveryCode(ctx, "bob", bobCodes[0]); err != nil {
			t.Errorf("bob's code after alice's reset: %v", err)
		}

		if err := s.ResetSecondFactors(ctx, "nobody"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("reset of a missing user = %v, want ErrNotFound", err)
		}
		if _, err := s.Factors(ctx, "not a name"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("Factors of an impossible name = %v, want ErrNotFound", err)
		}
	})
}
