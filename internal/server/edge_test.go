package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/wsframe"
)

func dialStatus(t *testing.T, url string, opts ...e2etest.DialOption) (int, string) {
	t.Helper()
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	c, err := e2etest.Dial(ctx, url, opts...)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		return http.StatusSwitchingProtocols, ""
	}
	var de *e2etest.DialError
	if !errors.As(err, &de) {
		t.Fatalf("dial %s: %v", url, err)
	}
	return de.Status, de.Body
}

func origin(o string) e2etest.DialOption {
	return e2etest.WithHeader(http.Header{"Origin": {o}})
}

func TestOrigins(t *testing.T) {
	f := newServer(t, server.Config{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org", "http://localhost:3000"}})
	tests := []struct {
		origin string // "" = no Origin header
		want   int
	}{
		{"", 101},
		{"https://app.example.com", 101},
		{"HTTPS://APP.EXAMPLE.COM", 101},
		{"https://a.example.org", 101},
		{"https://a.b.example.org", 101},
		{"http://localhost:3000", 101},
		{"https://example.org", 403},                                  // the pattern wants a subdomain
		{"http://a.example.org", 403},                                 // other scheme
		{"https://a.example.org:8443", 403},                           // other port
		{"https://other.example.com", 403},                            // not listed
		{"https://app.example.com.evil.io", 403},                      // listed name as a prefix
		{"https://a.example.org.evil.io", 403},                        // pattern as a prefix
		{"https://evil.io/.example.org", 403},                         // path smuggling
		{"https://evil.io@a.example.org", 403},                        // userinfo smuggling
		{"http://localhost:3001", 403},                                // other port
		{"null", 403},                                                 // sandboxed page
		{"https://app.example.com/", 403},                             // not an origin
		{"https://xapp.example.com", 403},                             // exact means exact
		{"https://evilexample.org", 403},                              // no dot before the suffix
		{"https://" + strings.Repeat("a", 200) + ".example.org", 101}, // long but fine
		{"SAME", 101},                                                 // the server's own origin (its viewer page)
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			var opts []e2etest.DialOption
			if tt.origin == "SAME" {
				opts = append(opts, origin("http://"+strings.TrimPrefix(f.url, "ws://")))
			} else if tt.origin != "" {
				opts = append(opts, origin(tt.origin))
			}
			if got, body := dialStatus(t, f.url+"/ws", opts...); got != tt.want {
				t.Errorf("status %d (%q), want %d", got, body, tt.want)
			}
		})
	}
	if n := f.srv.Rejections()[server.RejectOrigin]; n != 13 {
		t.Errorf("origin rejections counted: %d, want 13", n)
	}
}

func TestSubscriptionLimits(t *testing.T) {
	f := newServer(t, server.Config{MaxSubscriptionKeys: 3, MaxKeyLength: 10})
	tests := []struct {
		target string
		want   int
		body   string
	}{
		{"/ws?key=a&key=b&key=c", 101, ""},
		{"/ws/a?key=b&key=c", 101, ""},
		{"/ws?key=a&key=b&key=c&key=d", 400, "4 keys and patterns requested, at most 3 allowed (MAX_SUBSCRIPTION_KEYS)"},
		{"/ws/0123456789", 101, ""},
		{"/ws/0123456789a", 400, "a key or pattern of 11 bytes requested, at most 10 allowed (MAX_KEY_LENGTH)"},
		{"/ws?key=" + strings.Repeat("*a", 6), 400, "(MAX_KEY_LENGTH)"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			got, body := dialStatus(t, f.url+tt.target)
			if got != tt.want || !strings.Contains(body, tt.body) {
				t.Errorf("status %d %q, want %d %q", got, body, tt.want, tt.body)
			}
		})
	}
}

// TestReservedPaths: operational paths are never subscriptions, and a key
// with such a name is still reachable under /ws/.
func TestReservedPaths(t *testing.T) {
	f := newServer(t, server.Config{})
	for _, p := range []string{"/metrics", "/healthz", "/stats", "/sse", "/sse/k", "/_wsdest/x.js", "/_wsdest"} {
		if got, _ := dialStatus(t, f.url+p); got == http.StatusSwitchingProtocols {
			t.Errorf("upgrade on %s subscribed, want 404 (or the endpoint's own answer)", p)
		}
	}
	for _, k := range []string{"metrics", "healthz", "sse", "_wsdest"} {
		c := e2etest.Connect(t, f.url+"/ws/"+k)
		f.publish(k, `1`)
		if got := c.Next(t); string(got) != "1" {
			t.Errorf("/ws/%s got %s", k, got)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/stats", "/metrics", "/sse/x", "/_wsdest/a"} {
		if !server.Reserved(p) {
			t.Errorf("Reserved(%q) = false", p)
		}
	}
	for _, p := range []string{"/ws", "/ws/metrics", "/metricsx", "/ssex", "/car-1", "/"} {
		if server.Reserved(p) {
			t.Errorf("Reserved(%q) = true", p)
		}
	}
}

// TestConnectionLimits holds connections from 127.0.0.1 and 127.0.0.2:
// each address is held to its own limit, the whole server to the global
// one, and a slot frees up when its client goes.
func TestConnectionLimits(t *testing.T) {
	f := newServer(t, server.Config{MaxConnections: 5, MaxConnectionsPerIP: 3})
	from1, from2 := e2etest.FromIP("127.0.0.1"), e2etest.FromIP("127.0.0.2")
	var held []*e2etest.Client
	for range 3 {
		held = append(held, e2etest.Connect(t, f.url+"/ws", from1))
	}
	code, body := dialStatus(t, f.url+"/ws", from1)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "MAX_CONNECTIONS_PER_IP") {
		t.Errorf("4th from 127.0.0.1: %d %q, want 429", code, body)
	}
	e2etest.Connect(t, f.url+"/ws", from2)
	e2etest.Connect(t, f.url+"/ws", from2)
	code, body = dialStatus(t, f.url+"/ws", from2)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "MAX_CONNECTIONS") {
		t.Errorf("6th connection: %d %q, want 503", code, body)
	}
	// The health endpoints are not clients and keep answering.
	if code, _ := get(t, "http"+strings.TrimPrefix(f.url, "ws")+"/healthz"); code != 200 {
		t.Errorf("/healthz at the limit: %d", code)
	}
	held[0].Close()
	e2etest.Eventually(t, "the slot to free up", func() bool { return f.srv.Clients() == 4 })
	e2etest.Connect(t, f.url+"/ws", from1)
	rej := f.srv.Rejections()
	if rej[server.RejectMaxConnectionsPerIP] != 1 || rej[server.RejectMaxConnections] != 1 {
		t.Errorf("rejections: %v", rej)
	}
	if l := f.log.Lines("clients rejected"); len(l) != 2 || !strings.Contains(l[0], "level=WARN") {
		t.Errorf("warnings: %q, want one per limit", l)
	}
}

// TestRetryAfter: an over-limit answer tells the client when to retry.
func TestRetryAfter(t *testing.T) {
	f := newServer(t, server.Config{MaxConnections: 1})
	e2etest.Connect(t, f.url+"/ws")
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "http"+strings.TrimPrefix(f.url, "ws")+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestTrustedProxies(t *testing.T) {
	f := newServer(t, server.Config{MaxConnectionsPerIP: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	xff := func(v string) e2etest.DialOption { return e2etest.WithHeader(http.Header{"X-Forwarded-For": {v}}) }
	// Two clients behind the proxy at 127.0.0.1 are different addresses.
	e2etest.Connect(t, f.url+"/ws", xff("203.0.113.7"))
	e2etest.Connect(t, f.url+"/ws", xff("198.51.100.1, 203.0.113.8"))
	if code, _ := dialStatus(t, f.url+"/ws", xff("203.0.113.7")); code != 429 {
		t.Errorf("second client of 203.0.113.7: %d, want 429", code)
	}
	// Some proxies write the client's port too: still one address each.
	e2etest.Connect(t, f.url+"/ws", xff("203.0.113.11:50000"))
	e2etest.Connect(t, f.url+"/ws", xff("[2001:db8::11]:50000"))
	if code, _ := dialStatus(t, f.url+"/ws", xff("203.0.113.11:50001")); code != 429 {
		t.Errorf("second client of 203.0.113.11 on another port: %d, want 429", code)
	}
	if code, _ := dialStatus(t, f.url+"/ws", xff("[2001:db8::11]:50001")); code != 429 {
		t.Errorf("second client of 2001:db8::11 on another port: %d, want 429", code)
	}
	if l := f.log.Lines("203.0.113.11 via 127.0.0.1"); len(l) == 0 {
		t.Errorf("log does not name the forwarded client 203.0.113.11")
	}
	// An untrusted peer's header is ignored: 127.0.0.2 is its own address.
	e2etest.Connect(t, f.url+"/ws", e2etest.FromIP("127.0.0.2"), xff("203.0.113.9"))
	if code, _ := dialStatus(t, f.url+"/ws", e2etest.FromIP("127.0.0.2"), xff("203.0.113.10")); code != 429 {
		t.Errorf("spoofed header from an untrusted peer: %d, want 429", code)
	}
	if l := f.log.Lines("via 127.0.0.1"); len(l) == 0 {
		t.Errorf("log does not name the forwarded client")
	}
}

func TestFileBudget(t *testing.T) {
	tests := []struct{ nofile, clients, http int }{
		{1 << 20, 1<<20 - 1024, 512},
		{1024, 896, 64},
		{256, 192, 32},
		{100, 36, 32},
	}
	for _, tt := range tests {
		c, h := server.FileBudget(tt.nofile)
		if c != tt.clients || h != tt.http {
			t.Errorf("FileBudget(%d) = %d, %d; want %d, %d", tt.nofile, c, h, tt.clients, tt.http)
		}
	}
}

// TestClientCloseCodes: a client that closes with a registered code (the
// IANA registry's 1012-1014 included) or an application's is answered with
// 1000; an unassigned code is a protocol error (1002).
func TestClientCloseCodes(t *testing.T) {
	f := newServer(t, server.Config{})
	tests := []struct {
		code   uint16
		answer uint16
		reason string
	}{
		{1000, wsframe.CloseNormal, ""},
		{1001, wsframe.CloseNormal, ""},
		{1012, wsframe.CloseNormal, ""},
		{1013, wsframe.CloseNormal, ""},
		{1014, wsframe.CloseNormal, ""},
		{4000, wsframe.CloseNormal, ""},
		{1015, wsframe.CloseProtocolError, wsframe.ReasonInvalidCloseCode},
		{1016, wsframe.CloseProtocolError, wsframe.ReasonInvalidCloseCode},
	}
	for _, tt := range tests {
		c := e2etest.Connect(t, f.url+"/ws")
		if err := c.WriteRaw(e2etest.MaskedFrame(true, 0x8, wsframe.Close(tt.code, "bye")[2:])); err != nil {
			t.Fatal(err)
		}
		c.ExpectClose(t, tt.answer, tt.reason)
	}
}

// TestInvalidUTF8 sends a text message that is not UTF-8: the client is
// closed with 1007 (RFC 6455 §8.1); a binary one with the same bytes is
// fine.
func TestInvalidUTF8(t *testing.T) {
	f := newServer(t, server.Config{})
	bin := e2etest.Connect(t, f.url+"/ws")
	if err := bin.WriteRaw(e2etest.MaskedFrame(true, 0x2, []byte("\xff\xfe"))); err != nil {
		t.Fatal(err)
	}
	c := e2etest.Connect(t, f.url+"/ws")
	if err := c.WriteRaw(e2etest.MaskedFrame(false, 0x1, []byte("ok \xe2\x9c"))); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteRaw(e2etest.MaskedFrame(true, 0x0, []byte("\x93 fine, then \xc0\xaf"))); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(t, wsframe.CloseInvalidPayload, "invalid UTF-8 in text message")
	f.publish("k", `1`)
	if got := bin.Next(t); string(got) != "1" {
		t.Errorf("binary sender got %s", got)
	}
}

// TestInvalidUTF8AtOnce: a text message whose bytes so far can never
// become UTF-8 closes its client with 1007 at once, also when the bad
// sequence spans two fragments: the close arrives while the message is
// still open, its final fragment never sent.
func TestInvalidUTF8AtOnce(t *testing.T) {
	f := newServer(t, server.Config{})
	tests := []struct{ name, first, second string }{
		{"above U+10FFFF", "ok \xf4", "\x90"},
		{"surrogate", "ok \xed", "\xa0"},
		{"lone C0", "ok", " \xc0"},
		{"F5", "ok \xf5", ""},
		{"FF", "", "ok \xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e2etest.Connect(t, f.url+"/ws")
			if err := c.WriteRaw(e2etest.MaskedFrame(false, 0x1, []byte(tt.first))); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteRaw(e2etest.MaskedFrame(false, 0x0, []byte(tt.second))); err != nil {
				t.Fatal(err)
			}
			c.ExpectClose(t, wsframe.CloseInvalidPayload, wsframe.ReasonInvalidUTF8)
		})
	}
}

// TestRejectLogLimited: a flood of bad credentials is logged at debug at
// most rejectDebugBurst lines a second, and warned about once.
func TestRejectLogLimited(t *testing.T) {
	f := newServer(t, server.Config{Auth: authorizer{}})
	server.FreezeRejectClock(f.srv, time.Now())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const n = 150
	for i := range n {
		c, err := e2etest.Dial(ctx, f.url+"/ws?token=bad"+fmt.Sprint(i), e2etest.NoSync())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	e2etest.Eventually(t, "every rejection counted", func() bool { return f.srv.Rejections()[server.RejectUnauthorized] == n })
	debug := f.log.Lines("client rejected: credential not accepted")
	if len(debug) != 10 {
		t.Errorf("%d debug lines for %d rejections within a second, want 10", len(debug), n)
	}
	if w := f.log.Lines("level=WARN msg=\"clients rejected\" reason=auth"); len(w) != 1 {
		t.Errorf("flood warnings: %q, want 1", w)
	}
	if strings.Contains(f.log.String(), "token=bad") {
		t.Error("the log shows what the client sent")
	}
}

func TestPerIPKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.2", "127.0.0.2"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::"},
		{"2001:db8:1:3::1", "2001:db8:1:3::"},
		{"::1", "::"},
	}
	for _, tt := range tests {
		if got := server.PerIPKey(netip.MustParseAddr(tt.in)); got.String() != tt.want {
			t.Errorf("PerIPKey(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
