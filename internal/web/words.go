package web

import (
	"fmt"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/session"
)

// durationWords says d in the largest unit that divides it exactly, as a
// person would: "30 minutes", "1 hour", "90 minutes", "45 seconds".
func durationWords(d time.Duration) string {
	n, unit := durationUnit(d)
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// durationAdjective says d as a compound adjective: "12-hour", "90-minute".
func durationAdjective(d time.Duration) string {
	n, unit := durationUnit(d)
	return fmt.Sprintf("%d-%s", n, unit)
}

func durationUnit(d time.Duration) (int64, string) {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return int64(d / time.Hour), "hour"
	case d >= time.Minute && d%time.Minute == 0:
		return int64(d / time.Minute), "minute"
	default:
		return int64(d.Round(time.Second) / time.Second), "second"
	}
}

// waitWords says how long to wait before trying again, rounded up to the
// second, or the minute beyond two minutes: "40 seconds", "4 minutes".
func waitWords(d time.Duration) string {
	if d > 2*time.Minute {
		return durationWords((d + time.Minute - 1).Truncate(time.Minute))
	}
	return durationWords(max((d + time.Second - 1).Truncate(time.Second), time.Second))
}

// remainingWords says roughly how long is left, for a page that is read
// once: "about 25 minutes", "less than a minute".
func remainingWords(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return "about " + durationWords(d.Round(time.Minute))
	default:
		h := d.Round(time.Minute)
		hours, mins := h/time.Hour, (h%time.Hour)/time.Minute
		s := "about " + durationWords(hours*time.Hour)
		if mins > 0 {
			s += " " + durationWords(mins*time.Minute)
		}
		return s
	}
}

// endMessage is the login page's sentence for why the last session ended.
// The timeouts named are those of userPolicy, the policy of ordinary users:
// the page does not know who was signed in.
func endMessage(reason session.EndReason, userPolicy session.Policy) string {
	switch reason {
	case session.ReasonIdle:
		return "You were signed out after " + durationWords(userPolicy.IdleTimeout) + " of inactivity."
	case session.ReasonAbsolute:
		return "Your session reached its " + durationAdjective(userPolicy.AbsoluteTimeout) + " limit. Please sign in again."
	case session.ReasonLogout:
		return "You signed out."
	case session.ReasonRevoked:
		return "Your session was ended from another device."
	}
	return ""
}

// deviceName summarises a User-Agent for a list of sessions: "Firefox on
// Linux", "Safari on iOS", "curl". It needs to be recognisable, not exact.
func deviceName(ua string) string {
	if ua == "" {
		return "Unknown device"
	}
	has := func(s string) bool { return strings.Contains(ua, s) }
	var browser string
	switch {
	case has("Edg/"):
		browser = "Edge"
	case has("OPR/"), has("Opera"):
		browser = "Opera"
	case has("Firefox/"), has("FxiOS/"):
		browser = "Firefox"
	case has("Chromium/"):
		browser = "Chromium"
	case has("Chrome/"), has("CriOS/"):
		browser = "Chrome"
	case has("Safari/"):
		browser = "Safari"
	case strings.HasPrefix(ua, "curl/"):
		return "curl"
	case strings.HasPrefix(ua, "Go-http-client/"):
		return "Go program"
	}
	var os string
	switch {
	case has("iPhone"), has("iPad"), has("iPod"):
		os = "iOS"
	case has("Android"):
		os = "Android"
	case has("CrOS"):
		os = "ChromeOS"
	case has("Windows"):
		os = "Windows"
	case has("Macintosh"), has("Mac OS X"):
		os = "macOS"
	case has("Linux"), has("X11"):
		os = "Linux"
	}
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return "Browser on " + os
	}
	// An unknown client: show its own first word, bounded.
	name, _, _ := strings.Cut(ua, " ")
	if len(name) > 40 {
		name = name[:40]
	}
	if name = strings.ToValidUTF8(name, ""); name == "" {
		return "Unknown device"
	}
	return name
}
