package hub

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// matchGlobRef is the plain recursive definition of the glob language,
// against which matchGlob is checked.
func matchGlobRef(p string, k []byte) bool {
	if p == "" {
		return len(k) == 0
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(k); i++ {
			if matchGlobRef(p[1:], k[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(k) > 0 && matchGlobRef(p[1:], k[1:])
	}
	return len(k) > 0 && k[0] == p[0] && matchGlobRef(p[1:], k[1:])
}

func TestMatchGlobShapes(t *testing.T) {
	tests := []struct {
		pat, key string
		want     bool
	}{
		{"sensor-*", "sensor-", true}, {"sensor-*", "sensor", false}, {"sensor-*", "xsensor-1", false},
		{"*-temp", "car-1-temp", true}, {"*-temp", "-temp", true}, {"*-temp", "car-temp2", false},
		{"car-*-temp", "car--temp", true}, {"car-*-temp", "car-temp", false}, {"car-*-temp", "car-9-temp", true},
		{"*mid*", "xmidy", true}, {"*mid*", "mi", false}, {"a*b?d*e", "aXbcdYe", true}, {"a*b?d*e", "aXbdYe", false},
		{"*ab*ab*", "abab", true}, {"*ab*ab*", "aba", false}, {"**", "", true}, {"?", "*", true},
		{"a?", "a", false}, {"*?", "", false}, {"*?", "x", true},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pat, []byte(tt.key)); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pat, tt.key, got, tt.want)
		}
	}
}

// TestMatchGlobReference compares matchGlob with the definition on random
// patterns and keys over a small alphabet, where stars, '?' and repeats
// interact the most.
func TestMatchGlobReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gen := func(alpha string, n int) string {
		var b strings.Builder
		for range r.IntN(n + 1) {
			b.WriteByte(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	for range 200000 {
		p, k := gen("ab*?", 7), gen("ab*", 9)
		if got, want := matchGlob(p, []byte(k)), matchGlobRef(p, []byte(k)); got != want {
			t.Fatalf("matchGlob(%q, %q) = %v, want %v", p, k, got, want)
		}
	}
}

func FuzzMatchGlob(f *testing.F) {
	f.Add("a*b?c", "aXXbYc")
	f.Fuzz(func(t *testing.T, p, k string) {
		if len(p) > 12 || len(k) > 24 {
			return // keep the reference's exponential worst case small
		}
		if got, want := matchGlob(p, []byte(k)), matchGlobRef(p, []byte(k)); got != want {
			t.Fatalf("matchGlob(%q, %q) = %v, want %v", p, k, got, want)
		}
	})
}

// BenchmarkMatchGlob: the common shapes cost one comparison; a hostile
// pattern of MAX_KEY_LENGTH's default against a long key stays linear-ish.
func BenchmarkMatchGlob(b *testing.B) {
	long := []byte(strings.Repeat("a", 1024))
	cases := []struct {
		name, pat string
		key       []byte
	}{
		{"prefix", "sensor-*", []byte("sensor-12/temperature")},
		{"suffix", "*-temperature", []byte("sensor-12/x-temperature")},
		{"middle", "sensor-*-temp*", []byte("sensor-12-temperature")},
		{"hostile", strings.Repeat("*a", 127) + "b", long},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				matchGlob(c.pat, c.key)
			}
		})
	}
}
