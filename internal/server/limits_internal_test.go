package server

import (
	"net/http/httptest"
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

// TestClientAddr: behind a trusted proxy the client is the right-most
// X-Forwarded-For entry that is not itself a trusted proxy, whether the
// proxy wrote it as an address or with a port; an entry that is no
// address stops the walk at the peer.
func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "10.0.0.1:80", nil, "10.0.0.1"},
		{"untrusted peer", "192.0.2.9:80", []string{"203.0.113.7"}, "192.0.2.9"},
		{"address", "10.0.0.1:80", []string{"203.0.113.7"}, "203.0.113.7"},
		{"address and port", "10.0.0.1:80", []string{"203.0.113.7:4711"}, "203.0.113.7"},
		{"spaces around", "10.0.0.1:80", []string{" 203.0.113.7:4711 "}, "203.0.113.7"},
		{"v6", "10.0.0.1:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"v6 and port", "10.0.0.1:80", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"v6 in brackets", "10.0.0.1:80", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"v4-mapped v6 and port", "10.0.0.1:80", []string{"[::ffff:203.0.113.7]:4711"}, "203.0.113.7"},
		{"right-most untrusted", "10.0.0.1:80", []string{"198.51.100.1:1, 203.0.113.7:2, 10.0.0.2:3"}, "203.0.113.7"},
		{"trusted v6 hop with port", "10.0.0.1:80", []string{"203.0.113.7, [2001:db8:ffff::5]:443"}, "203.0.113.7"},
		{"several headers", "10.0.0.1:80", []string{"198.51.100.1", "10.0.0.3:9"}, "198.51.100.1"},
		{"name", "10.0.0.1:80", []string{"proxy.example:80"}, "10.0.0.1"},
		{"unknown", "10.0.0.1:80", []string{"unknown"}, "10.0.0.1"},
		{"bad port", "10.0.0.1:80", []string{"203.0.113.7:http"}, "10.0.0.1"},
		{"v6 unbracketed with port", "10.0.0.1:80", []string{"2001:db8::1]:80"}, "10.0.0.1"},
		{"empty brackets", "10.0.0.1:80", []string{"[]"}, "10.0.0.1"},
		{"bad hop before a good one", "10.0.0.1:80", []string{"203.0.113.7, bogus"}, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, trusted); got != netip.MustParseAddr(tt.want) {
				t.Errorf("clientAddr = %v, want %s", got, tt.want)
			}
		})
	}
}
