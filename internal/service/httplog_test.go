package service

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestHTTPErrorLogLevels(t *testing.T) {
	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := httpErrorLog{l}
	fmt.Fprint(w, "http: Accept error: accept tcp [::]:8000: accept4: too many open files; retrying in 5ms\n")
	fmt.Fprint(w, "http: URL query contains semicolon\n")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[1], "level=DEBUG") {
		t.Fatalf("log lines:\n%s", buf.String())
	}
}
