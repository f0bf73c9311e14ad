package wsdest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering checks the package layering written in docs/design.md: the
// HTTP layer knows nothing of Kafka or the history, the fan-out core
// nothing of HTTP, Kafka, the history or the encoder, the encoder nothing
// of the fan-out core, and the shared vocabulary (the root package and
// internal/message) nothing of any part.
func TestLayering(t *testing.T) {
	const mod = "github.com/wsdest/wsdest/"
	tests := []struct {
		pkg       string
		forbidden []string // prefixes of import paths, direct or indirect
	}{
		{"internal/server", []string{"github.com/twmb/franz-go", mod + "internal/kafka", mod + "internal/history", mod + "internal/encode"}},
		{"internal/hub", []string{"github.com/twmb/franz-go", "net/http", mod + "internal/kafka", mod + "internal/history", mod + "internal/encode", mod + "internal/server"}},
		{"internal/encode", []string{"github.com/twmb/franz-go", mod + "internal/hub", mod + "internal/history", mod + "internal/server"}},
		{"internal/message", []string{"github.com/twmb/franz-go", mod + "internal/"}},
		{".", []string{"github.com/twmb/franz-go", mod}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "./"+strings.TrimPrefix(tt.pkg, ".")).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tt.pkg, err)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, f := range tt.forbidden {
					if strings.HasPrefix(dep, f) && dep != mod+tt.pkg {
						t.Errorf("%s depends on %s", tt.pkg, dep)
					}
				}
			}
		})
	}
}
