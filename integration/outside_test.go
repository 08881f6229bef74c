package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// chiSums are go.sum's lines for the router the outside module uses, which
// sessionguard itself does not depend on.
const chiSums = `github.com/go-chi/chi/v5 v5.5.0 h1:xdKQ1dJmVJsmgahrXSKhUx8NyVPzpwdlyrrQFpMPJgg=
github.com/go-chi/chi/v5 v5.5.0/go.mod h1:d1IG7GtKPSjPyBP365PH8sAGVHk3qfB/IhjFNRH1wWM=
`

// TestOutsideModule builds an application on the session library in a
// module of its own, outside this repository, as a developer would: only
// the public API is reachable from there, so an internal type leaking into
// a public signature, or an example that no longer compiles, fails here.
// It compiles the README's program as written, and runs a shop on net/http
// and on chi, through the memory, SQLite and Redis stores.
func TestOutsideModule(t *testing.T) {
	redisURL := os.Getenv("SESSIONGUARD_TEST_REDIS")
	if redisURL == "" {
		t.Skip("SESSIONGUARD_TEST_REDIS is not set: skipping the outside-module test, which runs the shop on Redis too")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH: cannot build a module")
	}
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(here))
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write("go.mod", fmt.Appendf(nil, `module example.com/shop

go 1.26

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/sessionguard/sessionguard v0.0.0
)

replace github.com/sessionguard/sessionguard => %s
`, root))
	write("go.sum", append(read(filepath.Join(root, "go.sum")), chiSums...))
	write("cmd/readme/main.go", readmeProgram(t, read(filepath.Join(root, "README.md"))))
	write("shop.go", read("testdata/outside/shop.go.txt"))
	write("shop_test.go", read("testdata/outside/shop_test.go.txt"))

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "REDIS_URL="+redisURL)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	run("vet", "./...")
	out := run("test", "-count=1", "-v", "./...")
	for _, name := range []string{"memory/net/http", "memory/chi", "sqlite/net/http", "sqlite/chi", "redis/net/http", "redis/chi"} {
		if !strings.Contains(out, "--- PASS: TestShop/"+name) {
			t.Errorf("the outside module's TestShop/%s did not pass:\n%s", name, out)
		}
	}
}

// readmeProgram returns the Go program of the README's library section, as
// a reader would copy it.
func readmeProgram(t *testing.T, readme []byte) []byte {
	t.Helper()
	_, section, ok := bytes.Cut(readme, []byte("## The library in one page"))
	if !ok {
		t.Fatal(`README.md has no "## The library in one page" section`)
	}
	_, code, ok := bytes.Cut(section, []byte("```go\n"))
	if !ok {
		t.Fatal("the README's library section has no Go block")
	}
	code, _, ok = bytes.Cut(code, []byte("```"))
	if !ok || !bytes.HasPrefix(code, []byte("package main")) {
		t.Fatal("the README's library block is not a whole program")
	}
	return code
}
