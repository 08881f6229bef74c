package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// intermediateCipherSuites are the TLS 1.2 cipher suites the server offers:
// those of Mozilla's "intermediate" server configuration that Go
// implements, ECDHE key exchange with AEAD ciphers only (AES-GCM and
// ChaCha20-Poly1305), the strongest first. Go's own default adds CBC suites
// with SHA-1 MACs, which scanners rightly flag. TLS 1.3 needs no list: its
// suites are all AEAD, and Go does not let them be configured.
var intermediateCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// legacyCipherSuites are what -tls-legacy-ciphers offers: the intermediate
// suites, then the ECDHE suites with AES-CBC that Go still offers by
// default, for clients from before AES-GCM was common (about 2014: Android
// 4.x, Java 7, Internet Explorer on Windows 7 with an RSA certificate).
var legacyCipherSuites = append(intermediateCipherSuites[:len(intermediateCipherSuites):len(intermediateCipherSuites)],
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
)

// Session tickets let a returning browser resume its TLS session without a
// full handshake. Go's server makes a new ticket key every day but accepts
// tickets under each for a week, and a TLS 1.2 resumption has no forward
// secrecy: whoever obtains a ticket key can decrypt every connection resumed
// with it. So the server makes its own keys, a new one every
// ticketKeyRotation, and keeps ticketKeysKept of them: a ticket resumes a
// session for a day at most after its key was made, as Mozilla's guidelines
// ask, while browsers still skip most full handshakes. (Turning tickets off
// would cost every new connection a full handshake: Go's server keeps no
// session cache.)
const (
	ticketKeyRotation = 8 * time.Hour
	ticketKeysKept    = 3
)

// serverCertificate is the certificate the server presents, reloaded from
// its files on SIGHUP. Handshakes read it through GetCertificate, so a
// reload applies to every connection made after it.
type serverCertificate struct {
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// loadCertificate loads the key pair in certFile and keyFile.
func loadCertificate(certFile, keyFile string) (*serverCertificate, error) {
	c := &serverCertificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again and, if they hold a valid key pair, serves
// it from now on; otherwise the certificate in use stays.
func (c *serverCertificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading -tls-cert %s and -tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	c.current.Store(&pair)
	return nil
}

// getCertificate is the tls.Config's GetCertificate.
func (c *serverCertificate) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// describe returns log attributes that name the certificate in use.
func (c *serverCertificate) describe() []any {
	leaf := c.current.Load().Leaf
	if leaf == nil {
		return nil
	}
	names := leaf.DNSNames
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return []any{"subject", leaf.Subject.String(), "names", strings.Join(names, ","),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "serial", leaf.SerialNumber.String()}
}

// newTLSConfig returns the server's TLS configuration, TLS 1.2 and 1.3
// with the intermediate suites (or the legacy ones) and HTTP/2, presenting
// cert's certificate, and its session ticket keys, which the caller rotates
// (ticketKeys.rotateEvery).
func newTLSConfig(cert *serverCertificate, legacyCiphers bool) (*tls.Config, *ticketKeys) {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   intermediateCipherSuites,
		GetCertificate: cert.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if legacyCiphers {
		cfg.CipherSuites = legacyCipherSuites
	}
	keys := &ticketKeys{config: cfg}
	keys.rotate()
	return cfg, keys
}

// ticketKeys are the session ticket keys of one tls.Config, the newest
// (the one that encrypts new tickets) first.
type ticketKeys struct {
	config *tls.Config
	keys   [][32]byte
}

// rotate makes a new key for new tickets and forgets the oldest beyond
// ticketKeysKept, whose tickets then start a full handshake.
func (k *ticketKeys) rotate() {
	var key [32]byte
	rand.Read(key[:]) // never fails: see crypto/rand.Read
	k.keys = append([][32]byte{key}, k.keys[:min(len(k.keys), ticketKeysKept-1)]...)
	k.config.SetSessionTicketKeys(k.keys)
}

// rotateEvery rotates the keys every interval until ctx is done.
func (k *ticketKeys) rotateEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			k.rotate()
		case <-ctx.Done():
			return
		}
	}
}

// logTLS logs the TLS settings worth knowing at start.
func logTLS(cfg *serveConfig, cert *serverCertificate, log *slog.Logger) {
	log.Info("serving HTTPS", cert.describe()...)
	if cfg.TLSLegacyCiphers {
		log.Warn("-tls-legacy-ciphers: TLS 1.2 also offers CBC cipher suites with SHA-1 MACs, for clients older than about 2014; turn it off once they are gone")
	}
}
