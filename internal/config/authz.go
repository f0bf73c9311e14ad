package config

import (
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
	// JWKSURL is AUTH_JWKS_URL: an http(s) URL of a JSON Web Key Set.
	// Default none.
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
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.fail("%s: %s is not an http(s) URL (want e.g. https://issuer.example.com/.well-known/jwks.json)", EnvJWKSURL, quote(v))
		} else {
			j.JWKSURL = v
		}
	}
	j.Issuer, _ = p.get(EnvJWTIssuer)
	j.Audience, _ = p.get(EnvJWTAudience)
	j.KeysClaim = p.str(EnvJWTKeysClaim)
	if !j.On() && (j.Issuer != "" || j.Audience != "") && !p.failedAny(EnvJWTSecret, EnvJWKSURL) {
		p.fail("%s/%s set but no JWT key is configured (set %s, %s or %s)", EnvJWTIssuer, EnvJWTAudience, EnvJWTSecret, EnvJWTPublicKeyFile, EnvJWKSURL)
	}
	return s
}
