package config

import (
	"net"
	"net/url"
)

// Names of the variables of scoped credentials (API keys from a file and
// JWTs).
const (
	EnvAPIKeysFile      = "AUTH_API_KEYS_FILE"
	EnvJWTSecret        = "AUTH_JWT_SECRET"
	EnvJWTPublicKeyFile = "AUTH_JWT_PUBLIC_KEY_FILE"
	EnvJWKSURL          = "AUTH_JWKS_URL"
	EnvJWTIssuer        = "AUTH_JWT_ISSUER"
	EnvJWTAudience      = "AUTH_JWT_AUDIENCE"
	EnvJWTKeysClaim     = "AUTH_JWT_KEYS_CLAIM"
	EnvJWTRequireExp    = "AUTH_JWT_REQUIRE_EXP"
)

// minJWTSecret is the shortest AUTH_JWT_SECRET accepted: an HMAC key
// shorter than the hash (HS256: 32 bytes) is refused (RFC 7518 3.2).
const minJWTSecret = 32

// Scoped holds the credentials that carry a grant: which Kafka keys their
// holder may read. Any of KeysFile, JWT.Secret, JWT.PublicKeyFile and
// JWT.JWKSURL turns authentication on by itself.
type Scoped struct {
	// KeysFile is AUTH_API_KEYS_FILE: a file of API keys, one a line, each
	// followed by the key patterns it may read. Read at start (a bad or
	// missing file stops the service) and re-read when it changes. Default
	// none.
	KeysFile string
	JWT      JWT
}

// JWT holds the JWT settings.
type JWT struct {
	// Secret is AUTH_JWT_SECRET: the HMAC key of HS256/384/512 tokens, at
	// least 32 bytes, taken verbatim. Default none.
	Secret string
	// PublicKeyFile is AUTH_JWT_PUBLIC_KEY_FILE: a PEM RSA, ECDSA or
	// Ed25519 public key (or a certificate). Default none.
	PublicKeyFile string
	// JWKSURL is AUTH_JWKS_URL: an https URL of a JSON Web Key Set
	// (plain http only to a loopback host: whoever answers it decides
	// which tokens are valid). Default none.
	JWKSURL string
	// Issuer and Audience are AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE: when
	// set, a token's iss must equal Issuer and its aud name Audience.
	// Default none (not checked).
	Issuer   string
	Audience string
	// KeysClaim is AUTH_JWT_KEYS_CLAIM: the claim listing the key
	// patterns a token may read. Default empty: the auth package's
	// default, "keys".
	KeysClaim string
	// AllowNoExp is AUTH_JWT_REQUIRE_EXP=false: tokens without exp are
	// accepted (and never expire). Default false: such a token is refused.
	AllowNoExp bool
}

// On reports whether any JWT verification key is configured.
func (j JWT) On() bool { return j.Secret != "" || j.PublicKeyFile != "" || j.JWKSURL != "" }

// On reports whether any scoped credential is configured.
func (s Scoped) On() bool { return s.KeysFile != "" || s.JWT.On() }

func (p *parser) scoped() Scoped {
	var s Scoped
	s.KeysFile, _ = p.get(EnvAPIKeysFile)
	j := &s.JWT
	j.Secret, _ = p.secret(EnvJWTSecret)
	if j.Secret != "" && len(j.Secret) < minJWTSecret {
		p.fail("%s: %d bytes, too short for HMAC (want at least %d random bytes)", EnvJWTSecret, len(j.Secret), minJWTSecret)
	}
	j.PublicKeyFile, _ = p.get(EnvJWTPublicKeyFile)
	if v, ok := p.get(EnvJWKSURL); ok {
		j.JWKSURL = p.jwksURL(v)
	}
	j.Issuer, _ = p.get(EnvJWTIssuer)
	j.Audience, _ = p.get(EnvJWTAudience)
	j.KeysClaim = p.str(EnvJWTKeysClaim)
	j.AllowNoExp = !p.boolean(EnvJWTRequireExp, true)
	if j.JWKSURL != "" && j.Audience == "" {
		p.warn(EnvJWKSURL + " without " + EnvJWTAudience + ": a token the key set's issuer signed for any other service is accepted too")
	}
	if !j.On() && (j.Issuer != "" || j.Audience != "") && !p.failedAny(EnvJWTSecret, EnvJWKSURL) {
		p.fail("%s/%s set but no JWT key is configured (set %s, %s or %s)", EnvJWTIssuer, EnvJWTAudience, EnvJWTSecret, EnvJWTPublicKeyFile, EnvJWKSURL)
	}
	return s
}

// jwksURL checks AUTH_JWKS_URL: https, or http to a loopback host. Its
// error shows the URL without user information and query, which may hold
// a secret.
func (p *parser) jwksURL(v string) string {
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		p.fail("%s: %s is not an https URL (want e.g. https://issuer.example.com/.well-known/jwks.json)", EnvJWKSURL, quote(redactURL(u, err)))
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		p.fail("%s: %s is not an https URL (want e.g. https://issuer.example.com/.well-known/jwks.json; plain http only to a loopback host)", EnvJWKSURL, quote(redactURL(u, err)))
	default:
		return v
	}
	return ""
}

// loopbackHost reports whether host (no port) is "localhost" or a
// loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL is u without user information, query and fragment, for an
// error line.
func redactURL(u *url.URL, err error) string {
	if err != nil {
		return "(unparsable)"
	}
	c := *u
	c.User, c.RawQuery, c.Fragment, c.ForceQuery = nil, "", "", false
	return c.String()
}
