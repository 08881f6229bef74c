// Package testproxy runs real nginx and Caddy in front of sessionguard and
// an application, for the process tests of the gateway (the integration and
// browser tests). Each proxy runs as a process of the test, on a free port
// of 127.0.0.1, with a configuration written into the test's temporary
// directory; it never touches /etc or a system service.
//
// The configurations are those of docs/gateway.md, with the addresses
// filled in: a change to one belongs in the other.
package testproxy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kind names a proxy.
type Kind string

// The proxies the tests run.
const (
	Nginx Kind = "nginx" // Debian's nginx package: auth_request and sub_filter
	Caddy Kind = "caddy" // Debian's caddy package: forward_auth
)

// Kinds lists every proxy, for table-driven tests.
var Kinds = []Kind{Nginx, Caddy}

// Backends are the addresses (host:port) the proxy forwards to.
type Backends struct {
	SessionGuard string // sessionguard: the checks, and /auth/* on the app's own origin
	App          string // the protected application
}

// Proxy is a running nginx or Caddy.
type Proxy struct {
	Kind       Kind
	URL        string // http://127.0.0.1:PORT, the address clients use
	ConfigFile string // the configuration it runs with

	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startTimeout bounds how long a proxy may take to listen: generous, since
// CI runs the tests with the race detector on two shared cores.
const startTimeout = 60 * time.Second

// Start starts a proxy of kind in front of b and waits until it listens.
// It is stopped when the test ends, and its configuration and log are shown
// if the test failed. Without the proxy's binary the test is skipped, with
// a message naming the Debian package to install (CI turns such a skip
// into a failure).
func Start(t testing.TB, kind Kind, b Backends) *Proxy {
	t.Helper()
	bin := Binary(t, kind)
	// The port is free when picked but may be taken before the proxy binds
	// it; another port is tried then.
	var lastErr error
	for range 3 {
		p := &Proxy{Kind: kind, dir: t.TempDir(), exited: make(chan struct{})}
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		p.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		if err := p.launch(t, bin, port, b); err != nil {
			t.Fatal(err)
		}
		if lastErr = p.waitListening(port); lastErr == nil {
			t.Cleanup(func() {
				p.stop()
				if t.Failed() {
					t.Logf("%s configuration %s:\n%s\n%s log:\n%s", kind, p.ConfigFile, p.config(), kind, p.Log())
				}
			})
			return p
		}
		p.stop()
		t.Logf("%s did not start on port %d (%v); trying another port. Its log:\n%s", kind, port, lastErr, p.Log())
	}
	t.Fatalf("%s did not start: %v", kind, lastErr)
	return nil
}

// Binary returns the path of the proxy's binary: $SESSIONGUARD_NGINX or
// $SESSIONGUARD_CADDY when set, else the one on the PATH or in /usr/sbin. It
// skips the test when there is none, or when nginx lacks a module the
// configuration needs.
func Binary(t testing.TB, kind Kind) string {
	t.Helper()
	env := "SESSIONGUARD_" + strings.ToUpper(string(kind))
	bin := os.Getenv(env)
	if bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			t.Fatalf("$%s: %v", env, err)
		}
		bin = p
	} else {
		for _, name := range []string{string(kind), "/usr/sbin/" + string(kind), "/usr/bin/" + string(kind)} {
			if p, err := exec.LookPath(name); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		t.Skipf("%s not found: install it (apt-get install %s) to run the gateway tests", kind, kind)
	}
	if kind == Nginx {
		modules.once.Do(func() {
			out, _ := exec.Command(bin, "-V").CombinedOutput()
			modules.nginx = string(out)
		})
		for _, m := range []string{"--with-http_auth_request_module", "--with-http_sub_module"} {
			if !strings.Contains(modules.nginx, m) {
				t.Skipf("%s was built without %s: install Debian's full nginx (apt-get install nginx) to run the gateway tests", bin, m)
			}
		}
	}
	return bin
}

var modules struct {
	once  sync.Once
	nginx string // the output of nginx -V
}

// launch writes the configuration and starts the process.
func (p *Proxy) launch(t testing.TB, bin string, port int, b Backends) error {
	settings := settings{Dir: p.dir, Listen: "127.0.0.1:" + strconv.Itoa(port), Backends: b}
	var text bytes.Buffer
	var args []string
	env := os.Environ()
	switch p.Kind {
	case Nginx:
		p.ConfigFile = filepath.Join(p.dir, "nginx.conf")
		if err := nginxConfig.Execute(&text, settings); err != nil {
			return err
		}
		// -e: the log nginx writes before it has read the configuration,
		// which would otherwise be /var/log/nginx/error.log.
		args = []string{"-p", p.dir, "-c", p.ConfigFile, "-e", filepath.Join(p.dir, "error.log")}
	case Caddy:
		p.ConfigFile = filepath.Join(p.dir, "Caddyfile")
		if err := caddyConfig.Execute(&text, settings); err != nil {
			return err
		}
		args = []string{"run", "--config", p.ConfigFile, "--adapter", "caddyfile"}
		// Caddy keeps certificates and its autosave in these; keep them
		// in the test's directory.
		env = append(env, "HOME="+p.dir, "XDG_CONFIG_HOME="+filepath.Join(p.dir, "config"), "XDG_DATA_HOME="+filepath.Join(p.dir, "data"))
	default:
		return fmt.Errorf("unknown proxy %q", p.Kind)
	}
	if err := os.WriteFile(p.ConfigFile, text.Bytes(), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(p.dir, "output.log"))
	if err != nil {
		return err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = p.dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Its own process group, so that a ^C meant for the test does not stop
	// the proxy in the middle of a request.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %v", p.Kind, err)
	}
	go func() {
		p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return nil
}

// waitListening polls the port until the proxy accepts connections.
func (p *Proxy) waitListening(port int) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v", p.Kind, p.cmd.ProcessState)
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on port %d after %v", p.Kind, port, startTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process (SIGTERM: both proxies shut down fast on it) and
// kills it if it has not exited within ten seconds.
func (p *Proxy) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Log returns what the proxy wrote: its output and, for nginx, its error
// log.
func (p *Proxy) Log() string {
	var out strings.Builder
	for _, name := range []string{"output.log", "error.log"} {
		if b, err := os.ReadFile(filepath.Join(p.dir, name)); err == nil && len(b) > 0 {
			fmt.Fprintf(&out, "--- %s\n%s", name, b)
		}
	}
	return out.String()
}

func (p *Proxy) config() string {
	b, _ := os.ReadFile(p.ConfigFile)
	return string(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// settings fill in a configuration template.
type settings struct {
	Dir    string // the proxy's own directory: pid, logs, temporary files
	Listen string // 127.0.0.1:PORT
	Backends
}
