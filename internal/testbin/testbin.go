// Package testbin builds the sessionguard binary once per test run, for the
// tests that drive it as a real process (the command's own tests, the
// integration tests and the browser tests).
package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	bin  string
	err  error
)

// Path returns the path of the sessionguard binary, building it on first use
// (with the race detector when race is true), or fails t. Tests built with
// -short skip instead: they do not run processes.
func Path(t testing.TB, race bool) string {
	t.Helper()
	if testing.Short() {
		t.Skip("this test builds and runs the sessionguard binary; skipped with -short")
	}
	once.Do(func() {
		if dir, err = os.MkdirTemp("", "sessionguard-bin-"); err != nil {
			return
		}
		bin = filepath.Join(dir, "sessionguard")
		args := []string{"build", "-o", bin}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/sessionguard/sessionguard/cmd/sessionguard")...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if e := cmd.Run(); e != nil {
			err = fmt.Errorf("go build ./cmd/sessionguard: %v\n%s", e, out.String())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Remove deletes the built binary. Call it from TestMain after m.Run.
func Remove() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// CleanEnv is the test process's environment without SESSIONGUARD_*
// variables, plus extra ("NAME=value"), so that neither a developer's
// settings nor the tests' own service variables reach the server.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIONGUARD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
