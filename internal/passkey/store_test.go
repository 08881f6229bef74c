package passkey

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestStore(t *testing.T, db *sqldb.DB) (*Store, *clock) {
	t.Helper()
	c := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg, err := ConfigFromURL("https://login.example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(t.Context(), db, cfg, Options{Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// addCredential stores a credential as FinishRegistration would.
func addCredential(t *testing.T, s *Store, user, name string, id byte, backupEligible bool, count uint32) Credential {
	t.Helper()
	if _, err := s.handle(t.Context(), user, true); err != nil {
		t.Fatal(err)
	}
	flags := protocol.FlagUserPresent | protocol.FlagUserVerified
	if backupEligible {
		flags |= protocol.FlagBackupEligible
	}
	c, err := s.insert(t.Context(), user, name, &webauthn.Credential{
		ID:            []byte{id, 1, 2, 3},
		PublicKey:     []byte("public key"),
		Transport:     []protocol.AuthenticatorTransport{protocol.Internal, protocol.Hybrid},
		Flags:         webauthn.NewCredentialFlags(flags),
		Authenticator: webauthn.Authenticator{SignCount: count, AAGUID: []byte("0123456789abcdef")},
	}, s.opts.Clock())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStore(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		s, clk := newTestStore(t, db)

		if n, err := s.Count(ctx, "alice"); err != nil || n != 0 {
			t.Fatalf("Count before any = %d, %v", n, err)
		}
		a1 := addCredential(t, s, "alice", "Laptop", 1, false, 0)
		clk.Add(time.Second)
		a2 := addCredential(t, s, "alice", "Phone", 2, true, 0)
		addCredential(t, s, "bob", "Key", 3, false, 0)

		if a1.User != "alice" || a1.Name != "Laptop" || a1.AAGUID != "30313233-3435-3637-3839-616263646566" ||
			strings.Join(a1.Transports, ",") != "internal,hybrid" || !a1.UserVerified || a1.BackupEligible ||
			!a1.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || !a1.LastUsedAt.IsZero() || a1.ID != "AQECAw" {
			t.Errorf("stored credential = %+v", a1)
		}
		list, err := s.List(ctx, "alice")
		if err != nil || len(list) != 2 || list[0].ID != a1.ID || list[1].ID != a2.ID || !list[1].BackupEligible {
			t.Fatalf("List(alice) = %+v, %v", list, err)
		}

		// The same authenticator cannot be registered twice.
		if _, err := s.insert(ctx, "bob", "again", &webauthn.Credential{ID: []byte{1, 1, 2, 3}, PublicKey: []byte("k")}, clk.Now()); !errors.Is(err, ErrRejected) {
			t.Errorf("inserting a known credential ID = %v, want ErrRejected", err)
		}

		if err := s.Rename(ctx, "alice", a1.ID, "  Work laptop "); err != nil {
			t.Fatal(err)
		}
		if err := s.Rename(ctx, "alice", a2.ID, ""); err != nil {
			t.Fatal(err)
		}
		list, _ = s.List(ctx, "alice")
		if list[0].Name != "Work laptop" || list[1].Name != DefaultName {
			t.Errorf("names after Rename = %q, %q", list[0].Name, list[1].Name)
		}
		for _, bad := range []string{strings.Repeat("x", MaxNameLength+1), "tab\there", "bell\a"} {
			if err := s.Rename(ctx, "alice", a1.ID, bad); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Rename to %q = %v, want ErrInvalidName", bad, err)
			}
		}
		if err := s.Rename(ctx, "alice", strings.Repeat("é", MaxNameLength), "ok"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Rename with a malformed ID = %v, want ErrNotFound", err)
		}
		// One user cannot touch another's passkeys.
		if err := s.Rename(ctx, "bob", a1.ID, "mine"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Rename of alice's passkey by bob = %v, want ErrNotFound", err)
		}
		if err := s.Remove(ctx, "bob", a1.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove of alice's passkey by bob = %v, want ErrNotFound", err)
		}

		if err := s.Remove(ctx, "alice", a1.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, "alice", a1.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Remove = %v, want ErrNotFound", err)
		}
		if n, _ := s.Count(ctx, "alice"); n != 1 {
			t.Errorf("Count after Remove = %d, want 1", n)
		}

		hBefore, _ := s.handle(ctx, "alice", false)
		if n, err := s.RemoveAll(ctx, "alice"); err != nil || n != 1 {
			t.Fatalf("RemoveAll = %d, %v; want 1", n, err)
		}
		if h, _ := s.handle(ctx, "alice", false); h != nil {
			t.Error("RemoveAll left the user handle")
		}
		if n, err := s.RemoveAll(ctx, "alice"); err != nil || n != 0 {
			t.Errorf("RemoveAll of nothing = %d, %v", n, err)
		}
		hAfter, _ := s.handle(ctx, "alice", true)
		if string(hAfter) == string(hBefore) || len(hAfter) != 32 {
			t.Error("a new registration after RemoveAll reuses the old user handle")
		}
		if n, _ := s.Count(ctx, "bob"); n != 1 {
			t.Errorf("RemoveAll(alice) touched bob's passkeys: %d left", n)
		}
	})
}

func TestSignCount(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		s, clk := newTestStore(t, db)
		device := addCredential(t, s, "alice", "key", 1, false, 5)
		synced := addCredential(t, s, "alice", "synced", 2, true, 5)
		counterless := addCredential(t, s, "alice", "no counter", 3, false, 0)
		id := func(c Credential) []byte { raw, _ := decodeID(c.ID); return raw }

		steps := []struct {
			what  string
			cred  Credential
			count uint32
			want  error
		}{
			{"device key, counter grows", device, 6, nil},
			{"device key, same counter", device, 6, ErrCloned},
			{"device key, counter goes back", device, 3, ErrCloned},
			{"device key, counter grows again", device, 9, nil},
			{"synced passkey, counter goes back", synced, 1, nil},
			{"synced passkey, counter grows", synced, 8, nil},
			{"authenticator without counter", counterless, 0, nil},
			{"authenticator without counter, again", counterless, 0, nil},
			{"authenticator without counter, starts one", counterless, 1, nil},
			{"authenticator that had a counter, now zero", counterless, 0, ErrCloned},
		}
		for _, st := range steps {
			clk.Add(time.Minute)
			err := s.recordUse(ctx, "alice", id(st.cred), st.cred.BackupEligible, false, st.count, clk.Now())
			if !errors.Is(err, st.want) || (st.want == nil && err != nil) {
				t.Errorf("%s: recordUse(%d) = %v, want %v", st.what, st.count, err, st.want)
			}
		}
		list, _ := s.List(ctx, "alice")
		if list[0].SignCount != 9 || list[1].SignCount != 8 || list[2].SignCount != 1 {
			t.Errorf("counters = %d, %d, %d; want 9, 8, 1", list[0].SignCount, list[1].SignCount, list[2].SignCount)
		}
		if !list[0].LastUsedAt.Equal(clk.Now().Add(-6 * time.Minute)) {
			t.Errorf("device key's LastUsedAt = %v, want the time of its last accepted use", list[0].LastUsedAt)
		}

		if err := s.recordUse(ctx, "bob", id(device), false, false, 100, clk.Now()); !errors.Is(err, ErrRejected) {
			t.Errorf("recordUse for another user = %v, want ErrRejected", err)
		}

		// Of concurrent uses with the same counter (one answer replayed
		// to two processes), one passes.
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for range 8 {
			wg.Go(func() { results <- s.recordUse(ctx, "alice", id(device), false, false, 20, clk.Now()) })
		}
		wg.Wait()
		close(results)
		ok := 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrCloned):
				t.Errorf("concurrent recordUse: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d concurrent uses of one counter value passed, want 1", ok)
		}
	})
}

func TestState(t *testing.T) {
	sqldbtest.Run(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		s, clk := newTestStore(t, db)

		options, regState, err := s.BeginRegistration(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		var opts struct {
			PublicKey struct {
				RP                     struct{ ID, Name string }
				User                   struct{ Name string }
				AuthenticatorSelection struct{ ResidentKey, UserVerification string }
				Challenge              string
			}
		}
		if err := json.Unmarshal(options, &opts); err != nil {
			t.Fatalf("options %s: %v", options, err)
		}
		pk := opts.PublicKey
		if pk.RP.ID != "login.example.com" || pk.RP.Name != "sessionguard" || pk.User.Name != "alice" ||
			pk.AuthenticatorSelection.ResidentKey != "required" || pk.AuthenticatorSelection.UserVerification != "preferred" || pk.Challenge == "" {
			t.Errorf("creation options = %s", options)
		}

		if _, _, err := s.BeginLogin(ctx, "alice"); !errors.Is(err, ErrNoPasskeys) {
			t.Errorf("BeginLogin for a user without passkeys = %v, want ErrNoPasskeys", err)
		}
		addCredential(t, s, "alice", "key", 1, false, 0)
		options, loginState, err := s.BeginLogin(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(options), `"userVerification":"preferred"`) || !strings.Contains(string(options), `"allowCredentials":[{`) {
			t.Errorf("second-factor options = %s", options)
		}
		options, anyState, err := s.BeginLogin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(options), `"userVerification":"required"`) || strings.Contains(string(options), `allowCredentials`) {
			t.Errorf("passwordless options = %s", options)
		}

		body := []byte(`{}`)
		// A state is good for its own ceremony only, and for its user.
		if _, _, err := s.FinishLogin(ctx, regState, body); !errors.Is(err, ErrBadState) {
			t.Errorf("FinishLogin with a registration state = %v, want ErrBadState", err)
		}
		if _, err := s.FinishRegistration(ctx, "alice", "", loginState, body); !errors.Is(err, ErrBadState) {
			t.Errorf("FinishRegistration with a sign-in state = %v, want ErrBadState", err)
		}
		if _, err := s.FinishRegistration(ctx, "bob", "", regState, body); !errors.Is(err, ErrBadState) {
			t.Errorf("FinishRegistration with alice's state for bob = %v, want ErrBadState", err)
		}
		for _, junk := range [][]byte{nil, []byte("{"), []byte(`{"ceremony":"passwordless"}`)} {
			if _, _, err := s.FinishLogin(ctx, junk, body); !errors.Is(err, ErrBadState) {
				t.Errorf("FinishLogin with state %q = %v, want ErrBadState", junk, err)
			}
		}
		if _, err := s.FinishRegistration(ctx, "alice", strings.Repeat("x", 100), regState, body); !errors.Is(err, ErrInvalidName) {
			t.Errorf("FinishRegistration with a long name = %v, want ErrInvalidName", err)
		}

		// A state is used once, whatever the answer.
		if _, _, err := s.FinishLogin(ctx, loginState, body); !errors.Is(err, ErrRejected) {
			t.Errorf("FinishLogin with a junk answer = %v, want ErrRejected", err)
		}
		if _, _, err := s.FinishLogin(ctx, loginState, body); !errors.Is(err, ErrBadState) {
			t.Errorf("FinishLogin with a used state = %v, want ErrBadState", err)
		}
		// Another Store on the same database (another process) agrees.
		other, err := NewStore(ctx, db, s.Config(), Options{Clock: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := other.FinishLogin(ctx, loginState, body); !errors.Is(err, ErrBadState) {
			t.Errorf("FinishLogin with a used state on another Store = %v, want ErrBadState", err)
		}

		// The registration state survived the refusals above (none of them
		// got as far as using it), and expires.
		clk.Add(5*time.Minute - time.Nanosecond)
		if _, err := s.FinishRegistration(ctx, "alice", "", regState, body); !errors.Is(err, ErrRejected) {
			t.Errorf("FinishRegistration just before expiry = %v, want ErrRejected (the answer is junk)", err)
		}
		clk.Add(time.Nanosecond)
		if _, _, err := s.FinishLogin(ctx, anyState, body); !errors.Is(err, ErrStateExpired) {
			t.Errorf("FinishLogin after 5 minutes = %v, want ErrStateExpired", err)
		}
	})
}

func TestNewStoreChecksConfig(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	for _, cfg := range []Config{
		{RPID: "example.com"},
		{RPID: "", Origins: []string{"https://example.com"}},
		{RPID: "127.0.0.1", Origins: []string{"https://127.0.0.1"}},
	} {
		if _, err := NewStore(t.Context(), db, cfg, Options{}); err == nil {
			t.Errorf("NewStore(%+v) accepted it", cfg)
		}
	}
	if _, err := NewStore(t.Context(), db, Config{RPID: "example.com", Origins: []string{"https://example.com"}}, Options{StateTTL: -1}); err == nil {
		t.Error("NewStore accepted a negative StateTTL")
	}
}

func TestConfigFromURL(t *testing.T) {
	tests := []struct {
		url, cookieDomain string
		rpID, origin      string // rpID "" for an error
	}{
		{"https://login.example.com", "", "login.example.com", "https://login.example.com"},
		{"https://Login.Example.com:443/sub/path", "", "login.example.com", "https://login.example.com"},
		{"https://login.example.com:8443/", "", "login.example.com", "https://login.example.com:8443"},
		{"https://login.example.com", ".example.com", "example.com", "https://login.example.com"},
		{"https://login.example.com", "login.example.com", "login.example.com", "https://login.example.com"},
		{"http://localhost:8080", "", "localhost", "http://localhost:8080"},
		{"http://app.localhost", "", "app.localhost", "http://app.localhost"},
		{"https://login.example.com", "other.com", "", ""},
		{"https://login.example.com", "ample.com", "", ""},
		{"http://login.example.com", "", "", ""},
		{"https://127.0.0.1:8080", "", "", ""},
		{"http://[::1]:8080", "", "", ""},
		{"login.example.com", "", "", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		cfg, err := ConfigFromURL(tt.url, tt.cookieDomain)
		switch {
		case tt.rpID == "" && err == nil:
			t.Errorf("ConfigFromURL(%q, %q) = %+v, want an error", tt.url, tt.cookieDomain, cfg)
		case tt.rpID != "" && err != nil:
			t.Errorf("ConfigFromURL(%q, %q): %v", tt.url, tt.cookieDomain, err)
		case tt.rpID != "" && (cfg.RPID != tt.rpID || len(cfg.Origins) != 1 || cfg.Origins[0] != tt.origin || cfg.RPDisplayName != "sessionguard"):
			t.Errorf("ConfigFromURL(%q, %q) = %+v, want RPID %s, origin %s", tt.url, tt.cookieDomain, cfg, tt.rpID, tt.origin)
		}
	}
}

// A Store without a relying party still knows who has passkeys, so that a
// server where browsers offer none does not take a passkey user for one
// without a second factor, but it runs no ceremony.
func TestStoreWithoutRelyingParty(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	ctx := t.Context()
	full, _ := newTestStore(t, db)
	addCredential(t, full, "alice", "Laptop", 1, false, 0)

	off, err := NewStore(ctx, db, Config{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if off.CeremoniesOn() || !full.CeremoniesOn() {
		t.Errorf("CeremoniesOn: without a relying party %v, with one %v", off.CeremoniesOn(), full.CeremoniesOn())
	}
	if n, err := off.Count(ctx, "alice"); err != nil || n != 1 {
		t.Errorf("Count(alice) without a relying party = %d, %v, want 1", n, err)
	}
	if _, _, err := off.BeginLogin(ctx, "alice"); !errors.Is(err, ErrCeremoniesOff) {
		t.Errorf("BeginLogin = %v, want ErrCeremoniesOff", err)
	}
	if _, _, err := off.BeginRegistration(ctx, "alice"); !errors.Is(err, ErrCeremoniesOff) {
		t.Errorf("BeginRegistration = %v, want ErrCeremoniesOff", err)
	}
	if _, _, err := off.FinishLogin(ctx, []byte("{}"), []byte("{}")); !errors.Is(err, ErrCeremoniesOff) {
		t.Errorf("FinishLogin = %v, want ErrCeremoniesOff", err)
	}
	if n, err := off.RemoveAll(ctx, "alice"); err != nil || n != 1 {
		t.Errorf("RemoveAll(alice) = %d, %v, want 1", n, err)
	}
}
