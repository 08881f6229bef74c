package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Connections that outlive one response through reverse-proxy mode:
// WebSocket and server-sent events. Both sides speak the protocols by
// hand, so that nothing but sessionguard sits between them.

// rpStreamTimeout bounds each step of these tests: a step that waits this
// long is a proxy that buffers or hangs, not a slow machine.
const rpStreamTimeout = 15 * time.Second

// TestReverseProxyWebSocket: a signed-in browser's WebSocket reaches the
// upstream, authorised at the upgrade, and a message makes the round trip;
// an upgrade without a session is refused and never reaches the upstream.
func TestReverseProxyWebSocket(t *testing.T) {
	up := newRPUpstream(t)
	echoed := make(chan error, 1)
	up.mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		err := rpEchoOnce(w, r)
		select {
		case echoed <- err:
		default:
		}
	})
	s := startReverseProxy(t, up)
	b := s.browser()
	b.login(t, "alice", alicePassword)

	conn, resp, key := rpDialWebSocket(t, s, "/ws", b.token)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket upgrade signed in: %d %s, want 101", resp.StatusCode, resp.Status)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), rpWebSocketAccept(key); got != want {
		t.Errorf("WebSocket upgrade: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	got := up.last(t)
	if got.Header.Get("Remote-User") != "alice" {
		t.Errorf("the upgrade reached the upstream with Remote-User %q, want alice", got.Header.Get("Remote-User"))
	}
	rpExpectNoSessionCookie(t, "the WebSocket upgrade", got, b.token)

	const message = "hello through sessionguard"
	if err := rpWriteFrame(conn, 0x1, []byte(message), true); err != nil {
		t.Fatalf("sending a WebSocket frame: %v", err)
	}
	op, payload, masked, err := rpReadFrame(conn.r)
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if op != 0x1 || string(payload) != message || masked {
		t.Errorf("the echo: opcode %#x, %q, masked %v; want a text frame %q, unmasked", op, payload, masked, message)
	}
	select {
	case err := <-echoed:
		if err != nil {
			t.Errorf("the upstream's side of the WebSocket: %v", err)
		}
	case <-time.After(rpStreamTimeout):
		t.Errorf("the upstream's echo handler did not finish within %v", rpStreamTimeout)
	}

	n := up.count()
	_, resp, _ = rpDialWebSocket(t, s, "/ws", "")
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusFound {
		t.Errorf("WebSocket upgrade without a session: %d, want 401 (or 302 to sign in)", resp.StatusCode)
	}
	up.expectNotCalledSince(t, n, "a WebSocket upgrade without a session")
}

// rpConn is a client's connection with its buffered reader, which may
// hold bytes read past the upgrade response.
type rpConn struct {
	net.Conn
	r *bufio.Reader
}

// rpDialWebSocket sends a browser's WebSocket upgrade for path to s, with
// the session token unless it is "", and returns the connection, the
// response (its body unread) and the key sent. The connection is closed
// when the test ends; every read and write on it has a deadline.
func rpDialWebSocket(t *testing.T, s *rpServer, path, token string) (*rpConn, *http.Response, string) {
	t.Helper()
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, rpStreamTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(rpStreamTimeout))
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, u.Host)
	fmt.Fprintf(&req, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	fmt.Fprintf(&req, "Origin: %s\r\nSec-Fetch-Dest: websocket\r\nSec-Fetch-Mode: websocket\r\nSec-Fetch-Site: same-origin\r\n", s.url)
	if token != "" {
		fmt.Fprintf(&req, "Cookie: %s=%s\r\n", s.cookie, token)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatalf("sending the WebSocket upgrade: %v", err)
	}
	conn := &rpConn{Conn: c, r: bufio.NewReader(c)}
	resp, err := http.ReadResponse(conn.r, nil)
	if err != nil {
		t.Fatalf("reading the answer to the WebSocket upgrade: %v", err)
	}
	return conn, resp, key
}

// rpEchoOnce is the upstream's WebSocket endpoint (RFC 6455): it accepts
// the upgrade, reads one frame, which a client must mask, and sends its
// payload back in a frame of the same type, unmasked, as a server must.
func rpEchoOnce(w http.ResponseWriter, r *http.Request) error {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !rpHasToken(r.Header, "Connection", "upgrade") ||
		r.Header.Get("Sec-WebSocket-Version") != "13" || r.Header.Get("Sec-WebSocket-Key") == "" {
		http.Error(w, "not a WebSocket upgrade", http.StatusBadRequest)
		return fmt.Errorf("not a WebSocket upgrade: Upgrade %q, Connection %q, Sec-WebSocket-Version %q",
			r.Header.Get("Upgrade"), r.Header.Values("Connection"), r.Header.Get("Sec-WebSocket-Version"))
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(rpStreamTimeout))
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		rpWebSocketAccept(r.Header.Get("Sec-WebSocket-Key")))
	if err := rw.Flush(); err != nil {
		return err
	}
	op, payload, masked, err := rpReadFrame(rw.Reader)
	if err != nil {
		return fmt.Errorf("reading the client's frame: %w", err)
	}
	if !masked {
		return errors.New("the client's frame arrived unmasked")
	}
	return rpWriteFrame(conn, op, payload, false)
}

// rpHasToken reports whether the comma-separated header name holds token.
func rpHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// rpWebSocketAccept is the Sec-WebSocket-Accept answer to key.
func rpWebSocketAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// rpWriteFrame writes one final frame with a payload of at most 125
// bytes, masked with a random key when masked.
func rpWriteFrame(w io.Writer, opcode byte, payload []byte, masked bool) error {
	if len(payload) > 125 {
		return fmt.Errorf("a payload of %d bytes needs an extended length", len(payload))
	}
	frame := []byte{0x80 | opcode, byte(len(payload))}
	if !masked {
		frame = append(frame, payload...)
	} else {
		frame[1] |= 0x80
		var key [4]byte
		rand.Read(key[:])
		frame = append(frame, key[:]...)
		for i, c := range payload {
			frame = append(frame, c^key[i%4])
		}
	}
	_, err := w.Write(frame)
	return err
}

// rpReadFrame reads one final frame and returns its opcode, its payload
// (unmasked) and whether it was masked.
func rpReadFrame(r io.Reader) (opcode byte, payload []byte, masked bool, err error) {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, false, err
	}
	if head[0]&0x80 == 0 {
		return 0, nil, false, errors.New("a fragmented frame")
	}
	opcode, masked = head[0]&0x0f, head[1]&0x80 != 0
	n := uint64(head[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, false, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, false, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > 1<<20 {
		return 0, nil, false, fmt.Errorf("a frame of %d bytes", n)
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, false, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, false, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return opcode, payload, masked, nil
}

// TestReverseProxyServerSentEvents: an event stream arrives as the
// upstream writes it: the first event reaches the browser while the
// upstream still holds the second back.
func TestReverseProxyServerSentEvents(t *testing.T) {
	up := newRPUpstream(t)
	release := make(chan struct{})
	releaseSecond := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseSecond) // runs before the upstream closes, which waits for its handlers
	up.mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		io.WriteString(w, "data: 1\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: 2\n\n")
	})
	s := startReverseProxy(t, up)
	b := s.browser()
	b.login(t, "alice", alicePassword)

	// EventSource's request.
	r := b.newRequest("GET", "/events", nil)
	r.Header.Set("Accept", "text/event-stream")
	r.Header.Set("Cache-Control", "no-cache")
	r.Header.Set("Sec-Fetch-Mode", "cors")
	r.Header.Set("Sec-Fetch-Dest", "empty")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.AddCookie(&http.Cookie{Name: s.cookie, Value: b.token})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var resp *http.Response
	var events *bufio.Reader
	rpWithTimeout(t, rpStreamTimeout, "the first event, while the upstream holds the second back", func() error {
		var err error
		if resp, err = rpClient.Do(r.WithContext(ctx)); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return fmt.Errorf("%d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		events = bufio.NewReader(resp.Body)
		return rpExpectEvent(events, "1")
	})
	defer resp.Body.Close()
	// The first event is in: let the upstream write the second.
	releaseSecond()
	rpWithTimeout(t, rpStreamTimeout, "the second event", func() error {
		if err := rpExpectEvent(events, "2"); err != nil {
			return err
		}
		if rest, err := io.ReadAll(events); err != nil || len(rest) != 0 {
			return fmt.Errorf("after the last event: %q, %v; want the end of the stream", rest, err)
		}
		return nil
	})
}

// rpExpectEvent reads one event and checks that its data is want.
func rpExpectEvent(r *bufio.Reader, want string) error {
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading event %q: %v (read %q)", want, err, line)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "data:"); ok {
			data = append(data, strings.TrimPrefix(v, " "))
		}
	}
	if got := strings.Join(data, "\n"); got != want {
		return fmt.Errorf("event data %q, want %q", got, want)
	}
	return nil
}
