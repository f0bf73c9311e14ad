package hub

import "strings"

// isGlob reports whether s contains a glob metacharacter.
func isGlob(s string) bool { return strings.ContainsAny(s, "*?") }

// matchGlob reports whether key matches pattern, where '*' matches any run
// of bytes (including '/') and '?' matches exactly one byte. There are no
// character classes and no escapes. It runs in O(len(pattern)*len(key)) in
// the worst case and allocates nothing.
func matchGlob(pattern string, key []byte) bool {
	p, k := 0, 0
	starP, starK := -1, 0
	for k < len(key) {
		switch {
		// '*' first: a '*' in the key must not be matched by the pattern's
		// '*' as if it were a literal.
		case p < len(pattern) && pattern[p] == '*':
			starP, starK = p, k
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == key[k]):
			p++
			k++
		case starP >= 0:
			starK++
			p, k = starP+1, starK
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
