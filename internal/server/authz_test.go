package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/sseframe"
)

// fixedAuthorizer answers every request with one principal.
type fixedAuthorizer struct{ p auth.Principal }

func (s fixedAuthorizer) Authorize(*http.Request, auth.Ambient) (auth.Principal, error) {
	return s.p, nil
}
func (fixedAuthorizer) Refused(auth.Reason) {}

// A key revoked after its request was checked, but before its client was
// registered for revocation, still closes the client at once (1008
// "credential revoked"), on WebSocket and SSE alike.
func TestRevokedBeforeRegistration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("stale-key t-*\nother-key *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{KeysFile: path, KeysFilePoll: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "/ws?token=stale-key", nil)
	p, err := a.Authorize(r, auth.AmbientAllowed)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx, func([]string) {}) // nobody registered: the flag alone must do
	}()
	defer func() { cancel(); <-done }()
	if err := os.WriteFile(path+".new", []byte("other-key *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	e2etest.Eventually(t, "the key revoked", p.Revoked)

	// The principal was checked before the revocation: as if the
	// revocation came between a request's check and its client's
	// registration.
	f := newServer(t, server.Config{Auth: fixedAuthorizer{p}})
	c := e2etest.Connect(t, f.url+"/ws", e2etest.NoSync())
	c.ExpectClose(t, 1008, "credential revoked")
	sse := e2etest.ConnectSSE(t, "http"+f.url[2:]+"/sse", nil)
	ectx, ecancel := e2etest.Context(t)
	defer ecancel()
	if _, err := sse.NextEvent(ectx); err == nil || ectx.Err() != nil {
		t.Errorf("SSE stream of a revoked key did not end: %v", err)
	}
}

// Over HTTP/2 too (an SSE stream that net/http keeps), an exact key outside
// the grant gets 403, a pattern gets what the grant covers, and the stream
// ends at the token's exp.
func TestSSEOverHTTP2Grant(t *testing.T) {
	exp := time.Now().Add(2 * time.Second)
	ts, h, _ := newHTTP2Server(t, server.Config{Auth: fixedAuthorizer{auth.Principal{ID: "jwt:t", Grant: auth.Grant{Keys: []string{"a-*"}}, Expires: exp}}})
	ctx, cancel := context.WithTimeout(t.Context(), e2etest.Wait)
	defer cancel()
	get := func(path string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get("/sse/b-1"); resp.ProtoMajor != 2 || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("out of scope: %s %d, want 403 over HTTP/2", resp.Proto, resp.StatusCode)
	}
	resp := get("/sse/*-1")
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	e2etest.Eventually(t, "the SSE client added", func() bool { return h.Stats().Clients == 1 })
	for _, k := range []string{"b-1", "a-1"} {
		m := &message.Message{Key: []byte(k), Rows: 1}
		m.Frames[message.ShapeSSEPlain] = sseframe.Event("c-"+k, []byte(`{"k":"`+k+`"}`))
		h.Publish([]*message.Message{m})
	}
	body, err := io.ReadAll(resp.Body) // until the stream ends at exp
	if err != nil {
		t.Fatalf("stream: %v after %q", err, body)
	}
	if time.Now().Before(exp) {
		t.Errorf("the stream ended before exp")
	}
	if got := string(body); !strings.Contains(got, "id: c-a-1\n") || strings.Contains(got, "b-1") {
		t.Errorf("stream %q, want the a-1 event alone", got)
	}
	// Counted at the teardown, a moment after the stream ended.
	e2etest.Eventually(t, "a token_expired close", func() bool { return h.Stats().Closes["token_expired"] == 1 })
}
