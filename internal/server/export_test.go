package server

import (
	"net/netip"
	"time"
)

// FreezeRejectClock stops the rejection log's clock at t, so that its rate
// limits can be checked without depending on how fast the test runs.
func FreezeRejectClock(s *Server, t time.Time) { s.rejects.now = func() time.Time { return t } }

// PerIPKey exposes perIPKey.
func PerIPKey(ip netip.Addr) netip.Addr { return perIPKey(ip) }
