package drafts

import (
	"strings"
	"unicode"
)

// Sensitive reports whether a form field holds a secret that a draft must
// never keep: a password, PIN, card number, card security code, one-time
// code, token or other secret. Save drops such fields, whatever the client
// sent, so the rule does not depend on the browser script filtering them.
//
// name is the field's name; marks is what the page says of the field, as
// tokens separated by spaces (Draft.Marks): "password" for an input of type
// password, the tokens of its autocomplete attribute, and "sensitive" for a
// field marked data-sessionguard-sensitive. Both are compared without
// regard to case.
//
// A field is sensitive when
//
//   - a mark is "password" or "sensitive", an autocomplete token for
//     secrets ("current-password", "new-password", "one-time-code") or for
//     a payment card ("cc-number", "cc-csc", and every other "cc-" token);
//   - or its name, without separators, contains an unambiguous stem:
//     "password", "passwd", "passphrase", "passcode", "cardnum" (card
//     number), "creditcard", "securitycode", "onetimecode", "cvv" or "cvc";
//   - or a word of its name, or two or three adjacent words written
//     together, is a secret's word: "pass", "pwd", "pin", "pincode",
//     "pinnumber", "newpin" (and "oldpin", "currentpin"...), "csc",
//     "otp", "totp", "hotp", "mfa", "2fa", "ccnum", "ccnumber", "ccno",
//     "cardno", "apikey", "privatekey", "authcode", "verificationcode",
//     "credential", "credentials"; or it ends in "pwd", "token", "tokens",
//     "secret" or "secrets" ("csrftoken", "clientsecret").
//
// Words are split at anything that is not a letter or digit, at a change
// from lower to upper case, and between letters and digits, so "newPin",
// "new_pin", "pin2" and "PIN" are all sensitive while "spinner", "opinion",
// "pinned", "passport", "compass" and "secretary" are not.
func Sensitive(name, marks string) bool {
	for mark := range strings.FieldsSeq(strings.ToLower(marks)) {
		if sensitiveMarks[mark] || strings.HasPrefix(mark, "cc-") {
			return true
		}
	}
	var joined strings.Builder
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			joined.WriteRune(unicode.ToLower(r))
		}
	}
	for _, stem := range sensitiveStems {
		if strings.Contains(joined.String(), stem) {
			return true
		}
	}
	words := nameWords(name)
	for i := range words {
		for n := 1; n <= 3 && i+n <= len(words); n++ {
			w := strings.Join(words[i:i+n], "")
			if sensitiveWords[w] {
				return true
			}
			for _, suffix := range sensitiveSuffixes {
				if strings.HasSuffix(w, suffix) {
					return true
				}
			}
		}
	}
	return false
}

// sensitiveMarks are the marks, besides every "cc-" autocomplete token,
// that make a field sensitive.
var sensitiveMarks = map[string]bool{
	"password": true, "sensitive": true,
	"current-password": true, "new-password": true, "one-time-code": true,
}

// sensitiveStems are found anywhere in a name: no innocent word contains
// them.
var sensitiveStems = []string{
	"password", "passwd", "passphrase", "passcode", "cardnum", "creditcard", "securitycode", "onetimecode", "cvv", "cvc",
}

// sensitiveWords must be a whole word of a name, or two or three words
// written together: as parts of longer words they are innocent ("spin",
// "bypass", "accnum" for an account number).
var sensitiveWords = map[string]bool{
	"pass": true, "pwd": true, "csc": true,
	"pin": true, "pincode": true, "pinnumber": true, "pinno": true,
	"newpin": true, "oldpin": true, "currentpin": true, "confirmpin": true, "userpin": true, "cardpin": true,
	"otp": true, "totp": true, "hotp": true, "mfa": true, "2fa": true,
	"ccnum": true, "ccnumber": true, "ccno": true, "cardno": true,
	"apikey": true, "privatekey": true, "authcode": true, "verificationcode": true,
	"credential": true, "credentials": true,
}

// sensitiveSuffixes end sensitive words, and no innocent one.
var sensitiveSuffixes = []string{"pwd", "token", "tokens", "secret", "secrets"}

// nameWords splits a field name into lower-case words: at every character
// that is not a letter or digit, where lower case turns to upper case
// ("newPin"), and between letters and digits ("pin2").
func nameWords(name string) []string {
	var words []string
	var word []rune
	flush := func() {
		if len(word) > 0 {
			words = append(words, strings.ToLower(string(word)))
			word = word[:0]
		}
	}
	var prev rune
	for _, r := range name {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case len(word) > 0 && (unicode.IsUpper(r) && unicode.IsLower(prev) ||
			unicode.IsDigit(r) != unicode.IsDigit(prev)):
			flush()
			word = append(word, r)
		default:
			word = append(word, r)
		}
		prev = r
	}
	flush()
	return words
}
