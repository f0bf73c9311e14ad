package server

import (
	"net/netip"
	"testing"
)

// TestTallies: the clients from one address share one tally, which goes
// once the last of them gives its slot back; without a per-address limit
// every client holds the shared one and nothing is kept per address.
func TestTallies(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	l := newLimits(4, 2)
	t1, why1 := l.acquire(a)
	t2, why2 := l.acquire(a)
	t3, why3 := l.acquire(b)
	if why1 != "" || why2 != "" || why3 != "" || t1 != t2 || t1 == t3 {
		t.Fatalf("acquire: %q %q %q; tallies shared %v, %v", why1, why2, why3, t1 == t2, t1 == t3)
	}
	if _, why := l.acquire(a); why != RejectMaxConnectionsPerIP {
		t.Errorf("third from %v: %q, want %q", a, why, RejectMaxConnectionsPerIP)
	}
	t4, _ := l.acquire(netip.MustParseAddr("192.0.2.3"))
	if _, why := l.acquire(netip.MustParseAddr("192.0.2.4")); why != RejectMaxConnections {
		t.Errorf("fifth client: %q, want %q", why, RejectMaxConnections)
	}
	t4.release()
	t1.release()
	if len(l.byIP) != 2 || l.open.Load() != 2 {
		t.Errorf("after one release: %d addresses, %d open; want 2, 2", len(l.byIP), l.open.Load())
	}
	t2.release()
	t3.release()
	if len(l.byIP) != 0 || l.open.Load() != 0 {
		t.Errorf("after every release: %d addresses, %d open; want 0, 0", len(l.byIP), l.open.Load())
	}

	l = newLimits(0, 0)
	s1, _ := l.acquire(a)
	s2, _ := l.acquire(b)
	if s1 != &l.shared || s2 != &l.shared || len(l.byIP) != 0 || l.open.Load() != 2 {
		t.Errorf("no per-address limit: tallies %p %p (shared %p), %d addresses, %d open", s1, s2, &l.shared, len(l.byIP), l.open.Load())
	}
	s1.release()
	s2.release()
	if l.open.Load() != 0 {
		t.Errorf("%d open after every release", l.open.Load())
	}
}
