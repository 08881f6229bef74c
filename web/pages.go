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
	"strconv"
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
}

type errorView struct {
	Heading string
	Message string
}

// pages are the parsed templates, one per page, each with the layout.
type pages map[string]*template.Template

var templateFuncs = template.FuncMap{
	"datetime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}

func parsePages() (pages, error) {
	layout, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: parsing the layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := make(pages)
	for _, file := range names {
		name := path.Base(file)
		if name == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, file)
		if err != nil {
			return nil, fmt.Errorf("web: parsing %s: %w", name, err)
		}
		p[name[:len(name)-len(".html")]] = t
	}
	return p, nil
}

// render executes page into a buffer first, so that a template error
// becomes a clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := s.pages[page]
	if !ok {
		s.internalError(w, r, fmt.Errorf("no template %q", page))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		if page == "error" {
			// The error page itself failed: say the minimum, safely.
			http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
			s.log.Error("rendering the error page", "err", err)
			return
		}
		s.internalError(w, r, fmt.Errorf("rendering %s: %w", page, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
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
