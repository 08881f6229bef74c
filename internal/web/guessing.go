package web

import (
	"hash/maphash"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
	"github.com/sessionguard/sessionguard/session"
)

// DefaultUnknownTokenLimit is how many different well-formed session tokens
// that the store does not know one client address may present within a
// minute before the next are refused: 100. A browser presents such a token
// when its cookie outlived a store that was reset, once, before it signs in
// again; a hundred of them in a minute from one address is someone guessing
// session IDs (or a very large office right after the store lost its
// sessions). The 256-bit tokens cannot be guessed either way: the limit is
// there to notice and cut short the attempt (OWASP session management cheat
// sheet, "Session ID Guessing and Brute Force Detection").
const DefaultUnknownTokenLimit = 100

// unknownTokenWindow is the minute the limit counts in, and how long an
// address that went over it is refused.
const unknownTokenWindow = time.Minute

// maxTrackedGuessers bounds the client addresses counted at once: each
// costs at most the fingerprints of Limit+1 tokens (about 1 KB at the
// default). When full, the addresses with nothing left to remember make
// room, then one that is not refused.
const maxTrackedGuessers = 10000

// tokenGuesses counts, per client address, the different unknown session
// tokens it presented in the current window.
type tokenGuesses struct {
	limit int // at most this many per window, or UnknownTokenLimitOff
	seed  maphash.Seed

	mu    sync.Mutex
	addrs map[string]*guesser
}

type guesser struct {
	windowEnd    time.Time
	tokens       []uint64 // fingerprints of this window's different unknown tokens
	blockedUntil time.Time
	burst        bool // this burst has been logged
}

// newTokenGuesses counts up to limit unknown tokens per address and
// window; UnknownTokenLimitOff counts none.
func newTokenGuesses(limit int) *tokenGuesses {
	return &tokenGuesses{limit: limit, seed: maphash.MakeSeed(), addrs: make(map[string]*guesser)}
}

// forgettable reports whether g holds nothing worth keeping at now: its
// window has passed, and so has a window after its last refusal.
func (g *guesser) forgettable(now time.Time) bool {
	return !now.Before(g.windowEnd) && !now.Before(g.blockedUntil.Add(unknownTokenWindow))
}

// count records that addr presented the unknown token at now. It returns
// how long addr is refused, if it is, and whether this refusal starts a
// burst (to be logged).
func (t *tokenGuesses) count(addr, token string, now time.Time) (wait time.Duration, refused, burstStarts bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.addrs[addr]
	if g == nil {
		if !t.makeRoom(now) {
			return 0, false, false // every tracked address is refused: counting one more helps nobody
		}
		g = &guesser{}
		t.addrs[addr] = g
	}
	if !now.Before(g.windowEnd) {
		if g.forgettable(now) {
			g.burst = false // a quiet window: the next refusal is a new burst
		}
		g.tokens, g.windowEnd = g.tokens[:0], now.Add(unknownTokenWindow)
	}
	if now.Before(g.blockedUntil) {
		return g.blockedUntil.Sub(now), true, false
	}
	if fp := maphash.String(t.seed, token); !slices.Contains(g.tokens, fp) {
		g.tokens = append(g.tokens, fp)
	}
	if len(g.tokens) <= t.limit {
		return 0, false, false
	}
	g.blockedUntil = now.Add(unknownTokenWindow)
	burstStarts = !g.burst
	g.burst = true
	return unknownTokenWindow, true, burstStarts
}

// makeRoom makes room for one more address if the table is full, and
// reports whether there is room.
func (t *tokenGuesses) makeRoom(now time.Time) bool {
	if len(t.addrs) < maxTrackedGuessers {
		return true
	}
	for a, g := range t.addrs {
		if g.forgettable(now) {
			delete(t.addrs, a)
		}
	}
	if len(t.addrs) < maxTrackedGuessers {
		return true
	}
	for a, g := range t.addrs {
		if !now.Before(g.blockedUntil) {
			delete(t.addrs, a)
			return true
		}
	}
	return false
}

// UnknownTokenRefusal counts r against its client address (Config.ClientIP;
// an IPv6 client's /64) if r presented a well-formed session token that the
// session store does not know (session.UnknownToken), and reports whether
// that address presented more than Config.UnknownTokenLimit different ones
// within a minute: then r is to be refused with 429 and a Retry-After of
// the duration returned. A request with a live session, with no token, or
// with one that ended is never counted or refused, whatever its address. The
// first refusal of a burst is logged as a warning. r's context must come
// from the session Manager's Handler or Check.
func (s *Server) UnknownTokenRefusal(r *http.Request) (time.Duration, bool) {
	if s.guesses.limit == UnknownTokenLimitOff || !session.UnknownToken(r.Context()) {
		return 0, false
	}
	token := ""
	if c, err := r.Cookie(s.cfg.Sessions.CookieName()); err == nil {
		token = c.Value
	}
	ip := s.cfg.ClientIP(r)
	addr := account.AddressKey(ip)
	wait, refused, burstStarts := s.guesses.count(addr, token, s.cfg.Clock.Now())
	if burstStarts {
		s.cfg.Logger.Warn("refusing requests with unknown session tokens from a client address: someone may be guessing session IDs",
			slog.String("ip", ip), slog.String("counted_as", addr), slog.Int("limit_per_minute", s.guesses.limit),
			slog.Duration("refused_for", wait))
	}
	return wait, refused
}

// refuseTokenGuessing answers the requests UnknownTokenRefusal refuses
// before they reach a route.
func (s *Server) refuseTokenGuessing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, refused := s.UnknownTokenRefusal(r); refused {
			s.ServeTooManyUnknownTokens(w, r, wait)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeTooManyUnknownTokens answers a request that UnknownTokenRefusal
// refused: 429 with Retry-After (wait, rounded up to seconds), and a page
// or JSON error ("too_many_unknown_tokens") that tells the person what to
// do, with the server's security headers.
func (s *Server) ServeTooManyUnknownTokens(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", retryAfter(wait))
	s.ServeError(w, r, http.StatusTooManyRequests, "too_many_unknown_tokens",
		"Too many requests with sign-in cookies this server does not know came from your network. Wait "+
			waitWords(wait)+" and try again. If this keeps happening, delete this site's cookies.")
}
