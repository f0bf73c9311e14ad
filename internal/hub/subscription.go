package hub

import (
	"strings"

	"github.com/wsdest/wsdest/internal/message"
)

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
	Shape message.Shape
	// Grant, when not nil, lists the keys the client's credential may read
	// (exact keys or patterns, as Keys); nil grants every key. A non-nil
	// empty Grant grants nothing, and a restricted grant never covers a
	// record without a key. A "*" among them grants every key.
	Grant []string
	// View, when not nil, narrows what the client receives of the
	// records its keys and grant select (see View).
	View View
	// MaxRate, when > 0, bounds the messages of each key the client is
	// sent to MaxRate a second, latest wins (rate.go); 0: no bound.
	MaxRate float64
}

// Denied returns the first exact key (not a pattern) of s that its grant
// does not cover, so that such a request can be refused before it becomes
// a client. Patterns and "every record" are not refused: they mean "what
// I may see", the subscription intersected with the grant.
func (s Subscription) Denied() (string, bool) {
	if s.Grant == nil {
		return "", false
	}
	g := compile(Subscription{Keys: s.Grant})
	for _, k := range s.Keys {
		if !isGlob(k) && !g.matches([]byte(k)) {
			return k, true
		}
	}
	return "", false
}

// compiled is a Subscription split for routing: exact keys go in the
// shard's map, patterns are tested one by one. A grant is folded into
// the subscription where the intersection allows (every record under a
// grant is the grant; exact keys under a grant are those it covers), so
// that such a client costs what a subscriber of the same keys costs;
// only a subscription with patterns of its own keeps the grant's compiled
// form beside it (grant), tested after its own keys.
type compiled struct {
	all   bool
	exact []string
	// exactSet holds exact when it has more than scanExact keys, so that
	// a grant of many exact keys costs one lookup per record, not a scan
	// (under the shard's lock, on the publish path); nil otherwise.
	exactSet map[string]struct{}
	globs    []string
	grant    *compiled // nil: every key granted
	// ext holds the client's view and rate group, nil for neither: one
	// pointer, so that clients with neither pay nothing for them, shared
	// by the clients of a view (viewSlot.ext) or a rate group
	// (rateGroup.ext).
	ext *extras
}

// extras are what a subscription with a view or a rate adds.
type extras struct {
	// view is the client's view, nil for none: such a client is routed
	// apart (routeView).
	view *viewSlot
	// rate is the client's rate group, nil for none: such a client gets
	// only what its group hands on (routeRated, rate.go).
	rate *rateGroup
}

// view returns the client's view slot, nil for none.
func (c *compiled) view() *viewSlot {
	if c.ext == nil {
		return nil
	}
	return c.ext.view
}

// rate returns the client's rate group, nil for none.
func (c *compiled) rate() *rateGroup {
	if c.ext == nil {
		return nil
	}
	return c.ext.rate
}

// scanExact is the most exact keys keys() tests one by one; beyond, it
// looks them up in exactSet.
const scanExact = 8

// index builds exactSet when exact is long.
func (c *compiled) index() {
	if len(c.exact) <= scanExact {
		return
	}
	c.exactSet = make(map[string]struct{}, len(c.exact))
	for _, k := range c.exact {
		c.exactSet[k] = struct{}{}
	}
}

// route is how the hub indexes a client.
type route int

const (
	routeExact route = iota // by each exact key, in the shard's map
	routeAll                // every record, no test
	routeGlob               // tested record by record with matches
	routeView               // with a view: tested with matches, then the view applied
	routeRated              // with a rate: in its rate group, not in the shard's lists
)

func (c *compiled) route() route {
	switch {
	case c.rate() != nil:
		return routeRated
	case c.view() != nil:
		return routeView
	}
	return c.keyRoute()
}

// keyRoute is how the hub would index a client of these keys and grant
// without a view or rate: as the client, or its rate group.
func (c *compiled) keyRoute() route {
	switch {
	case c.all && c.grant == nil:
		return routeAll
	case len(c.globs) > 0 || c.grant != nil:
		return routeGlob
	}
	return routeExact
}

func compile(s Subscription) compiled {
	c := compileGranted(s)
	c.index()
	if c.grant != nil {
		c.grant.index()
	}
	return c
}

// compileGranted is compile without the index.
func compileGranted(s Subscription) compiled {
	c := compileKeys(s.All, s.Keys)
	if s.Grant == nil {
		return c
	}
	g := compileKeys(false, s.Grant)
	if g.all {
		return c
	}
	// Exact keys of the subscription the grant does not cover go.
	exact := c.exact[:0:0]
	for _, k := range c.exact {
		if g.matches([]byte(k)) {
			exact = append(exact, k)
		}
	}
	c.exact = exact
	switch {
	case c.all:
		// Everything I may see: the grant itself, exact keys in the
		// shard's map and patterns tested as a subscription's own.
		return g
	case len(c.globs) == 0:
		return compiled{exact: c.exact}
	}
	c.grant = &g
	return c
}

func compileKeys(all bool, keys []string) compiled {
	c := compiled{all: all}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
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

// matches reports whether a record with this key goes to the subscriber:
// it matches the subscription and the grant. Publish uses it for pattern
// subscribers only (routeGlob); exact-only subscribers are found through
// the shard's map.
func (c *compiled) matches(key []byte) bool {
	return c.keys(key) && (c.grant == nil || c.grant.keys(key))
}

// keys reports whether key matches the subscription's keys, without the
// grant.
func (c *compiled) keys(key []byte) bool {
	if c.all {
		return true
	}
	if key == nil {
		return false
	}
	if c.exactSet != nil {
		if _, ok := c.exactSet[string(key)]; ok {
			return true
		}
	} else {
		for _, k := range c.exact {
			if k == string(key) {
				return true
			}
		}
	}
	for _, g := range c.globs {
		if matchGlob(g, key) {
			return true
		}
	}
	return false
}
