package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/server"
)

// staleAuthorizer answers every request with one principal, checked
// before the test revoked it: as if the revocation came between a
// request's check and its client's registration.
type staleAuthorizer struct{ p auth.Principal }

func (s staleAuthorizer) Authorize(*http.Request) (auth.Principal, error) { return s.p, nil }
func (staleAuthorizer) Refused(auth.Reason)                               {}

// A key revoked after its request was checked, but before its client was
// registered for revocation, still closes the client at once (1008
// "credential revoked"), on WebSocket and SSE alike.
func TestRevokedBeforeRegistration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("stale-key t-*\nother-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{KeysFile: path, KeysFilePoll: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "/ws?token=stale-key", nil)
	p, err := a.Authorize(r)
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
	if err := os.WriteFile(path+".new", []byte("other-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	e2etest.Eventually(t, "the key revoked", p.Revoked)

	f := newServer(t, server.Config{Auth: staleAuthorizer{p}})
	c := e2etest.Connect(t, f.url+"/ws", e2etest.NoSync())
	c.ExpectClose(t, 1008, "credential revoked")
	sse := e2etest.ConnectSSE(t, "http"+f.url[2:]+"/sse", nil)
	ectx, ecancel := e2etest.Context(t)
	defer ecancel()
	if _, err := sse.NextEvent(ectx); err == nil || ectx.Err() != nil {
		t.Errorf("SSE stream of a revoked key did not end: %v", err)
	}
}
