package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultLeeway is the clock skew allowed on nbf. exp gets none at
// connect: a client accepted past its exp would be closed only after
// joining the hub.
const DefaultLeeway = 10 * time.Second

// DefaultKeysClaim is the claim that lists the key patterns a JWT grants.
const DefaultKeysClaim = "keys"

// minRSABits is the smallest RSA key accepted, from the PEM file or a
// JWKS.
const minRSABits = 2048

// Keyfunc sentinels, mapped to refusal reasons by reasonOf.
var (
	errBadAlgorithm = errors.New("algorithm not allowed")
	errUnknownKID   = errors.New("unknown kid")
	errBadClaims    = errors.New("bad keys claim")
)

// jwtVerifier checks JWTs against the configured keys: an HMAC secret, a
// public key from a PEM file, and a JWKS. It is immutable after
// construction (the JWKS updates itself) and safe for concurrent use.
type jwtVerifier struct {
	secret []byte           // nil: no HMAC
	public crypto.PublicKey // nil: no PEM key
	jwks   *jwks            // nil: no JWKS
	claim  string
	limits limits
	noExp  bool // tokens without exp are accepted
	now    func() time.Time
	parser *jwt.Parser
}

func newJWTVerifier(c Config) (*jwtVerifier, error) {
	v := &jwtVerifier{claim: c.JWTKeysClaim, limits: c.limits(), noExp: c.JWTAllowNoExp, now: c.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if v.claim == "" {
		v.claim = DefaultKeysClaim
	}
	if len(c.JWTSecret) > 0 {
		v.secret = c.JWTSecret
	}
	if c.JWTPublicKeyFile != "" {
		k, err := readPublicKey(c.JWTPublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.public = k
	}
	leeway := c.JWTLeeway
	if leeway <= 0 {
		leeway = DefaultLeeway
	}
	opts := []jwt.ParserOption{jwt.WithLeeway(leeway), jwt.WithTimeFunc(v.now)}
	if c.JWTIssuer != "" {
		opts = append(opts, jwt.WithIssuer(c.JWTIssuer))
	}
	if c.JWTAudience != "" {
		opts = append(opts, jwt.WithAudience(c.JWTAudience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// readPublicKey reads a PEM public key (PKIX "PUBLIC KEY", PKCS#1 "RSA
// PUBLIC KEY") or a certificate, and accepts RSA, ECDSA and Ed25519.
func readPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key file: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("public key file %s: no PEM block", path)
	}
	var k any
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(blk.Bytes); err == nil {
			k = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("public key file %s: a %q PEM block (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("public key file %s: %w", path, err)
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("public key file %s: an RSA key of %d bits (want at least %d)", path, k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("public key file %s: a %T (want RSA, ECDSA or Ed25519)", path, k)
}

// fits reports whether a key of this type verifies tokens signed with alg:
// the key decides the algorithm, so that an HMAC token is never checked
// against a public key, nor a public-key token against the wrong curve.
func fits(alg string, key any) bool {
	switch k := key.(type) {
	case []byte:
		return alg == "HS256" || alg == "HS384" || alg == "HS512"
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		case elliptic.P521():
			return alg == "ES512"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// keyfunc chooses the keys that may verify t: those whose type fits its
// alg, and from the JWKS the one named by its kid.
func (v *jwtVerifier) keyfunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	var keys []jwt.VerificationKey
	if v.secret != nil && fits(alg, v.secret) {
		keys = append(keys, v.secret)
	}
	if v.public != nil && fits(alg, v.public) {
		keys = append(keys, v.public)
	}
	kid, _ := t.Header["kid"].(string)
	if v.jwks != nil && kid != "" {
		k, ok := v.jwks.key(kid)
		switch {
		case ok && fits(alg, k.key) && (k.alg == "" || k.alg == alg):
			keys = append(keys, k.key)
		case !ok && len(keys) == 0:
			v.jwks.unknown()
			return nil, errUnknownKID
		}
	}
	if len(keys) == 0 {
		return nil, errBadAlgorithm
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// verify checks a token and returns its principal.
func (v *jwtVerifier) verify(s string) (Principal, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(s, claims, v.keyfunc); err != nil {
		return Principal{}, &Error{Reason: reasonOf(err)}
	}
	g, err := grantClaim(claims[v.claim])
	if err != nil {
		return Principal{}, &Error{Reason: ReasonBadClaims}
	}
	if err := v.limits.check(g.Keys); err != nil {
		return Principal{}, &Error{Reason: ReasonGrantTooLarge}
	}
	p := Principal{ID: "jwt:", Grant: g}
	if sub, _ := claims["sub"].(string); sub != "" {
		p.ID = "jwt:" + clip(sub, 64)
	}
	exp, err := claims.GetExpirationTime()
	if (err != nil || exp == nil) && !v.noExp {
		return Principal{}, &Error{Reason: ReasonNoExp}
	}
	if exp != nil {
		p.Expires = exp.Time
		// The parser allowed the leeway; a connection does not get it.
		if !p.Expires.After(v.now()) {
			return Principal{}, &Error{Reason: ReasonExpired}
		}
	}
	return p, nil
}

// grantClaim reads the keys claim: a non-empty list of non-empty strings,
// at most MaxGrantPatterns (the caller checks the finer bounds).
func grantClaim(c any) (Grant, error) {
	list, ok := c.([]any)
	if !ok || len(list) == 0 || len(list) > MaxGrantPatterns {
		return Grant{}, errBadClaims
	}
	patterns := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok || s == "" || strings.ContainsFunc(s, isControl) {
			return Grant{}, errBadClaims
		}
		patterns = append(patterns, s)
	}
	return grantOf(patterns), nil
}

// reasonOf maps a parser error to a refusal reason. The order matters:
// the parser joins claim errors, and a keyfunc error comes wrapped in
// ErrTokenUnverifiable.
func reasonOf(err error) Reason {
	switch {
	case errors.Is(err, errUnknownKID):
		return ReasonUnknownKID
	case errors.Is(err, errBadAlgorithm):
		return ReasonBadAlgorithm
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonBadAlgorithm // an alg the library does not know
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ReasonBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonBadIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonBadAudience
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return ReasonBadClaims // a required iss or aud missing, a claim of the wrong type
	}
	return ReasonMalformed
}

// looksLikeJWT reports whether s has the shape of a compact JWS: three
// base64url parts, the first starting like a JSON object ("eyJ").
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, s)
}
