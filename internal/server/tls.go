package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCertReloadEvery is how often Certificates.Run looks at the
// certificate files for a change.
const DefaultCertReloadEvery = 2 * time.Second

// Certificates serves a certificate and key pair read from two PEM files,
// and picks up replaced files without a restart: connected clients keep
// their connections, new handshakes get the new pair. A pair that does not
// load (half-written, mismatched, not PEM) is ignored: the last good pair
// stays in use and the failure is logged once per change of the files.
//
// GetCertificate is safe for concurrent use; Reload and Run are called from
// one goroutine at a time.
type Certificates struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate] // the pair handshakes use

	mu     sync.Mutex
	loaded fileStamp // files of the pair in use; guarded by mu
	failed failure   // the last failure logged; guarded by mu
}

type failure struct {
	stamp fileStamp
	msg   string
}

// fileStamp identifies a version of the two files by size and time of last
// modification (nanoseconds on Linux), through symbolic links, so that
// Kubernetes' swap of a secret volume's ..data link counts as a change.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func stampOf(certFile, keyFile string) (fileStamp, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return fileStamp{}, err
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// LoadCertificates reads the pair; unlike a reload, a pair that does not
// load at start-up is an error.
func LoadCertificates(certFile, keyFile string, log *slog.Logger) (*Certificates, error) {
	c := &Certificates{certFile: certFile, keyFile: keyFile, log: log}
	st, err := stampOf(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c.cur.Store(cert)
	c.loaded = st
	log.Info("tls certificate loaded", certAttrs(cert)...)
	c.warnExpiry(cert)
	return c, nil
}

// ExpiryWarning is how long before its expiry a certificate being loaded
// gets a warning.
const ExpiryWarning = 14 * 24 * time.Hour

func (c *Certificates) warnExpiry(cert *tls.Certificate) {
	switch left := time.Until(cert.Leaf.NotAfter); {
	case left <= 0:
		c.log.Warn("tls certificate has expired: clients will refuse it", certAttrs(cert)...)
	case left < ExpiryWarning:
		c.log.Warn("tls certificate expires soon", append(certAttrs(cert), "left", left.Round(time.Hour).String())...)
	}
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate pair: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
	}
	return &cert, nil
}

func certAttrs(c *tls.Certificate) []any {
	return []any{"subject", c.Leaf.Subject.String(), "dns_names", c.Leaf.DNSNames,
		"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339)}
}

// GetCertificate is the tls.Config hook.
func (c *Certificates) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Reload loads the files if they changed since the pair in use was loaded,
// and reports whether the pair in use changed.
func (c *Certificates) Reload() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := stampOf(c.certFile, c.keyFile)
	if err == nil && st == c.loaded {
		c.failed = failure{}
		return false
	}
	if err == nil && st == c.failed.stamp && c.failed.msg != "" {
		return false // this version of the files already failed
	}
	var cert *tls.Certificate
	if err == nil {
		cert, err = loadPair(c.certFile, c.keyFile)
	}
	if err != nil {
		if f := (failure{st, err.Error()}); f != c.failed {
			c.failed = f
			c.log.Warn("tls certificate files changed but do not load; keeping the previous certificate",
				"cert_file", c.certFile, "key_file", c.keyFile, "err", err)
		}
		return false
	}
	c.cur.Store(cert)
	c.loaded, c.failed = st, failure{}
	c.log.Info("tls certificate reloaded", certAttrs(cert)...)
	c.warnExpiry(cert)
	return true
}

// Run calls Reload every `every` (DefaultCertReloadEvery if ≤ 0) until ctx
// ends. It returns nil.
func (c *Certificates) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = DefaultCertReloadEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.Reload()
		}
	}
}

// TLSConfig returns the listener's TLS settings: TLS 1.2 or later, the
// certificate from c, and ALPN offering HTTP/2 and HTTP/1.1 (WebSocket
// clients ask for HTTP/1.1; the HTTP endpoints are served over either).
func (c *Certificates) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// tcpConn returns the TCP socket under conn, which may be a *tls.Conn
// (over a feedConn).
func tcpConn(conn net.Conn) (*net.TCPConn, bool) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if fc, ok := conn.(*feedConn); ok {
		return fc.TCPConn, true
	}
	tc, ok := conn.(*net.TCPConn)
	return tc, ok
}
