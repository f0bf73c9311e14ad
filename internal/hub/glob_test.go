package hub

import (
	"math/rand/v2"
	"slices"
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

func TestGrant(t *testing.T) {
	tests := []struct {
		name   string
		sub    Subscription
		route  route
		yes    []string
		no     []string // "\x00" is a record without a key
		denied string
	}{
		{"no grant", Subscription{All: true}, routeAll, []string{"a", "\x00"}, nil, ""},
		{"grant star", Subscription{All: true, Grant: []string{"*"}}, routeAll, []string{"a", "\x00"}, nil, ""},
		{"grant empty", Subscription{All: true, Grant: []string{}}, routeExact, nil, []string{"a", "", "\x00"}, ""},
		{"grant exact folds", Subscription{All: true, Grant: []string{"a", "b"}}, routeExact, []string{"a", "b"}, []string{"c", "\x00"}, ""},
		{"grant pattern", Subscription{All: true, Grant: []string{"t1/*"}}, routeGlob, []string{"t1/x", "t1/"}, []string{"t2/x", "\x00"}, ""},
		{"exact inside", Subscription{Keys: []string{"t1/x"}, Grant: []string{"t1/*"}}, routeExact, []string{"t1/x"}, []string{"t1/y"}, ""},
		{"exact outside dropped", Subscription{Keys: []string{"t1/x", "t2/x"}, Grant: []string{"t1/*"}}, routeExact, []string{"t1/x"}, []string{"t2/x"}, "t2/x"},
		{"pattern intersected", Subscription{Keys: []string{"*/x"}, Grant: []string{"t1/*"}}, routeGlob, []string{"t1/x"}, []string{"t2/x", "t1/y"}, ""},
		{"pattern outside not denied", Subscription{Keys: []string{"t2/*"}, Grant: []string{"t1/*"}}, routeGlob, nil, []string{"t2/x"}, ""},
		{"null key never granted", Subscription{All: true, Grant: []string{"?*"}}, routeGlob, []string{"a"}, []string{"\x00"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compile(tt.sub)
			if r := c.route(); r != tt.route {
				t.Errorf("route = %d, want %d", r, tt.route)
			}
			test := func(k string) bool {
				if k == "\x00" {
					return c.matches(nil)
				}
				if c.route() == routeExact {
					return slices.Contains(c.exact, k)
				}
				return c.matches([]byte(k))
			}
			for _, k := range tt.yes {
				if !test(k) {
					t.Errorf("%q not delivered", k)
				}
			}
			for _, k := range tt.no {
				if test(k) {
					t.Errorf("%q delivered", k)
				}
			}
			if k, _ := tt.sub.Denied(); k != tt.denied {
				t.Errorf("Denied = %q, want %q", k, tt.denied)
			}
		})
	}
}
