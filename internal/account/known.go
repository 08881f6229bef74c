package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// A known client is one that has signed in to an account before: a device
// that kept the random token RememberClient gave it (in a cookie) and
// presents it again (Attempt.Device), or an address (an IPv6 client's /64)
// a sign-in came from. A lock on the user name, which anyone can cause by
// failing on purpose, does not hold back the account's known clients:
//
//   - From a known device, an attempt counts against that device alone
//     (ScopeDevice). This is OWASP's "device cookie" defence against
//     account lockout: a stolen cookie buys its thief no more guesses than
//     the name's own limit, and for this one account.
//   - From a known address, an attempt counts against the address, as every
//     attempt from it does (ScopeIP), and against the pair of name and
//     address (ScopeKnownAddress) instead of the name. A device cookie does
//     not survive an explicit sign-out (it sends Clear-Site-Data), so the
//     address is what lets someone who signed out sign in again from home
//     during an attack. Someone sharing the address (a NAT) gets the pair's
//     budget too, as large as the name's: at most twice the guesses, from
//     that network only.
//
// A stranger, from anywhere else, counts against the name and waits out its
// lock. docs/deployment.md ("Throttling") gives the reasoning.
//
// Device tokens are stored as their SHA-256 hash. Addresses are stored as
// they are, like the addresses of sessions and audit entries.

// KnownClientTTL is how long a device or an address stays known after its
// last successful sign-in: 90 days.
const KnownClientTTL = 90 * 24 * time.Hour

// maxKnownClients bounds the known devices, and separately the known
// addresses, of one user: the 20 used most recently stay known.
const maxKnownClients = 20

// The kinds of known clients, as stored.
const (
	knownDevice  = "device"
	knownAddress = "address"
)

// deviceTokenBytes is the size of a device token: 256 random bits, as
// unguessable as a session token.
const deviceTokenBytes = 32

var deviceEncoding = base64.RawURLEncoding.Strict()

// newDeviceToken returns a fresh device token: 43 base64url characters.
func newDeviceToken() string {
	var b [deviceTokenBytes]byte
	rand.Read(b[:]) // never fails; it crashes the program if the OS cannot supply randomness
	return deviceEncoding.EncodeToString(b[:])
}

// wellFormedDevice reports whether s has the form of a device token, so
// that anything else is dropped before a query.
func wellFormedDevice(s string) bool {
	if len(s) != deviceEncoding.EncodedLen(deviceTokenBytes) {
		return false
	}
	_, err := deviceEncoding.DecodeString(s)
	return err == nil
}

// deviceHash is the stored form of a device token.
func deviceHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// knownClient says which of an attempt's client identities the user knows.
type knownClient struct {
	device, address bool
}

// known looks up whether the device token and the address (AddressKey
// form, or empty) are known clients of the user name (normalised): remembered
// for them and used within KnownClientTTL.
func (a *Authenticator) known(ctx context.Context, name, device, address string) (knownClient, error) {
	var k knownClient
	if !wellFormedDevice(device) {
		device = ""
	}
	if device == "" && address == "" {
		return k, nil
	}
	db := a.store.db
	rows, err := db.QueryContext(ctx, db.Rebind(`SELECT kind FROM account_known_clients
		WHERE name = ? AND last_used > ? AND ((kind = ? AND client = ?) OR (kind = ? AND client = ?))`),
		name, a.opts.Clock().Add(-KnownClientTTL).UnixNano(), knownDevice, deviceHash(device), knownAddress, address)
	if err != nil {
		return k, fmt.Errorf("account: known clients: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		if err := rows.Scan(&kind); err != nil {
			return k, fmt.Errorf("account: known clients: %w", err)
		}
		switch kind {
		case knownDevice:
			k.device = device != ""
		case knownAddress:
			k.address = address != ""
		}
	}
	if err := rows.Err(); err != nil {
		return k, fmt.Errorf("account: known clients: %w", err)
	}
	return k, nil
}

// RememberClient makes the client of a successful sign-in (the at that
// Authenticate accepted) a known client of at.Name: its address at.IP, and
// its device. It returns the device token the client must present from now
// on (as Attempt.Device): at.Device itself when that is a known device of
// the user already, else a new one. A token presented but not known for
// this user is never adopted, so a token planted in someone's browser gains
// its planter nothing. Keep the token in a cookie that only the sign-in form
// receives (HttpOnly, Secure, SameSite=Strict) for KnownClientTTL.
//
// A failure (a database error) costs the user nothing but this defence, so
// a caller may log it and sign them in all the same.
func (a *Authenticator) RememberClient(ctx context.Context, at Attempt) (string, error) {
	name, err := NormalizeName(at.Name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	address := ""
	if at.IP != "" {
		address = AddressKey(at.IP)
	}
	known, err := a.known(ctx, name, at.Device, "")
	if err != nil {
		return "", err
	}
	token := at.Device
	if !known.device {
		token = newDeviceToken()
	}
	db := a.store.db
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("account: remember client: %w", err)
	}
	defer tx.Rollback()
	now := a.opts.Clock().UnixNano()
	clients := [][2]string{{knownDevice, deviceHash(token)}} // kind, client; in one order, so transactions never deadlock
	if address != "" {
		clients = append(clients, [2]string{knownAddress, address})
	}
	for _, c := range clients {
		kind, client := c[0], c[1]
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO account_known_clients (name, kind, client, last_used) VALUES (?, ?, ?, ?)
			ON CONFLICT (name, kind, client) DO UPDATE SET last_used = excluded.last_used`),
			name, kind, client, now); err != nil {
			return "", fmt.Errorf("account: remember client: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM account_known_clients WHERE name = ? AND kind = ? AND client NOT IN (
			SELECT client FROM account_known_clients WHERE name = ? AND kind = ? ORDER BY last_used DESC, client LIMIT ?)`),
			name, kind, name, kind, maxKnownClients); err != nil {
			return "", fmt.Errorf("account: remember client: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("account: remember client: %w", err)
	}
	return token, nil
}
