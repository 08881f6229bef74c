package drafts

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/sqldb"
	"github.com/sessionguard/sessionguard/internal/sqldb/sqldbtest"
)

func TestSensitiveNames(t *testing.T) {
	secret := []string{
		"password", "Password", "PASSWORD", "new_password", "newPassword", "confirm-password", "password2",
		"user[password]", "passwordConfirmation", "currentpassword", "passwd", "pwd", "newPwd", "old_pwd", "confirmpwd",
		"pass", "pass1", "user_pass", "passphrase", "passcode",
		"pin", "PIN", "pin2", "newPin", "new_pin", "userPIN", "pincode", "PINCode", "pin-code",
		"newpin", "NEWPIN", "pin_number", "pinnumber",
		"cvc", "cvv", "cvv2", "CVC2", "card_cvc", "cardCvv", "csc", "card-csc",
		"cardnumber", "card_number", "cardNumber", "card-number", "card_num", "cardNo", "card_no",
		"cc-number", "ccnumber", "cc_num", "ccnum", "ccNo", "creditcard", "credit_card_number", "CreditCard",
		"security_code", "securityCode", "otp", "OTP", "otp_code", "totp", "one_time_code", "oneTimeCode",
		"onetimepassword", "mfa", "mfa_code", "2fa", "2fa_code",
		"secret", "client_secret", "clientSecret", "secret_answer", "token", "csrf_token", "csrftoken",
		"authToken", "access-token", "tokens", "api_key", "apiKey", "private_key", "auth_code", "verification_code",
		"credentials",
	}
	ordinary := []string{
		"note", "spinner", "opinion", "pinned", "pineapple", "ping", "shipping", "spin", "passport", "compass",
		"bypass", "passenger", "secretary", "tokenizer", "description", "cardholder", "card_holder_name",
		"account_number", "acc_num", "accnum", "postcode", "zip_code", "promo_code", "discount-code", "code",
		"email", "username", "name", "title", "comment", "message", "subject", "address", "phone", "pinyin",
		"option", "topic", "",
	}
	for _, name := range secret {
		if !Sensitive(name, "") {
			t.Errorf("Sensitive(%q) = false, want true", name)
		}
	}
	for _, name := range ordinary {
		if Sensitive(name, "") {
			t.Errorf("Sensitive(%q) = true, want false", name)
		}
	}
}

func TestSensitiveMarks(t *testing.T) {
	for _, tc := range []struct {
		marks string
		want  bool
	}{
		{"", false},
		{"email", false},
		{"shipping street-address", false},
		{"password", true},
		{"sensitive", true},
		{"SENSITIVE", true},
		{"current-password", true},
		{"new-password", true},
		{"username new-password", true},
		{"one-time-code", true},
		{"cc-number", true},
		{"billing cc-number", true},
		{"section-pay cc-csc", true},
		{"cc-exp", true},
		{"cc-name", true},
		{"acc-number", false},
	} {
		if got := Sensitive("field", tc.marks); got != tc.want {
			t.Errorf("Sensitive(field, %q) = %v, want %v", tc.marks, got, tc.want)
		}
	}
}

// The server drops secret fields itself: a client that sends them, with or
// without marks, gets them back neither from the POST nor later.
func TestHandlerDropsSensitiveFields(t *testing.T) {
	s, _ := newStore(t, sqldbtest.Open(t, sqldb.SQLite), Options{})
	h := Handler(s, headerUser)
	body := `{"form":"pay","path":"/checkout","fields":{
		"note":"deliver after six","address":"1 Main St","spinner":"3",
		"password":"hunter2","new_pin":"1234","cardNumber":"4111111111111111","cvc":"123",
		"security_code":"999","answer":"my first pet","code":"483920","holder":"A. Person"},
		"marks":{"answer":"sensitive","code":"one-time-code","holder":"billing cc-name","address":"street-address"}}`
	w := call(h, "POST", "/auth/drafts", "alice", "application/json", body)
	if w.Code != http.StatusOK {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	want := []string{"address", "note", "spinner"}
	var saved draftJSON
	if err := json.Unmarshal(w.Body.Bytes(), &saved); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(saved.Fields)); !slices.Equal(got, want) {
		t.Errorf("POST answered the fields %q, want %q", got, want)
	}
	if saved.Marks != nil {
		t.Errorf("POST answered marks %v; they are not stored", saved.Marks)
	}

	list, err := s.Load(t.Context(), "alice", "/checkout")
	if err != nil || len(list) != 1 {
		t.Fatalf("Load: %v, %v", list, err)
	}
	if got := slices.Sorted(maps.Keys(list[0].Fields)); !slices.Equal(got, want) {
		t.Errorf("stored fields %q, want %q", got, want)
	}
	if list[0].Fields["note"] != "deliver after six" {
		t.Errorf("note stored as %q", list[0].Fields["note"])
	}
	var raw string
	if err := s.db.QueryRowContext(t.Context(), `SELECT fields FROM drafts`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "1234", "4111", "\"123\"", "999", "first pet", "483920", "A. Person"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the database holds %q: %s", secret, raw)
		}
	}
}

// FuzzSensitive checks the rule's invariants on any name: it never panics,
// a name in one case is judged as in the other, and a field marked
// sensitive, or whose name starts with "password", is always sensitive.
func FuzzSensitive(f *testing.F) {
	for _, seed := range []string{"password", "newPin", "spinner", "cc-number", "card_no", "PINCode", "x\x00y", "\xff", "ÄÖpin"} {
		f.Add(seed, "")
	}
	f.Add("answer", "billing cc-csc")
	f.Fuzz(func(t *testing.T, name, marks string) {
		got := Sensitive(name, marks)
		if isASCII(name) && Sensitive(strings.ToLower(name), marks) != Sensitive(strings.ToUpper(name), marks) {
			t.Errorf("%q lower and upper case are judged differently", name)
		}
		if isASCII(marks) && got != Sensitive(name, strings.ToUpper(marks)) {
			t.Errorf("marks %q in upper case are judged differently", marks)
		}
		if !Sensitive(name, marks+" sensitive") || !Sensitive("password_"+name, marks) {
			t.Errorf("%q with a sensitive mark or a password prefix is not sensitive", name)
		}
	})
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
