package hub

import (
	"bytes"
	"strings"
)

// isGlob reports whether s contains a glob metacharacter.
func isGlob(s string) bool { return strings.ContainsAny(s, "*?") }

// matchGlob reports whether key matches pattern, where '*' matches any run
// of bytes (including '/') and '?' matches exactly one byte. There are no
// character classes and no escapes; a '*' or '?' in the key is an ordinary
// byte. It allocates nothing.
//
// The literal head (before the first '*') and tail (after the last '*') are
// compared in place, so the common shapes cost one comparison of the
// pattern's length: "prefix-*" and "*-suffix" a prefix or suffix test,
// "prefix-*-suffix" both. The segments between stars are then found left
// to right, each at its first occurrence (which is always a correct
// choice, since the stars around it absorb anything), with bytes.Index when
// the segment has no '?'. The cost is at most the key's length times the
// pattern's, with no backtracking; the server bounds the pattern's length
// (MAX_KEY_LENGTH).
func matchGlob(pattern string, key []byte) bool {
	first := strings.IndexByte(pattern, '*')
	if first < 0 {
		return len(pattern) == len(key) && matchFixed(pattern, key)
	}
	last := strings.LastIndexByte(pattern, '*')
	head, tail := pattern[:first], pattern[last+1:]
	if len(key) < len(head)+len(tail) ||
		!matchFixed(head, key[:len(head)]) ||
		!matchFixed(tail, key[len(key)-len(tail):]) {
		return false
	}
	key = key[len(head) : len(key)-len(tail)]
	for mid := pattern[first+1 : last+1]; mid != ""; {
		i := strings.IndexByte(mid, '*')
		seg := mid[:i]
		mid = mid[i+1:]
		if seg == "" {
			continue
		}
		at := indexSegment(key, seg)
		if at < 0 {
			return false
		}
		key = key[at+len(seg):]
	}
	return true
}

// matchFixed compares a segment without '*' to a key of the same length.
func matchFixed(seg string, key []byte) bool {
	if strings.IndexByte(seg, '?') < 0 {
		return string(key) == seg
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] != '?' && seg[i] != key[i] {
			return false
		}
	}
	return true
}

// indexSegment returns the first position at which seg (no '*') matches
// in key, or -1.
func indexSegment(key []byte, seg string) int {
	if strings.IndexByte(seg, '?') < 0 {
		return bytes.Index(key, []byte(seg))
	}
	for i := 0; i+len(seg) <= len(key); i++ {
		if matchFixed(seg, key[i:i+len(seg)]) {
			return i
		}
	}
	return -1
}
