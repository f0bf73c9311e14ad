package view

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wsdest/wsdest/internal/jsonscan"
)

// Bounds of a field list.
const (
	// MaxFields is the most paths a ?fields= list may hold.
	MaxFields = 64
	// MaxPathDepth is the most members a dotted path may name.
	MaxPathDepth = 16
	// MaxFieldsLen is the longest ?fields= list, in bytes.
	MaxFieldsLen = 1024
)

// projection is a parsed field list: a tree of member names, a leaf
// keeping its member whole.
type projection struct {
	root node
	id   int    // index of its projection in a record's; unique among live projections
	gen  uint64 // unique among the registry's projections and filters
	refs int    // views using it; guarded by the Registry's mu
}

// canonical returns the field list p keeps, its paths sorted: the same
// list for every spelling of it (a path repeated, or named inside one
// kept whole, or in another order), so that they make one view.
func (p *projection) canonical() string {
	var paths []string
	var walk func(n *node, prefix string)
	walk = func(n *node, prefix string) {
		for _, c := range n.children {
			path := prefix + c.name
			if c.whole {
				paths = append(paths, path)
				continue
			}
			walk(c, path+".")
		}
	}
	walk(&p.root, "")
	slices.Sort(paths)
	return strings.Join(paths, ",")
}

type node struct {
	name     string
	whole    bool    // keep the member as it is
	children []*node // members to keep of it when it is an object
}

func (n *node) child(name string) *node {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// parseFields parses "a,b.c": comma-separated paths of dot-separated
// member names. A path that is a prefix of another keeps its member
// whole.
func parseFields(s string) (*projection, error) {
	if len(s) > MaxFieldsLen {
		return nil, fmt.Errorf("fields: list of %d bytes, over the limit of %d", len(s), MaxFieldsLen)
	}
	p := &projection{}
	paths := strings.Split(s, ",")
	if len(paths) > MaxFields {
		return nil, fmt.Errorf("fields: %d paths, over the limit of %d", len(paths), MaxFields)
	}
	for i, path := range paths {
		names := strings.Split(path, ".")
		if len(names) > MaxPathDepth {
			return nil, fmt.Errorf("fields: path %d (%q) names %d members, over the limit of %d", i+1, clip(path, 100), len(names), MaxPathDepth)
		}
		n := &p.root
		for _, name := range names {
			if name == "" {
				return nil, fmt.Errorf("fields: path %d (%q) has an empty member name", i+1, clip(path, 100))
			}
			c := n.child(name)
			if c == nil {
				c = &node{name: name}
				n.children = append(n.children, c)
			}
			n = c
		}
		n.whole, n.children = true, nil
	}
	return p, nil
}

// apply returns value, a JSON document, with only the projection's
// members, in value's order; nil when value is not an object. A member a
// path names that value lacks is left out, as is an object member left
// with none of the members asked of it; a member that is not an object
// where a path goes into it is left out too.
func (p *projection) apply(value []byte) []byte {
	sc := jsonscan.New(value, 0)
	i := sc.Space(0)
	if i >= len(value) || value[i] != '{' {
		return nil
	}
	out, _, err := p.root.object(&sc, i, make([]byte, 0, len(value)))
	if err != nil {
		return nil
	}
	return out
}

// object appends to dst the members of the object at i that n keeps, and
// returns dst, the offset after the object, and an error for bad JSON
// (none: values are validated when encoded).
func (n *node) object(sc *jsonscan.Scanner, i int, dst []byte) ([]byte, int, error) {
	src := sc.Bytes()
	it, err := sc.ObjectStart(i)
	if err != nil {
		return nil, 0, err
	}
	dst = append(dst, '{')
	first := true
	var scratch []byte
	for {
		key, esc, vs, ok, err := sc.ObjectNext(&it)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return append(dst, '}'), it.Pos, nil
		}
		name := src[key.Start+1 : key.End-1]
		if esc {
			scratch = jsonscan.Unescape(scratch[:0], src[key.Start:key.End])
			name = scratch
		}
		c := n.child(string(name))
		switch {
		case c != nil && c.whole:
			if it.Pos, err = sc.Value(vs); err != nil {
				return nil, 0, err
			}
			dst = member(dst, &first, src[key.Start:key.End], src[vs:it.Pos])
		case c != nil && vs < len(src) && src[vs] == '{':
			mark, wasFirst := len(dst), first
			dst = member(dst, &first, src[key.Start:key.End], nil)
			sub, end, err := c.object(sc, vs, dst)
			if err != nil {
				return nil, 0, err
			}
			it.Pos = end
			if len(sub)-len(dst) > 2 { // not {}
				dst = sub
			} else {
				dst, first = dst[:mark], wasFirst
			}
		default:
			if it.Pos, err = sc.Value(vs); err != nil {
				return nil, 0, err
			}
		}
	}
}

// member appends "key":value to dst, after a comma unless first.
func member(dst []byte, first *bool, key, value []byte) []byte {
	if !*first {
		dst = append(dst, ',')
	}
	*first = false
	dst = append(dst, key...)
	dst = append(dst, ':')
	return append(dst, value...)
}
