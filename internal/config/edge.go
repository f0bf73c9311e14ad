package config

import (
	"net/netip"
	"net/url"
	"strings"
)

// Edge holds the settings that protect the public listener.
type Edge struct {
	// TLSCertFile and TLSKeyFile are TLS_CERT_FILE and TLS_KEY_FILE: a PEM
	// certificate chain and its private key. Both set turn on wss:// and
	// https:// on PORT; both or neither. Default none (plain ws://).
	TLSCertFile string
	TLSKeyFile  string
	// AllowedOrigins is ALLOWED_ORIGINS: comma-separated browser origins
	// allowed to connect, each "scheme://host[:port]" exactly, or with the
	// host's first label "*" ("https://*.example.com": any subdomain at any
	// depth, not example.com itself). Stored lower case. Default none =
	// every origin.
	AllowedOrigins []string
	// MaxConnections is MAX_CONNECTIONS: the most clients at once. Default
	// 0 = derived from the open-file limit by the server package.
	MaxConnections int
	// MaxConnectionsPerIP is MAX_CONNECTIONS_PER_IP: the most clients at
	// once from one address (an IPv6 address counts by its /64). Default
	// 0 = no per-address limit.
	MaxConnectionsPerIP int
	// TrustedProxies is TRUSTED_PROXIES: comma-separated CIDRs (or single
	// addresses) of reverse proxies whose X-Forwarded-For names the client
	// for the per-address limit and the logs. Default none.
	TrustedProxies []netip.Prefix
	// MaxSubscriptionKeys is MAX_SUBSCRIPTION_KEYS: the most keys and
	// patterns one client may ask for (> 0); unset: 0, the server's
	// default of 64.
	MaxSubscriptionKeys int
	// MaxKeyLength is MAX_KEY_LENGTH: the longest key or pattern a client
	// may ask for, in bytes (> 0); unset: 0, the server's default of 256.
	MaxKeyLength int
	// MaxViews is MAX_VIEWS: the most distinct views (?where= and
	// ?fields= combinations, per shape) alive at once (> 0); unset: 0,
	// the default of 100.
	MaxViews int
	// MaxViewsPerIP is MAX_VIEWS_PER_IP: the most distinct views the
	// clients of one address (an IPv6 /64) hold at once (> 0); unset: 0,
	// the default of 8.
	MaxViewsPerIP int
}

// TLS reports whether the listener serves TLS.
func (e Edge) TLS() bool { return e.TLSCertFile != "" }

func (p *parser) edge() Edge {
	e := Edge{
		MaxConnections:      p.integer(EnvMaxConnections, 0, 1),
		MaxConnectionsPerIP: p.integer(EnvMaxConnectionsPerIP, 0, 1),
		MaxSubscriptionKeys: p.integer(EnvMaxSubscriptionKeys, 0, 1),
		MaxKeyLength:        p.integer(EnvMaxKeyLength, 0, 1),
		MaxViews:            p.integer(EnvMaxViews, 0, 1),
		MaxViewsPerIP:       p.integer(EnvMaxViewsPerIP, 0, 1),
	}
	e.TLSCertFile, _ = p.get(EnvTLSCertFile)
	e.TLSKeyFile, _ = p.get(EnvTLSKeyFile)
	switch {
	case e.TLSCertFile != "" && e.TLSKeyFile == "":
		p.fail("%s is set but %s is empty (set both or neither)", EnvTLSCertFile, EnvTLSKeyFile)
	case e.TLSCertFile == "" && e.TLSKeyFile != "":
		p.fail("%s is set but %s is empty (set both or neither)", EnvTLSKeyFile, EnvTLSCertFile)
	}
	if v, ok := p.get(EnvAllowedOrigins); ok {
		for o := range strings.SplitSeq(v, ",") {
			if o = strings.TrimSpace(o); o == "" {
				continue
			}
			if !validOrigin(o) {
				p.fail("%s: %s is not an origin (want scheme://host[:port], or https://*.example.com for subdomains)", EnvAllowedOrigins, quote(o))
				continue
			}
			e.AllowedOrigins = append(e.AllowedOrigins, strings.ToLower(o))
		}
		if len(e.AllowedOrigins) == 0 && !p.failedAny(EnvAllowedOrigins) {
			p.fail("%s is set but holds no origin (want a comma-separated list such as https://app.example.com)", EnvAllowedOrigins)
		}
	}
	if v, ok := p.get(EnvTrustedProxies); ok {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			pfx, err := netip.ParsePrefix(c)
			if err != nil {
				a, aerr := netip.ParseAddr(c)
				if aerr != nil {
					p.fail("%s: %s is not a CIDR or an address (want e.g. 10.0.0.0/8,192.168.1.5)", EnvTrustedProxies, quote(c))
					continue
				}
				pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			e.TrustedProxies = append(e.TrustedProxies, pfx.Masked())
		}
	}
	return e
}

// validOrigin accepts what a browser sends as Origin (scheme, host,
// optional port; no path, query or user), with "*." allowed in front of the
// host.
func validOrigin(o string) bool {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || rest == "" {
		return false
	}
	rest = strings.TrimPrefix(rest, "*.")
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	return !strings.ContainsAny(u.Hostname(), "*/ ")
}
