package server

import (
	"net/http"
	"strings"
)

// originPolicy decides which browser origins may connect. A nil policy
// allows every origin. It is read-only after New, so safe for concurrent
// use.
type originPolicy struct {
	exact    map[string]bool
	suffixes []originSuffix // from "scheme://*.host[:port]"
}

type originSuffix struct {
	prefix string // "https://"
	suffix string // ".example.com" or ".example.com:8443"
}

// newOriginPolicy compiles ALLOWED_ORIGINS entries, as the config package
// leaves them: validated (scheme://host[:port], no path, so no trailing
// slash) and lower-cased. It returns nil for an empty list.
func newOriginPolicy(allowed []string) *originPolicy {
	if len(allowed) == 0 {
		return nil
	}
	p := &originPolicy{exact: make(map[string]bool)}
	for _, o := range allowed {
		scheme, host, _ := strings.Cut(o, "://")
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			p.suffixes = append(p.suffixes, originSuffix{prefix: scheme + "://", suffix: "." + rest})
			continue
		}
		p.exact[o] = true
	}
	return p
}

// allowed reports whether r may connect: a request without an Origin
// header (a non-browser client) always may; a browser's when its origin is
// the server's own (a page the server served, such as the viewer: the
// Origin's host[:port] is the request's Host, whatever the scheme, since a
// proxy in front may terminate TLS) or is listed or matches a pattern. The comparison is on the whole
// scheme://host[:port], so "https://app.example.com.evil.io" does not
// match "https://*.example.com", and a pattern without a port matches only
// the scheme's default port.
func (p *originPolicy) allowed(r *http.Request) bool {
	if p == nil {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	origin = strings.ToLower(origin)
	return sameOrigin(origin, r.Host) || p.listed(origin)
}

// ambient reports whether r's ambient credentials (the cookie, Basic
// credentials a browser cached), which a browser attaches to a WebSocket
// or EventSource opened by any page, may count: when r has no Origin (not
// a browser's cross-site request), when its Origin is the server's own
// (the same host; over TLS only an https page, since a plain page of the
// host may have been written by anyone on the path; without TLS either
// scheme, since a proxy in front may terminate TLS), or when ALLOWED_ORIGINS
// lists it. It holds for a nil policy too: every origin may connect, but
// not with our cookie.
func (p *originPolicy) ambient(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	origin = strings.ToLower(origin)
	if sameOrigin(origin, r.Host) && (r.TLS == nil || strings.HasPrefix(origin, "https://")) {
		return true
	}
	return p != nil && p.listed(origin)
}

// listed reports whether origin (lower case) is in ALLOWED_ORIGINS or
// matches one of its patterns.
func (p *originPolicy) listed(origin string) bool {
	if p.exact[origin] {
		return true
	}
	for _, s := range p.suffixes {
		host, ok := strings.CutPrefix(origin, s.prefix)
		if !ok || !strings.HasSuffix(host, s.suffix) {
			continue
		}
		label := host[:len(host)-len(s.suffix)]
		// A subdomain of at least one label, with nothing after the
		// suffix (no port unless the pattern has it) and no userinfo or
		// path smuggled in front.
		if label != "" && !strings.ContainsAny(label, ":/@") {
			return true
		}
	}
	return false
}

// clip shortens a client-supplied value for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// sameOrigin reports whether origin (lower case) names host, the Host the
// browser sent the request to. A page elsewhere cannot make a browser send
// another site's name as Host.
func sameOrigin(origin, host string) bool {
	_, h, ok := strings.Cut(origin, "://")
	return ok && h != "" && strings.EqualFold(h, host)
}
