package hub

import "strings"

// Subscription says which records a client receives and in which shape.
//
// A record goes to a client when the client asked for everything, or when
// any of its keys equals the record's key, or any of its patterns matches
// it. Records with a null key go only to clients that asked for everything.
type Subscription struct {
	// All selects every record. It wins over Keys.
	All bool
	// Keys are exact Kafka keys or glob patterns ('*' any run of bytes, '?'
	// one byte). The pattern "*" alone is the same as All.
	Keys []string
	// Shape is the form of the frames the client receives.
	Shape Shape
}

// compiled is a Subscription split for routing: exact keys go in the
// shard's map, patterns are tested one by one.
type compiled struct {
	all   bool
	exact []string
	globs []string
}

func compile(s Subscription) compiled {
	c := compiled{all: s.All}
	seen := make(map[string]bool, len(s.Keys))
	for _, k := range s.Keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		switch {
		case k == "*" || strings.Trim(k, "*") == "" && k != "":
			c.all = true
		case isGlob(k):
			c.globs = append(c.globs, k)
		default:
			c.exact = append(c.exact, k)
		}
	}
	if c.all {
		c.exact, c.globs = nil, nil
	}
	return c
}

// matches reports whether a record with this key goes to the subscriber.
// It is used for glob subscribers only; exact-only subscribers are found
// through the shard's map.
func (c *compiled) matches(key []byte) bool {
	if c.all {
		return true
	}
	if key == nil {
		return false
	}
	for _, k := range c.exact {
		if k == string(key) {
			return true
		}
	}
	for _, g := range c.globs {
		if matchGlob(g, key) {
			return true
		}
	}
	return false
}
