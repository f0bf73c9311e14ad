package server_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/netpoll"
	"github.com/wsdest/wsdest/internal/server"
)

// request sends a GET (or method) for path with the given Accept header
// and returns status, content type and body.
func request(t *testing.T, method, u, accept string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

const chromeAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

func TestViewerRoutes(t *testing.T) {
	f := newServer(t, server.Config{})
	base := "http" + strings.TrimPrefix(f.url, "ws")
	tests := []struct {
		method, path, accept string
		status               int
		want                 string // substring of the body
	}{
		{"GET", "/", chromeAccept, 200, "<title>wsdest viewer</title>"},
		{"GET", "/sensor-1", chromeAccept, 200, "<title>wsdest viewer</title>"},
		{"GET", "/ws", chromeAccept, 200, "<title>wsdest viewer</title>"},
		{"GET", "/ws/sensor-*?envelope=false", chromeAccept, 200, "<title>wsdest viewer</title>"},
		{"GET", "/", "application/xhtml+xml", 200, "<title>wsdest viewer</title>"},
		{"HEAD", "/", chromeAccept, 200, ""},
		// Everyone else keeps the 426 answer.
		{"GET", "/", "", 426, "WebSocket"},
		{"GET", "/", "*/*", 426, "WebSocket"},
		{"GET", "/ws/x", "application/json", 426, "WebSocket"},
		{"GET", "/", "text/html;q=0", 426, "WebSocket"},
		{"POST", "/", chromeAccept, 426, "WebSocket"},
		// Operational paths are not the viewer's.
		{"GET", "/healthz", chromeAccept, 200, "ok"},
		// Assets.
		{"GET", "/_wsdest/viewer.js", "", 200, "wsdestViewer"},
		{"GET", "/_wsdest/viewer.css", "", 200, "--accent"},
		{"GET", "/_wsdest/uplot/uPlot.iife.min.js", "", 200, "uPlot"},
		{"GET", "/_wsdest/uplot/LICENSE", "", 200, "MIT"},
		{"GET", "/_wsdest/nope.js", chromeAccept, 404, ""},
		{"GET", "/_wsdest/", chromeAccept, 404, ""},
		{"GET", "/_wsdest/index.html", chromeAccept, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.accept, func(t *testing.T) {
			status, _, body := request(t, tt.method, base+tt.path, tt.accept)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("= %d %.80q, want %d with %q", status, body, tt.status, tt.want)
			}
		})
	}
}

func TestViewerHeaders(t *testing.T) {
	f := newServer(t, server.Config{})
	base := "http" + strings.TrimPrefix(f.url, "ws")
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/?token=secret", nil)
	req.Header.Set("Accept", chromeAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "connect-src 'self'") || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("page headers: %v", h)
	}

	resp, err = http.Get(base + "/_wsdest/viewer.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("asset headers: %v", resp.Header)
	}
	req, _ = http.NewRequestWithContext(t.Context(), "GET", base+"/_wsdest/viewer.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d, want 304", etag, resp.StatusCode)
	}
}

// TestClientModule: the JavaScript client and its types are served with
// their types, and to pages of any origin (a cross-origin ES module import
// is a CORS request); the viewer's own files are not.
func TestClientModule(t *testing.T) {
	f := newServer(t, server.Config{})
	base := "http" + strings.TrimPrefix(f.url, "ws")
	tests := []struct {
		path, contentType, cors, want string
	}{
		{"/_wsdest/client.js", "text/javascript; charset=utf-8", "*", "export function connect("},
		{"/_wsdest/client.d.ts", "application/typescript; charset=utf-8", "*", "export function connect("},
		{"/_wsdest/viewer.js", "text/javascript; charset=utf-8", "", "wsdestViewer"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", base+tt.path, nil)
			req.Header.Set("Origin", "http://dashboard.example")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			h := resp.Header
			if resp.StatusCode != 200 || h.Get("Content-Type") != tt.contentType || h.Get("Access-Control-Allow-Origin") != tt.cors ||
				h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(string(body), tt.want) {
				t.Errorf("= %d %v %.60q, want 200, Content-Type %q, Access-Control-Allow-Origin %q, nosniff, body with %q",
					resp.StatusCode, h, body, tt.contentType, tt.cors, tt.want)
			}
		})
	}
}

func TestViewerOff(t *testing.T) {
	f := newServer(t, server.Config{NoViewer: true})
	base := "http" + strings.TrimPrefix(f.url, "ws")
	if status, _, _ := request(t, "GET", base+"/", chromeAccept); status != 426 {
		t.Errorf("GET / from a browser with the viewer off: %d, want 426", status)
	}
	if status, _, _ := request(t, "GET", base+"/_wsdest/viewer.js", ""); status != 426 {
		t.Errorf("GET /_wsdest/viewer.js with the viewer off: %d, want 426 (an ordinary key path)", status)
	}
}

func TestViewerURL(t *testing.T) {
	tests := []struct {
		addr   net.Addr
		public string
		want   string
	}{
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8000}, "", "http://localhost:8000/"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8000}, "", "http://localhost:8000/"},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000}, "", "http://localhost:9000/"},
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8000}, "", "http://10.1.2.3:8000/"},
		{&net.TCPAddr{IP: net.ParseIP("fd00::1"), Port: 8000}, "", "http://[fd00::1]:8000/"},
		{&net.TCPAddr{Port: 8000}, "https://websocket-ws-prod.deployments.quix.io", "https://websocket-ws-prod.deployments.quix.io/"},
	}
	for _, tt := range tests {
		if got := server.ViewerURL(tt.addr, tt.public); got != tt.want {
			t.Errorf("ViewerURL(%v, %q) = %q, want %q", tt.addr, tt.public, got, tt.want)
		}
	}
}

// basicAuthorizer accepts HTTP Basic u:p.
type basicAuthorizer struct{}

func (basicAuthorizer) Authorize(r *http.Request, ambient auth.Ambient) (auth.Principal, error) {
	if u, p, ok := r.BasicAuth(); ok && u == "u" && p == "p" && ambient == auth.AmbientAllowed {
		return auth.Principal{ID: "basic:u", Grant: auth.Grant{All: true}}, nil
	}
	return auth.Principal{}, &auth.Error{Reason: auth.ReasonMissing}
}

func (basicAuthorizer) Refused(auth.Reason) {}

func TestViewerBasicChallenge(t *testing.T) {
	f := newServer(t, server.Config{Auth: basicAuthorizer{}, ViewerBasicAuth: true})
	base := "http" + strings.TrimPrefix(f.url, "ws")
	tests := []struct {
		name, url string
		basic     bool
		status    int
	}{
		{"no credentials: challenged", base + "/", false, http.StatusUnauthorized},
		{"credentials: the page", base + "/", true, http.StatusOK},
		{"a token in the URL: the page, the token is for the WebSocket", base + "/?token=x", false, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", tt.url, nil)
			req.Header.Set("Accept", chromeAccept)
			if tt.basic {
				req.SetBasicAuth("u", "p")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(body), "<title>wsdest viewer</title>") {
				t.Errorf("= %d, want %d with the page as body", resp.StatusCode, tt.status)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); (tt.status == http.StatusUnauthorized) != strings.HasPrefix(ch, "Basic ") {
				t.Errorf("WWW-Authenticate %q with status %d", ch, resp.StatusCode)
			}
		})
	}
	// Without ViewerBasicAuth nobody is challenged: the page holds no data.
	g := newServer(t, server.Config{Auth: basicAuthorizer{}})
	if status, _, _ := request(t, "GET", "http"+strings.TrimPrefix(g.url, "ws")+"/", chromeAccept); status != http.StatusOK {
		t.Errorf("without ViewerBasicAuth: %d, want 200", status)
	}
}

// TestStalledAnswerDisconnected: a connection that pipelines GETs of the
// chart library and never reads is disconnected at the answer's write
// deadline (WriteTimeout), which frees its handler.
func TestStalledAnswerDisconnected(t *testing.T) {
	h := hub.New(hub.Config{PingInterval: -1})
	p, err := netpoll.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(server.New(server.Config{WriteTimeout: 200 * time.Millisecond}, h, p))
	closed := make(chan struct{})
	var once sync.Once
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			once.Do(func() { close(closed) })
		}
	}
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		p.Close()
	})
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	req := "GET /_wsdest/uplot/uPlot.iife.min.js HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(c, strings.Repeat(req, 512)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(e2etest.Wait):
		t.Fatal("the connection that does not read its answers is still open")
	}
}
