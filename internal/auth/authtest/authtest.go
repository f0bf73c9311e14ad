// Package authtest helps tests of credentials: it mints JWTs and serves a
// JSON Web Key Set over HTTP that the test can change. It is imported only
// by tests.
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Mint signs claims with key under method, with a kid header when kid is
// not empty.
func Mint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// None returns an unsigned token (alg none) with claims.
func None(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// JWKS encodes public keys (RSA, ECDSA, Ed25519) by kid as a JWK set.
func JWKS(t testing.TB, keys map[string]any) []byte {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		m := map[string]string{"kid": kid, "use": "sig"}
		switch k := k.(type) {
		case *rsa.PublicKey:
			m["kty"], m["n"], m["e"] = "RSA", enc(k.N.Bytes()), enc([]byte{1, 0, 1})
		case *ecdsa.PublicKey:
			b, err := k.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			size := (k.Curve.Params().BitSize + 7) / 8
			m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, enc(b[1:1+size]), enc(b[1+size:])
		case ed25519.PublicKey:
			m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(k)
		default:
			t.Fatalf("authtest: a %T in a JWKS", k)
		}
		set.Keys = append(set.Keys, m)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// JWKSServer serves a JWK set over HTTP until the test ends, counting the
// fetches.
type JWKSServer struct {
	*httptest.Server
	// Fetches counts the requests served.
	Fetches atomic.Int64

	mu   sync.Mutex
	body []byte // guarded by mu
}

// NewJWKSServer serves keys (see JWKS).
func NewJWKSServer(t testing.TB, keys map[string]any) *JWKSServer {
	s := &JWKSServer{}
	s.Set(t, keys)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.Fetches.Add(1)
		s.mu.Lock()
		b := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// Set replaces the keys served (a rotation).
func (s *JWKSServer) Set(t testing.TB, keys map[string]any) { s.SetBody(JWKS(t, keys)) }

// SetBody replaces what is served with b, good or not.
func (s *JWKSServer) SetBody(b []byte) {
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

// TestKeys are signing keys for tests.
type TestKeys struct {
	RSA   *rsa.PrivateKey   // 2048 bits
	EC    *ecdsa.PrivateKey // P-256
	EC2   *ecdsa.PrivateKey // P-256, another
	EC384 *ecdsa.PrivateKey // P-384
	Ed    ed25519.PrivateKey
}

// Keys returns keys generated once per test binary: RSA generation is
// slow under -race.
var Keys = sync.OnceValue(func() TestKeys {
	var k TestKeys
	var err error
	if k.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	for _, p := range []struct {
		key   **ecdsa.PrivateKey
		curve elliptic.Curve
	}{{&k.EC, elliptic.P256()}, {&k.EC2, elliptic.P256()}, {&k.EC384, elliptic.P384()}} {
		if *p.key, err = ecdsa.GenerateKey(p.curve, rand.Reader); err != nil {
			panic(err)
		}
	}
	if _, k.Ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})
