package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// A browser attaches the wsdest_token cookie and cached Basic credentials
// to a WebSocket or EventSource opened by any page, and neither has CORS:
// those ambient credentials count only from the server's own origin, an
// ALLOWED_ORIGINS one, or a client that sends no Origin. A token in the
// query or an Authorization: Bearer header is never attached by a browser
// on its own, so it counts from any origin.
func TestAmbientCredentialsCrossOrigin(t *testing.T) {
	const key, user, pass = "k-0123456789", "viewer", "pw-0123456789"
	newAuth := func() *auth.Authenticator {
		a, err := auth.New(auth.Config{APIKeys: []string{key}, Username: user, Password: pass, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	open := newServer(t, server.Config{Auth: newAuth()})
	listed := newServer(t, server.Config{Auth: newAuth(), AllowedOrigins: []string{"https://app.example"}})
	cookie := http.Header{"Cookie": {auth.CookieName + "=" + key}}
	basic := func() http.Header {
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, pass)
		return r.Header
	}()
	bearer := http.Header{"Authorization": {"Bearer " + key}}
	with := func(h http.Header, origin string) http.Header {
		h = h.Clone()
		if h == nil {
			h = http.Header{}
		}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		f      *fixture
		origin string // "self": the server's own
		h      http.Header
		query  string
		ok     bool
	}{
		{"cookie, foreign origin", open, "https://evil.example", cookie, "", false},
		{"basic, foreign origin", open, "https://evil.example", basic, "", false},
		{"cookie, own origin", open, "self", cookie, "", true},
		{"basic, own origin", open, "self", basic, "", true},
		{"cookie, no origin", open, "", cookie, "", true},
		{"basic, no origin", open, "", basic, "", true},
		// Behind a proxy that terminates TLS, the page is https and the
		// request to the server plain.
		{"cookie, own host over https", open, "https-self", cookie, "", true},
		{"cookie, listed origin", listed, "https://app.example", cookie, "", true},
		{"query token, foreign origin", open, "https://evil.example", nil, "?token=" + key, true},
		{"bearer, foreign origin", open, "https://evil.example", bearer, "", true},
		{"cookie and a wrong query token, foreign origin", open, "https://evil.example", cookie, "?token=wrong", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin := tc.origin
			switch origin {
			case "self":
				origin = "http" + tc.f.url[2:]
			case "https-self":
				origin = "https" + tc.f.url[2:]
			}
			h := with(tc.h, origin)
			ctx, cancel := e2etest.Context(t)
			defer cancel()
			c, err := e2etest.Dial(ctx, tc.f.url+"/ws"+tc.query, e2etest.WithHeader(h), e2etest.NoSync())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.ok {
				c.ExpectQuiet(t)
			} else {
				c.ExpectClose(t, 1008, wsframe.ReasonNotAccepted)
			}
			status := sseStatus(ctx, t, "http"+tc.f.url[2:]+"/sse"+tc.query, h)
			if want := map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[tc.ok]; status != want {
				t.Errorf("SSE: status %d, want %d", status, want)
			}
		})
	}
}

// sseStatus opens an SSE stream and returns the status of the answer.
func sseStatus(ctx context.Context, t *testing.T, url string, h http.Header) int {
	t.Helper()
	c, resp, err := e2etest.DialSSE(ctx, url, h)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		c.Close()
	}
	return resp.StatusCode
}

// Over TLS, a page of the same host served over plain HTTP (which anyone
// on the path may have written) is not the server's own origin.
func TestAmbientCredentialsOverTLS(t *testing.T) {
	const key = "k-0123456789"
	a, err := auth.New(auth.Config{APIKeys: []string{key}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts, _, _ := newHTTP2Server(t, server.Config{Auth: a})
	host := ts.URL[len("https://"):]
	for origin, want := range map[string]int{"https://" + host: http.StatusOK, "http://" + host: http.StatusUnauthorized} {
		ctx, cancel := context.WithTimeout(t.Context(), e2etest.Wait)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/sse/k", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Cookie", auth.CookieName+"="+key)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != want {
			t.Errorf("Origin %s with the cookie: status %d, want %d", origin, resp.StatusCode, want)
		}
	}
}
