package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// view is what every page template gets: the frame (title, navigation, who
// is signed in, messages) and the page's own data in Content.
type view struct {
	Title  string
	Nav    string // the navigation entry of the page: "home", "sessions", "account", "admin"
	User   string // the signed-in user; empty on public pages
	Admin  bool   // whether to show the admin entry
	Notice string // a success message
	Error  string // a problem with what the user sent
	// Content is the page's own data.
	Content any

	// NavIs marks the entry named by Nav, for the layout; render sets it.
	NavIs navState
}

// navState says which navigation entry is the current page. The layout
// tests these fields rather than calling eq: text/template calls every
// function through reflection, which made the comparisons a noticeable
// part of rendering a page.
type navState struct {
	Home, Sessions, Account, Admin bool

	// Embedded hides the entries outside /auth/: in front of another
	// application, which owns every other path (Config.Embedded).
	Embedded bool
}

// navFor returns the navState of the entry named nav.
func navFor(nav string) navState {
	return navState{Home: nav == "home", Sessions: nav == "sessions", Account: nav == "account", Admin: nav == "admin"}
}

type errorView struct {
	Heading string
	Message string
	Retry   string // when set, a "Try again" button posts to this path
}

// pages are the parsed templates, one per page: its "layout" template,
// which includes the page's "content".
type pages map[string]*template.Template

var templateFuncs = template.FuncMap{
	"datetime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}

// partials are the template files that define no page, only named
// templates the pages include; they are parsed with the layout.
var partials = []string{"layout.html", "passkey.html"}

func parsePages() (pages, error) {
	layout := template.New("layout.html").Funcs(templateFuncs)
	for _, name := range partials {
		if _, err := layout.ParseFS(templateFS, "templates/"+name); err != nil {
			return nil, fmt.Errorf("web: parsing %s: %w", name, err)
		}
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := make(pages)
	for _, file := range names {
		name := path.Base(file)
		if slices.Contains(partials, name) {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, file)
		if err != nil {
			return nil, fmt.Errorf("web: parsing %s: %w", name, err)
		}
		p[name[:len(name)-len(".html")]] = t.Lookup("layout")
	}
	return p, nil
}

// renderBuffers are the buffers pages are rendered into; reusing them
// saves growing a new one to the size of a page on every request.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer bounds the buffers kept for reuse: a long admin page
// should not pin its memory.
const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer { return renderBuffers.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	renderBuffers.Put(b)
}

// render executes page into a buffer first, so that a template error
// becomes a clean 500 instead of half a page. A page already rendered with
// an equal view is sent from s.rendered (see renderCache).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := s.pages[page]
	if !ok {
		s.internalError(w, r, fmt.Errorf("no template %q", page))
		return
	}
	v.NavIs = navFor(v.Nav)
	v.NavIs.Embedded = s.cfg.Embedded
	key, cacheable := s.rendered.key(page, v)
	if cacheable {
		if b, ok := s.rendered.get(key); ok {
			writePage(w, r, status, b)
			return
		}
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if err := t.Execute(buf, v); err != nil {
		if page == "error" {
			// The error page itself failed: say the minimum, safely.
			http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
			s.cfg.Logger.Error("rendering the error page", "err", err)
			return
		}
		s.internalError(w, r, fmt.Errorf("rendering %s: %w", page, err))
		return
	}
	if cacheable {
		s.rendered.put(key, bytes.Clone(buf.Bytes()))
	}
	writePage(w, r, status, buf.Bytes())
}

// writePage sends a rendered page.
func writePage(w http.ResponseWriter, r *http.Request, status int, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(page)
	}
}

// staticFile is an embedded file with what it takes to serve it well.
type staticFile struct {
	body        []byte
	contentType string
	etag        string
}

func loadStatic() (map[string]staticFile, error) {
	files := make(map[string]staticFile)
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		files[path.Base(p)] = staticFile{
			body:        b,
			contentType: ct,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	return files, err
}

// serveStatic serves an embedded file. Browsers revalidate it on each use
// (a cheap 304 thanks to its ETag), so a new release is seen at once.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := s.static[name]
	if !ok {
		s.notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Del("Vary")
	h.Set("ETag", f.etag)
	h.Set("Content-Type", f.contentType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
