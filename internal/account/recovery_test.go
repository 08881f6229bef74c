package account_test

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
	"github.com/sessionguard/sessionguard/session/sessiontest"
)

var recoveryCodeForm = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)

func TestRecoveryCodes(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		s := newStore(t, db, sessiontest.NewClock(start))
		newUser(t, s, "alice")
		newUser(t, s, "bob")

		if f, err := s.Factors(ctx, "alice"); err != nil || f.RecoveryCodesLeft != 0 {
			t.Errorf("Factors before any codes = %+v, %v", f, err)
		}
		if err := s.UseRecoveryCode(ctx, "alice", "0000-0000-0000-0000"); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("UseRecoveryCode with no codes = %v, want ErrWrongCode", err)
		}

		codes, err := s.NewRecoveryCodes(ctx, "Alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) != account.RecoveryCodeCount {
			t.Fatalf("%d codes, want %d", len(codes), account.RecoveryCodeCount)
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if !recoveryCodeForm.MatchString(c) || seen[c] {
				t.Errorf("code %q is malformed or repeated", c)
			}
			seen[c] = true
		}
		bobCodes, err := s.NewRecoveryCodes(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}

		// Only hashes are stored.
		rows, err := db.QueryContext(ctx, `SELECT code_hash FROM account_recovery_codes`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var h string
			rows.Scan(&h)
			for _, c := range append(codes, bobCodes...) {
				if strings.Contains(h, strings.ReplaceAll(c, "-", "")) {
					t.Errorf("a code is stored in clear: %q", h)
				}
			}
		}
		rows.Close()

		if err := s.UseRecoveryCode(ctx, "alice", codes[0]); err != nil {
			t.Fatalf("UseRecoveryCode: %v", err)
		}
		if err := s.UseRecoveryCode(ctx, "alice", codes[0]); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("used code = %v, want ErrWrongCode", err)
		}
		// As typed by a person: capitals, spaces, look-alike letters.
		typed := strings.ToUpper(strings.ReplaceAll(codes[1], "-", " "))
		typed = strings.NewReplacer("0", "O", "1", "l").Replace(typed)
		if err := s.UseRecoveryCode(ctx, "alice", typed); err != nil {
			t.Errorf("UseRecoveryCode(%q) for %q: %v", typed, codes[1], err)
		}
		if err := s.UseRecoveryCode(ctx, "alice", bobCodes[0]); !errors.Is(err, account.ErrWrongCode) {
			t.Errorf("another user's code = %v, want ErrWrongCode", err)
		}
		for _, bad := range []string{"", codes[2][:18], codes[2] + "a", strings.Replace(codes[2], "-", "u", 1)} {
			if err := s.UseRecoveryCode(ctx, "alice", bad); !errors.Is(err, account.ErrWrongCode) {
				t.Errorf("UseRecoveryCode(%q) = %v, want ErrWrongCode", bad, err)
			}
		}
		if f, _ := s.Factors(ctx, "alice"); f.RecoveryCodesLeft != account.RecoveryCodeCount-2 || f.TOTP {
			t.Errorf("Factors after using two = %+v", f)
		}

		// Regeneration replaces every code, used or not.
		fresh, err := s.NewRecoveryCodes(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codes[2:] {
			if err := s.UseRecoveryCode(ctx, "alice", c); !errors.Is(err, account.ErrWrongCode) {
				t.Errorf("code from before regeneration = %v, want ErrWrongCode", err)
			}
		}
		if err := s.UseRecoveryCode(ctx, "alice", fresh[9]); err != nil {
			t.Errorf("new code: %v", err)
		}
		if f, _ := s.Factors(ctx, "alice"); f.RecoveryCodesLeft != account.RecoveryCodeCount-1 {
			t.Errorf("Factors after regeneration and one use = %+v", f)
		}
		if f, _ := s.Factors(ctx, "bob"); f.RecoveryCodesLeft != account.RecoveryCodeCount {
			t.Errorf("bob's codes changed with alice's: %+v", f)
		}

		if _, err := s.NewRecoveryCodes(ctx, "nobody"); !errors.Is(err, account.ErrNotFound) {
			t.Errorf("NewRecoveryCodes for a missing user = %v, want ErrNotFound", err)
		}
	})
}

// Of concurrent uses of one code, exactly one succeeds: on one Store, and on
// two Stores (two processes) sharing a SQLite file.
func TestRecoveryCodeConcurrentUse(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db, sessiontest.NewClock(start))
		newUser(t, s, "alice")
		codes, err := s.NewRecoveryCodes(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codes[:3] {
			raceOnce(t, "UseRecoveryCode", []*account.Store{s}, func(s *account.Store) error {
				return s.UseRecoveryCode(t.Context(), "alice", c)
			})
		}
	})
	t.Run("two stores on one SQLite file", func(t *testing.T) {
		stores := twoStores(t, sessiontest.NewClock(start))
		newUser(t, stores[0], "alice")
		codes, err := stores[1].NewRecoveryCodes(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codes[:3] {
			raceOnce(t, "UseRecoveryCode", stores, func(s *account.Store) error {
				return s.UseRecoveryCode(t.Context(), "alice", c)
			})
		}
	})
}

// Two regenerations at once leave one set of ten codes.
func TestRecoveryCodesConcurrentRegeneration(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		s := newStore(t, db, sessiontest.NewClock(start))
		newUser(t, s, "alice")
		const n = 4
		sets := make([][]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { sets[i], errs[i] = s.NewRecoveryCodes(t.Context(), "alice") })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.Factors(t.Context(), "alice"); f.RecoveryCodesLeft != account.RecoveryCodeCount {
			t.Errorf("%d codes left after concurrent regenerations, want %d", f.RecoveryCodesLeft, account.RecoveryCodeCount)
		}
		valid := 0
		for _, set := range sets {
			if s.UseRecoveryCode(t.Context(), "alice", set[0]) == nil {
				valid++
			}
		}
		if valid != 1 {
			t.Errorf("%d sets of codes are valid, want 1", valid)
		}
	})
}
