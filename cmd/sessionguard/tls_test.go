package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// tlsListener serves TLS handshakes with the server's configuration on a
// loopback port, and returns its address and the configuration's ticket
// keys. Each connection is read until the client closes it, so that the
// client receives its session tickets.
func tlsListener(t *testing.T, cert *serverCertificate, legacy bool) (string, *ticketKeys) {
	t.Helper()
	cfg, keys := newTLSConfig(cert, legacy)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), keys
}

// testCertificate writes a self-signed certificate and loads it as the
// server would, with a pool that trusts it.
func testCertificate(t *testing.T) (*serverCertificate, *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool := selfSignedCert(t)
	cert, err := loadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pool
}

// TestTLSCipherSuites: TLS 1.2 is offered with AEAD suites only; a client
// that offers nothing but a CBC suite fails the handshake, unless
// -tls-legacy-ciphers asks for those clients. TLS 1.3 works.
func TestTLSCipherSuites(t *testing.T) {
	cert, pool := testCertificate(t)
	strict, _ := tlsListener(t, cert, false)
	legacy, _ := tlsListener(t, cert, true)
	dial := func(addr string, version uint16, suites ...uint16) (uint16, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: version, MaxVersion: version, CipherSuites: suites})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.ConnectionState().CipherSuite, nil
	}

	for _, cbc := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA} {
		if _, err := dial(strict, tls.VersionTLS12, cbc); err == nil {
			t.Errorf("TLS 1.2 with only %s: the handshake succeeded, want it refused", tls.CipherSuiteName(cbc))
		}
		if got, err := dial(legacy, tls.VersionTLS12, cbc); err != nil || got != cbc {
			t.Errorf("-tls-legacy-ciphers, TLS 1.2 with only %s: %s, %v", tls.CipherSuiteName(cbc), tls.CipherSuiteName(got), err)
		}
	}
	for _, aead := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if got, err := dial(strict, tls.VersionTLS12, aead); err != nil || got != aead {
			t.Errorf("TLS 1.2 with %s: %s, %v", tls.CipherSuiteName(aead), tls.CipherSuiteName(got), err)
		}
	}
	if _, err := dial(strict, tls.VersionTLS13); err != nil {
		t.Errorf("TLS 1.3: %v", err)
	}
	if _, err := dial(strict, tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1: the handshake succeeded")
	}
	for _, s := range intermediateCipherSuites {
		for _, insecure := range tls.InsecureCipherSuites() {
			if s == insecure.ID {
				t.Errorf("%s is offered and Go calls it insecure", insecure.Name)
			}
		}
	}
}

// TestTLSSessionTicketsExpire: a session resumes with its ticket while the
// key that sealed it is kept, and needs a full handshake once
// ticketKeysKept rotations (a day) have passed.
func TestTLSSessionTicketsExpire(t *testing.T) {
	if ticketKeyRotation*ticketKeysKept > 24*time.Hour {
		t.Errorf("tickets live up to %v, want a day at most", ticketKeyRotation*ticketKeysKept)
	}
	cert, pool := testCertificate(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		addr, keys := tlsListener(t, cert, false)
		client := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: version, MaxVersion: version,
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		resumed := func() bool {
			t.Helper()
			c, err := tls.Dial("tcp", addr, client)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// TLS 1.3 sends its tickets after the handshake: a read
			// receives them (and times out, as the server says nothing).
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			var ne net.Error
			if _, err := c.Read(make([]byte, 1)); err != nil && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			return c.ConnectionState().DidResume
		}
		if resumed() {
			t.Fatalf("%s: the first connection resumed", tls.VersionName(version))
		}
		for range ticketKeysKept - 1 {
			keys.rotate()
		}
		if !resumed() {
			t.Errorf("%s: no resumption while the ticket's key is kept", tls.VersionName(version))
		}
		// That connection got a ticket under the newest key: it lasts
		// ticketKeysKept rotations, not one more.
		for range ticketKeysKept {
			keys.rotate()
		}
		if resumed() {
			t.Errorf("%s: resumed with a ticket whose key was rotated out", tls.VersionName(version))
		}
	}
}

// TestCertificateReload: a reload serves the files' new certificate; a
// failed one keeps the old.
func TestCertificateReload(t *testing.T) {
	certFile, keyFile, _ := selfSignedCert(t)
	cert, err := loadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := cert.current.Load()

	newCert, newKey, _ := selfSignedCert(t)
	copyFile(t, newCert, certFile)
	// The key no longer matches the certificate: the reload must fail.
	if err := cert.reload(); err == nil {
		t.Error("reload of a certificate without its key succeeded")
	}
	if cert.current.Load() != first {
		t.Error("a failed reload replaced the certificate")
	}
	copyFile(t, newKey, keyFile)
	if err := cert.reload(); err != nil {
		t.Fatal(err)
	}
	got, _ := cert.getCertificate(nil)
	if got == first || got.Leaf.Equal(first.Leaf) {
		t.Error("the reload kept the old certificate")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
