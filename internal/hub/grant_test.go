package hub

import (
	"strconv"
	"testing"
)

// grantOfExact returns n exact keys "e0", "e1", ...
func grantOfExact(n int) []string {
	g := make([]string, n)
	for i := range g {
		g[i] = "e" + strconv.Itoa(i)
	}
	return g
}

// A grant's exact keys are found by one map lookup, not a scan: a pattern
// subscription under a grant of many exact keys tests each record at the
// cost of its own patterns and the grant's (bounded) patterns alone.
func TestGrantExactKeysIndexed(t *testing.T) {
	grant := append(grantOfExact(1024), "g-*")
	for _, sub := range []Subscription{
		{Keys: []string{"e1*", "g-*"}, Grant: grant}, // patterns of its own: the grant beside it
		{All: true, Grant: grant},                    // everything I may see: the grant itself
	} {
		c := compile(sub)
		g := &c
		if c.grant != nil {
			g = c.grant
		}
		if len(g.exactSet) != 1024 {
			t.Errorf("%+v: %d exact keys indexed, want 1024", sub.Keys, len(g.exactSet))
		}
		for key, want := range map[string]bool{"e1000": true, "e10": true, "g-1": true, "e1024": false, "x": false} {
			if got := c.matches([]byte(key)); got != want {
				t.Errorf("%+v: matches(%q) = %v, want %v", sub.Keys, key, got, want)
			}
		}
		if c.matches(nil) {
			t.Errorf("%+v: a record without a key matches", sub.Keys)
		}
	}
}

// BenchmarkMatchUnderLargeGrant is a pattern subscriber's test of one
// record under a grant of 1024 exact keys.
func BenchmarkMatchUnderLargeGrant(b *testing.B) {
	c := compile(Subscription{Keys: []string{"e*"}, Grant: grantOfExact(1024)})
	key := []byte("e1023")
	for b.Loop() {
		if !c.matches(key) {
			b.Fatal("no match")
		}
	}
}
