package web

import "sync"

// maxRenderedPages bounds the pages renderCache keeps: a few kilobytes
// each, so a few megabytes at most.
const maxRenderedPages = 1024

// renderCache keeps the bytes of pages rendered recently, by page and view,
// so that a page asked for again with the same data (the sign-in page that
// every ended session is sent to, the 404 page, a user's account page) is
// not rendered again: executing html/template, which evaluates every field
// and escaper through reflection, is most of the cost of serving a page.
//
// A page is a function of its view alone (the templates and their functions
// read nothing else), so a view equal to an earlier one renders the same
// bytes, and serving those cannot show anyone what they would not have been
// shown anyway. Only views whose Content opts in with cacheableContent are
// kept: their Content must be comparable and made of values (strings,
// numbers, times), not of pointers or slices whose targets could change
// while the key stays equal.
//
// Only the pages that traffic repeats with the same view opt in: the
// sign-in, re-authentication and error pages. A signed-in user's own pages
// (the account page among them) are rendered every time: they are seldom
// asked for twice with the same data, so caching them would only flatter a
// benchmark that asks for one user's page over and over.
type renderCache struct {
	mu    sync.Mutex
	pages map[renderKey][]byte
}

type renderKey struct {
	page string
	view view
}

// cacheableContent marks the Content types of views renderCache may keep.
type cacheableContent interface{ cacheableContent() }

func (loginView) cacheableContent()  {}
func (reauthView) cacheableContent() {}
func (errorView) cacheableContent()  {}

// key returns the cache key of page rendered with v, and whether v may be
// cached at all.
func (c *renderCache) key(page string, v *view) (renderKey, bool) {
	if _, ok := v.Content.(cacheableContent); !ok {
		return renderKey{}, false
	}
	return renderKey{page: page, view: *v}, true
}

// get returns the bytes of the page rendered for key; the caller must not
// change them.
func (c *renderCache) get(key renderKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.pages[key]
	return b, ok
}

// put keeps page, which is the caller's to give away, as the rendering of
// key.
func (c *renderCache) put(key renderKey, page []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pages == nil {
		c.pages = make(map[renderKey][]byte)
	}
	if _, ok := c.pages[key]; !ok && len(c.pages) >= maxRenderedPages {
		for k := range c.pages { // evict an arbitrary page
			delete(c.pages, k)
			break
		}
	}
	c.pages[key] = page
}
