package session

import (
	"sync"
	"time"
)

// maxTouchClaims bounds the sessions touchClaims remembers at once; past it,
// claims that ran out are forgotten, and if none has, all are.
const maxTouchClaims = 100_000

// touchClaims remembers, per session, until when this process has written or
// is writing its activity. Without it, the concurrent requests of one busy
// session that all read the record before the first write landed would all
// write the same activity, where a read takes long enough for requests to
// overlap (docs/benchmarks.md, "Store writes of a busy session", has the figures).
type touchClaims struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// claim reports whether the caller should write the activity of session id
// at time at: no other request of this process claimed it within interval.
func (c *touchClaims) claim(id string, at time.Time, interval time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.until[id]; ok && at.Before(u) {
		return false
	}
	if c.until == nil {
		c.until = make(map[string]time.Time)
	}
	if len(c.until) >= maxTouchClaims {
		for k, u := range c.until {
			if !at.Before(u) {
				delete(c.until, k)
			}
		}
		if len(c.until) >= maxTouchClaims {
			clear(c.until) // at worst some sessions write once more
		}
	}
	c.until[id] = at.Add(interval)
	return true
}

// release gives up the claim on id after its write failed, so that the next
// request tries again.
func (c *touchClaims) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.until, id)
}
