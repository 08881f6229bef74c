package web

import (
	"sync"
	"time"
)

// A passwordless sign-in begins before anyone is known: its ceremony state
// needs a session, so begin starts an anonymous one, which the store keeps
// until its idle timeout. A script posting to begin without a cookie would
// fill the store with them. startLimit bounds how many one client address
// (account.AddressKey: an IPv6 client's /64) starts in a window; a person
// needs one per attempt, and a browser that has one reuses it.
type startLimit struct {
	limit  int           // sessions one address may start per window
	window time.Duration // how long a count lasts
	max    int           // addresses tracked at once

	mu     sync.Mutex
	counts map[string]*startCount
}

type startCount struct {
	began time.Time // the start of this address's window
	n     int
}

// The defaults of the limit on anonymous sessions started by passwordless
// sign-ins: 30 a minute from one address is far beyond what people behind
// one address need, and far below what would strain a store.
const (
	passwordlessStartLimit  = 30
	passwordlessStartWindow = time.Minute
	passwordlessStartMax    = 10000
)

func newStartLimit(limit int, window time.Duration, max int) *startLimit {
	return &startLimit{limit: limit, window: window, max: max, counts: make(map[string]*startCount)}
}

// allow counts one start by addr at now and reports whether it may go
// ahead; if not, it says how long until it may. When max addresses are
// tracked, those whose window has passed make room; if none has, the start
// goes ahead uncounted. Refusing it instead would let whoever holds max
// addresses (an IPv6 /48 has 65,536 /64s) shut passwordless sign-in for
// everyone else; a flood from that many addresses is bounded by the store's
// idle timeout, not here.
func (l *startLimit) allow(addr string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.counts[addr]
	if ok && now.Sub(c.began) >= l.window {
		c.began, c.n = now, 0
	}
	if !ok {
		if len(l.counts) >= l.max {
			for a, old := range l.counts {
				if now.Sub(old.began) >= l.window {
					delete(l.counts, a)
				}
			}
			if len(l.counts) >= l.max {
				return 0, true
			}
		}
		c = &startCount{began: now}
		l.counts[addr] = c
	}
	if c.n >= l.limit {
		return c.began.Add(l.window).Sub(now), false
	}
	c.n++
	return 0, true
}
