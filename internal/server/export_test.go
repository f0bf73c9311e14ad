package server

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"time"
)

// FreezeRejectClock stops the rejection log's clock at t, so that its rate
// limits can be checked without depending on how fast the test runs.
func FreezeRejectClock(s *Server, t time.Time) { s.rejects.now = func() time.Time { return t } }

// Clients returns the number of clients holding a connection slot.
func (s *Server) Clients() int64 { return s.limits.open.Load() }

// Current returns the certificate pair in use.
func (c *Certificates) Current() *tls.Certificate { return c.cur.Load() }

// PerIPKey exposes perIPKey.
func PerIPKey(ip netip.Addr) netip.Addr { return perIPKey(ip) }

// GuardStream exposes guardStream.
func GuardStream(r *http.Request) func() { return guardStream(r) }

// SetGuardClock makes g read the time from now.
func SetGuardClock(g *ConnGuard, now func() time.Time) { g.now = now }
