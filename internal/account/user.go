package account

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by the Store and the Authenticator. Test for them with
// errors.Is: most are returned wrapped, with details.
var (
	// ErrNotFound: no user has that name.
	ErrNotFound = errors.New("account: no such user")
	// ErrExists: a user with that name exists already.
	ErrExists = errors.New("account: user already exists")
	// ErrInvalidName: the name breaks the rules of NormalizeName. The
	// wrapping error says how, in words fit to show the person who typed it.
	ErrInvalidName = errors.New("account: invalid user name")
	// ErrInvalidRole: the role is neither RoleAdmin nor RoleUser.
	ErrInvalidRole = errors.New("account: invalid role")
	// ErrWeakPassword: the password breaks the policy of CheckPassword. The
	// wrapping error says how, in words fit to show the person who chose it.
	ErrWeakPassword = errors.New("account: password does not meet the policy")
	// ErrLastAdmin: the change would leave no enabled administrator.
	ErrLastAdmin = errors.New("account: this is the last enabled administrator")
	// ErrAccountsExist: CreateFirstAdmin was called on a database that
	// already has an account.
	ErrAccountsExist = errors.New("account: accounts exist already; the first administrator has been created")
)

// inputError is a refusal of something a person typed. Its message is written
// for that person; it matches its kind with errors.Is.
type inputError struct {
	kind error
	msg  string
}

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == e.kind }

func invalidName(format string, args ...any) error {
	return &inputError{ErrInvalidName, fmt.Sprintf(format, args...)}
}

// Role is what a user may do.
type Role string

// The roles.
const (
	// RoleAdmin manages users and sessions.
	RoleAdmin Role = "admin"
	// RoleUser uses the application.
	RoleUser Role = "user"
)

// Valid reports whether r is RoleAdmin or RoleUser.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleUser }

// ParseRole returns the role named s ("admin" or "user").
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("%w %q: use %q or %q", ErrInvalidRole, s, RoleAdmin, RoleUser)
}

// User is an account as the rest of the server sees it; the password hash
// never leaves this package.
type User struct {
	// Name identifies the user, in lower case (see NormalizeName). It never
	// changes, and is the UserID of the user's sessions.
	Name string
	// Role is what the user may do.
	Role Role
	// Disabled users cannot sign in.
	Disabled bool
	// CreatedAt is when the account was created, in UTC.
	CreatedAt time.Time
	// PasswordChangedAt is when the password was last set, in UTC; sessions
	// authenticated before it predate the current password.
	PasswordChangedAt time.Time
}

// IsAdmin reports whether u is an administrator.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// MaxNameLength is the length limit of user names, in characters.
const MaxNameLength = 64

// NormalizeName returns name in the form it is stored and compared in: lower
// case. It returns an error wrapping ErrInvalidName unless name has 1 to
// MaxNameLength characters, all ASCII letters, digits or . _ - @, the first a
// letter or a digit (so a name cannot pass for a command-line flag).
func NormalizeName(name string) (string, error) {
	switch {
	case name == "":
		return "", invalidName("user name is empty")
	case len(name) > MaxNameLength:
		return "", invalidName("user name is longer than %d characters", MaxNameLength)
	}
	for i := range len(name) {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i == 0:
			return "", invalidName("user name must start with a letter or a digit")
		case c == '.', c == '_', c == '-', c == '@':
		default:
			return "", invalidName("user name may hold only letters a-z, digits and . _ - @")
		}
	}
	return strings.ToLower(name), nil
}
