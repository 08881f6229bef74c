package session

import (
	"fmt"
	"time"
)

// Policy holds the two timeouts of a session. It is chosen per session at
// login (by role, by "remember me", by how sensitive the application is) and
// stored with the session, so it survives restarts and is the same on every
// instance.
type Policy struct {
	// IdleTimeout ends the session after this long without activity.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends the session this long after the user last
	// authenticated, however active the session is.
	AbsoluteTimeout time.Duration
}

// DefaultPolicy is the policy of a Manager whose Config sets none: the seed's
// 30 minutes of inactivity, and 12 hours from login (NIST 800-63B AAL2).
var DefaultPolicy = Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}

// orDefaults returns p with each zero timeout taken from def, so that
// Policy{IdleTimeout: 5 * time.Minute} keeps def's absolute timeout.
func (p Policy) orDefaults(def Policy) Policy {
	if p.IdleTimeout == 0 {
		p.IdleTimeout = def.IdleTimeout
	}
	if p.AbsoluteTimeout == 0 {
		p.AbsoluteTimeout = def.AbsoluteTimeout
	}
	return p
}

// Validate reports whether both timeouts are positive and the idle timeout is
// no longer than the absolute one (a longer idle timeout could never apply).
func (p Policy) Validate() error {
	if p.IdleTimeout <= 0 {
		return fmt.Errorf("session: idle timeout must be positive, got %v", p.IdleTimeout)
	}
	if p.AbsoluteTimeout <= 0 {
		return fmt.Errorf("session: absolute timeout must be positive, got %v", p.AbsoluteTimeout)
	}
	if p.IdleTimeout > p.AbsoluteTimeout {
		return fmt.Errorf("session: idle timeout %v is longer than absolute timeout %v", p.IdleTimeout, p.AbsoluteTimeout)
	}
	return nil
}

// Preset is a named Policy taken from a standard, with where it comes from.
type Preset struct {
	Name   string
	Policy Policy
	Source string
}

// Presets are the policies that common standards ask for. Each satisfies the
// source it names; where a standard sets only one of the clocks, the other is
// the strictest common companion and the Source says so.
var Presets = []Preset{
	{"nist-aal2", Policy{30 * time.Minute, 12 * time.Hour},
		"NIST SP 800-63B rev3 §4.2.3 (AAL2): re-authenticate after 30 minutes idle and every 12 hours"},
	{"nist-aal3", Policy{15 * time.Minute, 12 * time.Hour},
		"NIST SP 800-63B rev3 §4.3.3 / 800-63B-4 §2.3.3 (AAL3): 15 minutes idle, 12 hours overall"},
	{"pci-dss", Policy{15 * time.Minute, 12 * time.Hour},
		"PCI DSS v4.0 8.2.8: re-authenticate after more than 15 minutes idle (absolute: NIST AAL2's 12 hours)"},
	{"owasp-high-value", Policy{5 * time.Minute, 4 * time.Hour},
		"OWASP Session Management Cheat Sheet: 2-5 minutes idle and a 4-8 hour day for high-value applications"},
	{"owasp-low-risk", Policy{30 * time.Minute, 8 * time.Hour},
		"OWASP Session Management Cheat Sheet: 15-30 minutes idle and a 4-8 hour day for low-risk applications"},
	{"hipaa", Policy{15 * time.Minute, 12 * time.Hour},
		"HIPAA 45 CFR 164.312(a)(2)(iii): a predetermined inactivity time (we choose PCI's 15 minutes; absolute: NIST AAL2)"},
}

// LookupPreset returns the preset with the given name.
func LookupPreset(name string) (Preset, bool) {
	for _, p := range Presets {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}

// EndReason says why a session ended.
type EndReason string

// The reasons a session ends. Every session ends exactly once, with one of them.
const (
	// ReasonLogout: the user signed out, or signed in again in the same browser.
	ReasonLogout EndReason = "logout"
	// ReasonIdle: no activity for the idle timeout.
	ReasonIdle EndReason = "idle"
	// ReasonAbsolute: the absolute timeout since authentication was reached.
	ReasonAbsolute EndReason = "absolute"
	// ReasonRevoked: ended by the user from another session, by an
	// administrator, or by an account change (password, disabling).
	ReasonRevoked EndReason = "revoked"
)

// Valid reports whether r is one of the defined reasons.
func (r EndReason) Valid() bool {
	switch r {
	case ReasonLogout, ReasonIdle, ReasonAbsolute, ReasonRevoked:
		return true
	}
	return false
}
