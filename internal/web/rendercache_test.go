package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/account"
)

// renderBody renders page with v through the Server, cache and all.
func renderBody(t *testing.T, s *Server, page string, v view) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.render(rec, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, page, &v)
	if rec.Code != http.StatusOK {
		t.Fatalf("render %s: %d", page, rec.Code)
	}
	return rec.Body.String()
}

// A page served from the cache is the page the templates render for that
// view, and a view that differs in anything renders anew.
func TestRenderCacheServesWhatTheTemplatesRender(t *testing.T) {
	e := newEnv(t)
	s := e.srv
	v := view{Title: "Not found", User: "alice", Content: errorView{Heading: "Not found", Message: "There is no such page."}}
	first := renderBody(t, s, "error", v)
	if _, ok := s.rendered.get(renderKey{"error", withNav(v)}); !ok {
		t.Fatal("the error page was not kept")
	}
	if again := renderBody(t, s, "error", v); again != first {
		t.Error("the cached page differs from the rendered one")
	}
	var fresh bytes.Buffer
	nv := withNav(v)
	if err := s.pages["error"].Execute(&fresh, &nv); err != nil {
		t.Fatal(err)
	}
	if fresh.String() != first {
		t.Error("the cached page differs from executing the template")
	}

	changed := v
	changed.Admin = true
	if got := renderBody(t, s, "error", changed); got == first || !strings.Contains(got, `href="/admin"`) {
		t.Error("an admin's error page came from the cache of a user's")
	}
	changed = v
	changed.User = "bob"
	if got := renderBody(t, s, "error", changed); !strings.Contains(got, "<strong>bob</strong>") || strings.Contains(got, "alice") {
		t.Error("bob's error page shows alice")
	}
}

// Views whose Content does not opt in (slices of sessions, times that move
// every request, a user's own pages) are never kept.
func TestRenderCacheSkipsOtherViews(t *testing.T) {
	e := newEnv(t)
	v := view{Title: "Home", Nav: "home", User: "alice", Content: homeView{Sessions: []sessionRow{{ID: "a"}}}}
	renderBody(t, e.srv, "home", v)
	if n := len(e.srv.rendered.pages); n != 0 {
		t.Errorf("%d pages kept after rendering the home page, want 0", n)
	}
	// A user's own pages are rendered every time, even those made of values.
	renderBody(t, e.srv, "account", view{Title: "Your account", Nav: "account", User: "alice", Content: accountView{
		Role: account.RoleUser, PasswordChanged: e.clock.Now(), MinLength: account.MinPasswordLength,
	}})
	if n := len(e.srv.rendered.pages); n != 0 {
		t.Errorf("%d pages kept after rendering the account page, want 0", n)
	}
}

func TestRenderCacheIsBounded(t *testing.T) {
	var c renderCache
	for i := range maxRenderedPages + 10 {
		key, ok := c.key("error", &view{Content: errorView{Message: strconv.Itoa(i)}})
		if !ok {
			t.Fatal("an error page may not be cached")
		}
		c.put(key, []byte("page"))
	}
	if n := len(c.pages); n != maxRenderedPages {
		t.Errorf("%d pages kept, want %d", n, maxRenderedPages)
	}
}

// withNav is v as render keys it, with NavIs filled in.
func withNav(v view) view {
	v.NavIs = navFor(v.Nav)
	return v
}

// The Content types that opt in must be made of values: a map key of a
// type that is not comparable panics, and one holding a pointer, slice or
// map would stay equal while what it points to changes.
func TestCacheableContentHoldsValuesOnly(t *testing.T) {
	timeType := reflect.TypeFor[time.Time]()
	var check func(typ reflect.Type)
	check = func(typ reflect.Type) {
		for f := range typ.Fields() {
			switch k := f.Type.Kind(); {
			case f.Type == timeType:
			case k == reflect.String, k == reflect.Bool, k >= reflect.Int && k <= reflect.Float64:
			case k == reflect.Struct: // such as a passkey button: its fields are checked in turn
				check(f.Type)
			default:
				t.Errorf("%s.%s is a %s: cacheable content holds strings, numbers, booleans and times only", typ, f.Name, f.Type)
			}
		}
	}
	for _, c := range []cacheableContent{loginView{}, reauthView{}, errorView{}} {
		check(reflect.TypeOf(c))
	}
}
