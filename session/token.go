package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// tokenBytes is the size of a session token's secret: 256 bits, twice what
// OWASP and ASVS 5.0 ask for.
const tokenBytes = 32

// tokenLen is the length of a token as it travels in the cookie: the unpadded
// base64url encoding of tokenBytes.
const tokenLen = 43

// TokenHash is the SHA-256 hash of a session token: the only form in which a
// token is stored or compared.
type TokenHash [sha256.Size]byte

// String returns the hash in unpadded base64url, for stores that keep text.
func (h TokenHash) String() string { return base64.RawURLEncoding.EncodeToString(h[:]) }

var tokenEncoding = base64.RawURLEncoding.Strict()

// newToken returns a fresh token and its hash.
func newToken() (string, TokenHash) {
	var b [tokenBytes]byte
	rand.Read(b[:]) // never fails; it crashes the program if the OS cannot supply randomness
	tok := tokenEncoding.EncodeToString(b[:])
	return tok, sha256.Sum256([]byte(tok))
}

// parseToken validates the form of a token taken from a request (exactly 43
// canonical base64url characters) and returns its hash. Anything else is
// rejected before it can reach a store.
func parseToken(s string) (TokenHash, bool) {
	if len(s) != tokenLen {
		return TokenHash{}, false
	}
	var text [tokenLen]byte // on the stack: no allocation per request
	copy(text[:], s)
	// The token's bytes are never needed, only its form, so check the
	// characters against the alphabet instead of decoding: it runs on
	// every request. Invalid characters have the high bit set.
	var seen byte
	for i := range text {
		seen |= tokenAlphabet[text[i]]
	}
	// 43 characters carry 258 bits for 256: the canonical encoding leaves
	// the last character's 2 low bits zero.
	if seen&0x80 != 0 || tokenAlphabet[text[tokenLen-1]]&3 != 0 {
		return TokenHash{}, false
	}
	return sha256.Sum256(text[:]), true
}

// tokenAlphabet maps each byte to its value in the base64url alphabet, and
// every other byte to 0xFF.
var tokenAlphabet = func() (values [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range values {
		values[i] = 0xFF
	}
	for i := range len(alphabet) {
		values[alphabet[i]] = byte(i)
	}
	return values
}()

// newPublicID returns a session's public ID: 128 random bits, independent of
// the token, so nothing about the token can be learned from it.
func newPublicID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
