package service_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUpgradeDroppedByProxy: a WebSocket request that lost its Upgrade
// and Connection headers on the way (it still carries Sec-WebSocket-Key,
// as a proxy that does not pass hop-by-hop headers leaves it) is told that
// a proxy dropped them and shown the nginx lines that fix it; a plain GET
// keeps the usual answer.
func TestUpgradeDroppedByProxy(t *testing.T) {
	t.Parallel()
	_, _, s := start(t, 1, nil)
	get := func(h http.Header) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.HTTPURL("/ws?envelope=true"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// What nginx sends upstream without the upgrade lines.
	status, body := get(http.Header{
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Version": {"13"},
		"Connection":            {"close"},
	})
	for _, want := range []string{
		"a proxy between the client and wsdest dropped them",
		"proxy_http_version 1.1;",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;",
		"map $http_upgrade $connection_upgrade { default upgrade; '' close; }",
	} {
		if status != http.StatusUpgradeRequired || !strings.Contains(body, want) {
			t.Errorf("request without Upgrade: %d %q, want 426 with %q", status, body, want)
		}
	}
	if status, body := get(http.Header{}); status != http.StatusUpgradeRequired || strings.Contains(body, "proxy") {
		t.Errorf("plain GET: %d %q, want the usual 426", status, body)
	}
}
