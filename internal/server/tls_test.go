package server_test

import (
	"os"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/server"
)

// TestCertificatesReload exercises Reload directly: unchanged files do
// nothing, a bad version is logged once and keeps the pair in use, a good
// one replaces it, and files that vanish keep the pair too.
func TestCertificatesReload(t *testing.T) {
	ca := e2etest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WritePair(t, dir, "one")
	log := &e2etest.LogBuffer{}
	c, err := server.LoadCertificates(certFile, keyFile, log.Logger(-4))
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string { return c.Current().Leaf.Subject.CommonName }
	if c.Reload() || cn() != "one" {
		t.Fatal("reload of unchanged files changed something")
	}
	two, twoKey := ca.Issue(t, "two")
	if err := os.WriteFile(certFile, two, 0o600); err != nil { // key not yet replaced
		t.Fatal(err)
	}
	for range 3 {
		if c.Reload() {
			t.Fatal("a mismatched pair was taken")
		}
	}
	if n := len(log.Lines("do not load")); n != 1 || cn() != "one" {
		t.Fatalf("%d failure lines, serving %q; want 1 and \"one\"", n, cn())
	}
	if err := os.WriteFile(keyFile, twoKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if !c.Reload() || cn() != "two" {
		t.Fatalf("the new pair was not taken: %q", cn())
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	c.Reload()
	c.Reload()
	if cn() != "two" || len(log.Lines("do not load")) != 2 {
		t.Errorf("after the file vanished: serving %q, log:\n%s", cn(), log)
	}
	if strings.Contains(log.String(), "PRIVATE KEY") {
		t.Error("key material in the log")
	}
	if _, err := server.LoadCertificates(certFile, keyFile, log.Logger(0)); err == nil {
		t.Error("LoadCertificates without a certificate file succeeded")
	}
}
