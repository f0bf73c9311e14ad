package devbroker

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestKcat checks that a librdkafka client can use the broker: it bootstraps
// from Addr and then connects to the advertised address. It runs only where
// kcat is installed.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed")
	}
	b := start(t, Config{Topic: "input"}, discard())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	produce := exec.CommandContext(ctx, kcat, "-P", "-b", b.Addr(), "-t", "input", "-K", ":")
	produce.Stdin = strings.NewReader("my-key:{\"a\":1}\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	consume := exec.CommandContext(ctx, kcat, "-C", "-b", b.Addr(), "-t", "input", "-e", "-f", "%k=%s\n")
	out, err := consume.Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != `my-key={"a":1}` {
		t.Fatalf("kcat consumed %q", got)
	}
}
