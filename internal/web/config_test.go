package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
)

// Zero selects a field's default everywhere; turning a warning off takes
// WarningOff, and the browser then reads 0 (no warning).
func TestWarningOffIsNamed(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.WarnBefore = WarningOff
		c.AbsoluteWarnBefore = WarningOff
	})
	e.addUser("alice", alicePassword, account.RoleUser)
	c := e.browser()
	c.login("alice", alicePassword)
	if sb := decodeStatus(t, c.get("/auth/status"), http.StatusOK); sb.WarnBefore != 0 || sb.AbsoluteWarnBefore != 0 {
		t.Errorf("warnings off: warn_before_s %v, absolute_warn_before_s %v; want 0 and 0", sb.WarnBefore, sb.AbsoluteWarnBefore)
	}
}

func TestConfigDefaults(t *testing.T) {
	e := newEnv(t)
	got := e.srv.cfg
	if got.ReauthAfter != 5*time.Minute || got.WarnBefore != 2*time.Minute || got.AbsoluteWarnBefore != 5*time.Minute ||
		got.MaxFormBytes != 64<<10 || got.UnknownTokenLimit != DefaultUnknownTokenLimit ||
		got.Logger == nil || got.Clock == nil || got.ClientIP == nil || got.Ready == nil || got.Gatherer == nil {
		t.Errorf("zero fields did not take their defaults: %+v", got)
	}
}

func TestConfigOutOfRange(t *testing.T) {
	e := newEnv(t)
	base := e.srv.cfg
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" for none
	}{
		{"warnings off", func(c *Config) { c.WarnBefore, c.AbsoluteWarnBefore = WarningOff, WarningOff }, ""},
		{"token limit off", func(c *Config) { c.UnknownTokenLimit = UnknownTokenLimitOff }, ""},
		{"warn before other negative", func(c *Config) { c.WarnBefore = -time.Second }, "Config.WarnBefore"},
		{"absolute warn other negative", func(c *Config) { c.AbsoluteWarnBefore = -2 }, "Config.AbsoluteWarnBefore"},
		{"reauth has no off", func(c *Config) { c.ReauthAfter = -1 }, "Config.ReauthAfter"},
		{"max form bytes has no off", func(c *Config) { c.MaxFormBytes = -1 }, "Config.MaxFormBytes"},
		{"token limit other negative", func(c *Config) { c.UnknownTokenLimit = -2 }, "Config.UnknownTokenLimit"},
		{"no sessions", func(c *Config) { c.Sessions = nil }, "Config.Sessions"},
	} {
		c := base
		tc.change(&c)
		err := c.check()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: check() = %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}
