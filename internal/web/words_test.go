package web

import (
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

func TestDurationWords(t *testing.T) {
	for _, tc := range []struct {
		d         time.Duration
		words     string
		adjective string
	}{
		{30 * time.Minute, "30 minutes", "30-minute"},
		{time.Minute, "1 minute", "1-minute"},
		{time.Hour, "1 hour", "1-hour"},
		{12 * time.Hour, "12 hours", "12-hour"},
		{90 * time.Minute, "90 minutes", "90-minute"},
		{45 * time.Second, "45 seconds", "45-second"},
		{1500 * time.Millisecond, "2 seconds", "2-second"},
	} {
		if got := durationWords(tc.d); got != tc.words {
			t.Errorf("durationWords(%v) = %q, want %q", tc.d, got, tc.words)
		}
		if got := durationAdjective(tc.d); got != tc.adjective {
			t.Errorf("durationAdjective(%v) = %q, want %q", tc.d, got, tc.adjective)
		}
	}
	for d, want := range map[time.Duration]string{
		30 * time.Second:                "less than a minute",
		29*time.Minute + 40*time.Second: "about 30 minutes",
		11*time.Hour + 58*time.Minute:   "about 11 hours 58 minutes",
		2 * time.Hour:                   "about 2 hours",
	} {
		if got := remainingWords(d); got != want {
			t.Errorf("remainingWords(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		200 * time.Millisecond: "1 second",
		59*time.Second + 1:     "1 minute",
		4 * time.Minute:        "4 minutes",
		4*time.Minute + 1:      "5 minutes",
	} {
		if got := waitWords(d); got != want {
			t.Errorf("waitWords(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestEndMessage(t *testing.T) {
	p := session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}
	for reason, want := range map[session.EndReason]string{
		session.ReasonIdle:     "You were signed out after 30 minutes of inactivity.",
		session.ReasonAbsolute: "Your session reached its 12-hour limit. Please sign in again.",
		session.ReasonLogout:   "You signed out.",
		session.ReasonRevoked:  "Your session was ended from another device.",
		"other":                "",
	} {
		if got := endMessage(reason, p); got != want {
			t.Errorf("endMessage(%q) = %q, want %q", reason, got, want)
		}
	}
}

func TestDeviceName(t *testing.T) {
	for ua, want := range map[string]string{
		"": "Unknown device",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                                   "Chrome on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0":               "Edge on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:133.0) Gecko/20100101 Firefox/133.0":                                                     "Firefox on macOS",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1": "Safari on iOS",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36":                   "Chrome on Android",
		"curl/8.5.0":                       "curl",
		"Go-http-client/1.1":               "Go program",
		"SomeBot/2.0 (+https://x.example)": "SomeBot/2.0",
		"\xff\xfe":                         "Unknown device",
	} {
		if got := deviceName(ua); got != want {
			t.Errorf("deviceName(%q) = %q, want %q", ua, got, want)
		}
	}
}
