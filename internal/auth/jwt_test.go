package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdest/wsdest/internal/auth/authtest"
)

func testKeys() (k struct {
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	ec384 *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
}) {
	t := authtest.Keys()
	k.rsa, k.ec, k.ec384, k.ed = t.RSA, t.EC, t.EC384, t.Ed
	return k
}

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

// globList returns n distinct glob patterns, sorted.
func globList(n int) []string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf("g%03d-*", i)
	}
	return l
}

func mint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	return authtest.Mint(t, method, key, kid, claims)
}

// claims returns valid claims for tenant a, changed by kv.
func claims(kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice", "iss": "https://issuer.test", "aud": "wsdest",
		"exp": time.Now().Add(time.Hour).Unix(), "keys": []string{"t-a/*"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func pemFile(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runAuth runs a's Run until the test ends.
func runAuth(t testing.TB, a *Authenticator, revoke func([]string)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx, revoke)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func authorizeToken(a *Authenticator, tok string) (Principal, error) {
	return a.Authorize(httptest.NewRequest(http.MethodGet, "/ws?token="+tok, nil), AmbientAllowed)
}

func reasonOfErr(err error) Reason {
	if e, ok := AsError(err); ok {
		return e.Reason
	}
	return ""
}

func TestJWT(t *testing.T) {
	k := testKeys()
	js := authtest.NewJWKSServer(t, map[string]any{"ec-1": &k.ec.PublicKey, "ed-1": k.ed.Public()})
	full := mustNew(t, Config{
		JWTSecret: []byte(testSecret), JWTPublicKeyFile: pemFile(t, &k.rsa.PublicKey), JWKSURL: js.URL,
		JWTIssuer: "https://issuer.test", JWTAudience: "wsdest",
	})
	runAuth(t, full, func([]string) {})
	waitFor(t, "the JWKS", func() bool { _, ok := full.jwt.jwks.key("ec-1"); return ok })
	publicOnly := mustNew(t, Config{JWTPublicKeyFile: pemFile(t, &k.rsa.PublicKey)})
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsa.PublicKey))})
	claimNamed := mustNew(t, Config{JWTSecret: []byte(testSecret), JWTKeysClaim: "devices"})
	hs := func(c jwt.MapClaims) string { return mint(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	tampered := func(tok string) string {
		parts := strings.Split(tok, ".")
		p, _ := base64.RawURLEncoding.DecodeString(parts[1])
		p = bytes.Replace(p, []byte("t-a/*"), []byte("*\",\"x"), 1)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
	}
	none := func(c jwt.MapClaims) string { return authtest.None(t, c) }

	tests := []struct {
		name  string
		a     *Authenticator
		token string
		want  Reason // "" = accepted
		grant Grant
	}{
		{"HS256", full, hs(claims()), "", Grant{Keys: []string{"t-a/*"}}},
		{"HS384", full, mint(t, jwt.SigningMethodHS384, []byte(testSecret), "", claims()), "", Grant{Keys: []string{"t-a/*"}}},
		{"HS512", full, mint(t, jwt.SigningMethodHS512, []byte(testSecret), "", claims()), "", Grant{Keys: []string{"t-a/*"}}},
		{"RS256 from the PEM file", full, mint(t, jwt.SigningMethodRS256, k.rsa, "", claims()), "", Grant{Keys: []string{"t-a/*"}}},
		{"PS256 from the PEM file", full, mint(t, jwt.SigningMethodPS256, k.rsa, "", claims()), "", Grant{Keys: []string{"t-a/*"}}},
		{"ES256 from the JWKS", full, mint(t, jwt.SigningMethodES256, k.ec, "ec-1", claims()), "", Grant{Keys: []string{"t-a/*"}}},
		{"EdDSA from the JWKS", full, mint(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", claims()), "", Grant{Keys: []string{"t-a/*"}}},
		{"grant all", full, hs(claims("keys", []string{"*"})), "", Grant{All: true}},
		{"several patterns", full, hs(claims("keys", []string{"t-a/1", "t-b/*"})), "", Grant{Keys: []string{"t-a/1", "t-b/*"}}},
		{"not yet valid within leeway", full, hs(claims("nbf", time.Now().Add(3*time.Second).Unix())), "", Grant{Keys: []string{"t-a/*"}}},
		{"patterns as a set", full, hs(claims("keys", []string{"t-b/*", "t-a/1", "t-b/*"})), "", Grant{Keys: []string{"t-a/1", "t-b/*"}}},
		{"globs at the bound", full, hs(claims("keys", globList(64))), "", Grant{Keys: globList(64)}},
		{"custom keys claim", claimNamed, hs(claims("devices", []string{"d-1"})), "", Grant{Keys: []string{"d-1"}}},

		{"expired", full, hs(claims("exp", time.Now().Add(-time.Minute).Unix())), ReasonExpired, Grant{}},
		// Accepted within the leeway, such a client would be closed only
		// after joining, with records perhaps queued for it already.
		{"expired within leeway", full, hs(claims("exp", time.Now().Add(-3*time.Second).Unix())), ReasonExpired, Grant{}},
		{"no exp", full, hs(claims("exp", nil)), ReasonNoExp, Grant{}},
		{"too many globs", full, hs(claims("keys", globList(65))), ReasonGrantTooLarge, Grant{}},
		{"pattern too long", full, hs(claims("keys", []string{strings.Repeat("p", 257)})), ReasonGrantTooLarge, Grant{}},
		{"not yet valid", full, hs(claims("nbf", time.Now().Add(time.Minute).Unix())), ReasonNotYetValid, Grant{}},
		{"wrong issuer", full, hs(claims("iss", "https://other.test")), ReasonBadIssuer, Grant{}},
		{"no issuer", full, hs(claims("iss", nil)), ReasonBadClaims, Grant{}},
		{"exp not a number", full, hs(claims("exp", "tomorrow")), ReasonBadClaims, Grant{}},
		{"wrong audience", full, hs(claims("aud", "someone-else")), ReasonBadAudience, Grant{}},
		{"wrong secret", full, mint(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), "", claims()), ReasonBadSignature, Grant{}},
		{"tampered", full, tampered(hs(claims())), ReasonBadSignature, Grant{}},
		{"tampered RS256", full, tampered(mint(t, jwt.SigningMethodRS256, k.rsa, "", claims())), ReasonBadSignature, Grant{}},
		{"alg none", full, none(claims()), ReasonBadAlgorithm, Grant{}},
		{"alg none, public key only", publicOnly, none(claims()), ReasonBadAlgorithm, Grant{}},
		{"HS256 signed with the public key", publicOnly, mint(t, jwt.SigningMethodHS256, rsaPEM, "", claims()), ReasonBadAlgorithm, Grant{}},
		{"HS256 signed with the public key, secret set", full, mint(t, jwt.SigningMethodHS256, rsaPEM, "", claims()), ReasonBadSignature, Grant{}},
		{"ES384 on a P-256 key", full, mint(t, jwt.SigningMethodES384, k.ec384, "ec-1", claims()), ReasonBadAlgorithm, Grant{}},
		{"RS256 without a public key", claimNamed, mint(t, jwt.SigningMethodRS256, k.rsa, "", claims()), ReasonBadAlgorithm, Grant{}},
		{"unknown kid", full, mint(t, jwt.SigningMethodES256, k.ec, "ec-9", claims()), ReasonUnknownKID, Grant{}},
		{"no keys claim", full, hs(claims("keys", nil)), ReasonBadClaims, Grant{}},
		{"empty keys claim", full, hs(claims("keys", []string{})), ReasonBadClaims, Grant{}},
		{"keys claim a string", full, hs(claims("keys", "t-a/*")), ReasonBadClaims, Grant{}},
		{"keys claim with an empty pattern", full, hs(claims("keys", []string{""})), ReasonBadClaims, Grant{}},
		{"not a JWT", full, "eyJ.nope.x", ReasonMalformed, Grant{}},
		{"an unknown API key", full, "some-api-key", ReasonUnknownKey, Grant{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := authorizeToken(tt.a, tt.token)
			if got := reasonOfErr(err); got != tt.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.want)
			}
			if err != nil {
				if strings.Contains(err.Error(), tt.token) {
					t.Errorf("error %q holds the token", err)
				}
				return
			}
			if p.Grant.All != tt.grant.All || !slices.Equal(p.Grant.Keys, tt.grant.Keys) {
				t.Errorf("grant %+v, want %+v", p.Grant, tt.grant)
			}
			if tt.a == full && (p.ID != "jwt:alice" || p.Expires.IsZero()) {
				t.Errorf("principal %q expires %v, want jwt:alice with an expiry", p.ID, p.Expires)
			}
		})
	}
	if n := full.Refusals()[ReasonBadSignature]; n != 4 {
		t.Errorf("bad_signature counted %d times, want 4", n)
	}
}

// A token travels in ?token=, a Bearer header or the wsdest_token cookie.
func TestJWTTransports(t *testing.T) {
	a := mustNew(t, Config{JWTSecret: []byte(testSecret)})
	tok := mint(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims("iss", nil, "aud", nil))
	reqs := map[string]*http.Request{
		"query":  httptest.NewRequest(http.MethodGet, "/ws?token="+tok, nil),
		"bearer": httptest.NewRequest(http.MethodGet, "/ws", nil),
		"cookie": httptest.NewRequest(http.MethodGet, "/ws", nil),
	}
	reqs["bearer"].Header.Set("Authorization", "Bearer "+tok)
	reqs["cookie"].AddCookie(&http.Cookie{Name: CookieName, Value: tok})
	for name, r := range reqs {
		if p, err := a.Authorize(r, AmbientAllowed); err != nil || p.ID != "jwt:alice" {
			t.Errorf("%s: %q %v", name, p.ID, err)
		}
	}
	if _, err := a.Authorize(httptest.NewRequest(http.MethodGet, "/ws", nil), AmbientAllowed); reasonOfErr(err) != ReasonMissing {
		t.Errorf("no credential: %v, want missing", err)
	}
}

// A token naming an unknown kid is refused at once; the set is refetched
// in the background, at most once per JWKSMinRefetch however many such
// tokens arrive, and a key added to the set (rotation) is then accepted.
func TestJWKSUnknownKIDAndRotation(t *testing.T) {
	k := testKeys()
	js := authtest.NewJWKSServer(t, map[string]any{"old": &k.ec.PublicKey})
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := mustNew(t, Config{JWKSURL: js.URL, JWKSMinRefetch: time.Hour})
	runAuth(t, a, func([]string) {})
	old := mint(t, jwt.SigningMethodES256, k.ec, "old", claims("iss", nil, "aud", nil))
	waitFor(t, "the first fetch", func() bool { _, err := authorizeToken(a, old); return err == nil })

	// A flood of made-up kids: each refused at once, one refetch at most
	// (and with an hour between refetches, none before the test ends).
	for i := range 200 {
		tok := mint(t, jwt.SigningMethodES256, k.ec, "made-up-"+string(rune('a'+i%26)), claims("iss", nil, "aud", nil))
		if _, err := authorizeToken(a, tok); reasonOfErr(err) != ReasonUnknownKID {
			t.Fatalf("made-up kid: %v, want unknown_kid", err)
		}
	}
	if n := js.Fetches.Load(); n != 1 {
		t.Errorf("%d fetches after a flood of unknown kids, want 1", n)
	}

	// Rotation, with refetches allowed every 50 ms.
	b := mustNew(t, Config{JWKSURL: js.URL, JWKSMinRefetch: 50 * time.Millisecond})
	runAuth(t, b, func([]string) {})
	waitFor(t, "the first fetch", func() bool { _, err := authorizeToken(b, old); return err == nil })
	js.Set(t, map[string]any{"old": &k.ec.PublicKey, "new": &newKey.PublicKey})
	rotated := mint(t, jwt.SigningMethodES256, newKey, "new", claims("iss", nil, "aud", nil))
	waitFor(t, "the rotated key", func() bool { _, err := authorizeToken(b, rotated); return err == nil })
	js.Set(t, map[string]any{"new": &newKey.PublicKey})
	waitFor(t, "the retired key refused", func() bool {
		_, err := authorizeToken(b, old)
		return reasonOfErr(err) == ReasonUnknownKID
	})
}

// A JWKS that cannot be fetched keeps the keys held, and says so once.
func TestJWKSFetchFailureKeepsKeys(t *testing.T) {
	k := testKeys()
	js := authtest.NewJWKSServer(t, map[string]any{"ec-1": &k.ec.PublicKey})
	var log bytes.Buffer
	var mu sync.Mutex
	a := mustNew(t, Config{JWKSURL: js.URL + "/jwks.json?access=s3cr3t-q", JWKSMinRefetch: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &log, mu: &mu}, nil))})
	runAuth(t, a, func([]string) {})
	tok := mint(t, jwt.SigningMethodES256, k.ec, "ec-1", claims("iss", nil, "aud", nil))
	waitFor(t, "the first fetch", func() bool { _, err := authorizeToken(a, tok); return err == nil })
	// Not a set; a set without keys; one with no usable key (an
	// encryption key, a symmetric key): each a failed fetch, never an
	// empty set.
	for _, body := range []string{"not json", `{"keys":[]}`, `{}`,
		`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"},{"kty":"EC","kid":"enc","use":"enc","crv":"P-256","x":"","y":""}]}`} {
		js.SetBody([]byte(body))
		before := js.Fetches.Load()
		_, _ = authorizeToken(a, mint(t, jwt.SigningMethodES256, k.ec, "other", claims()))
		waitFor(t, "a refetch", func() bool { return js.Fetches.Load() > before })
		// The fetch that was counted may still be parsing: a direct one
		// is over when it returns.
		if err := a.jwt.jwks.fetch(t.Context()); err == nil {
			t.Errorf("fetch of %s: no error", body)
		}
		if _, err := authorizeToken(a, tok); err != nil {
			t.Fatalf("held key lost after fetching %s: %v", body, err)
		}
	}
	if _, err := authorizeToken(a, tok); err != nil {
		t.Fatalf("held key lost after failed fetches: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(log.String(), "jwks: fetch failed"); n != 1 {
		t.Errorf("%d failure lines, want 1:\n%s", n, log.String())
	}
	if strings.Contains(log.String(), "s3cr3t-q") {
		t.Errorf("the log holds the URL's query:\n%s", log.String())
	}

}

// The key set is fetched from where AUTH_JWKS_URL says: a redirect to
// another host, or from https to http, is refused (whoever answers
// decides which tokens are valid); one on the same host is followed.
func TestJWKSRedirects(t *testing.T) {
	k := testKeys()
	js := authtest.NewJWKSServer(t, map[string]any{"ec-1": &k.ec.PublicKey})
	body := authtest.JWKS(t, map[string]any{"ec-1": &k.ec.PublicKey})
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/jwks.json", http.StatusFound) })
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(js.URL, "127.0.0.1", "localhost", 1), http.StatusFound)
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, js.URL, http.StatusFound) })
	plain := httptest.NewServer(mux)
	defer plain.Close()
	tls := httptest.NewTLSServer(mux)
	defer tls.Close()
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{plain.URL + "/moved", true},
		{tls.URL + "/moved", true},
		{plain.URL + "/elsewhere", false},
		{tls.URL + "/plain", false},
	} {
		a := mustNew(t, Config{JWKSURL: tt.url, JWKSClient: tls.Client()})
		err := a.jwt.jwks.fetch(t.Context())
		if _, held := a.jwt.jwks.key("ec-1"); (err == nil) != tt.ok || held != tt.ok {
			t.Errorf("%s: fetch %v, key held %v, want %v", tt.url, err, held, tt.ok)
		}
	}
	if n := js.Fetches.Load(); n != 0 {
		t.Errorf("the other host was asked %d times", n)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestPublicKeyFile(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, pub := range []any{&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()} {
		if _, err := New(Config{JWTPublicKeyFile: pemFile(t, pub)}); err != nil {
			t.Errorf("%T: %v", pub, err)
		}
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k.ec))})
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing":     filepath.Join(dir, "none.pem"),
		"not PEM":     write("junk.pem", []byte("junk")),
		"private key": write("priv.pem", priv),
		"small RSA":   pemFile(t, &small.PublicKey),
	} {
		_, err := New(Config{JWTPublicKeyFile: path})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), string(priv[30:60])) {
			t.Errorf("%s: error holds key material: %v", name, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkVerify is the cost of checking one connection's JWT.
func BenchmarkVerify(b *testing.B) {
	k := testKeys()
	cases := []struct {
		name   string
		cfg    Config
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", Config{JWTSecret: []byte(testSecret)}, jwt.SigningMethodHS256, []byte(testSecret)},
		{"RS256", Config{JWTPublicKeyFile: pemFile(b, &k.rsa.PublicKey)}, jwt.SigningMethodRS256, k.rsa},
		{"ES256", Config{JWTPublicKeyFile: pemFile(b, &k.ec.PublicKey)}, jwt.SigningMethodES256, k.ec},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			a := mustNew(b, c.cfg)
			r := httptest.NewRequest(http.MethodGet, "/ws?token="+mint(b, c.method, c.key, "", claims("iss", nil, "aud", nil)), nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authorize(r, AmbientAllowed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A JWKS URL's query and user information (which may hold a secret) stay
// out of log lines and fetch errors.
func TestJWKSURLNotShown(t *testing.T) {
	j := newJWKS("http://user:pw-s3cr3t@127.0.0.1:1/jwks?access=q-s3cr3t", nil, 0, 0, slog.New(slog.DiscardHandler))
	if j.shown != "http://127.0.0.1:1/jwks" {
		t.Errorf("shown %q", j.shown)
	}
	err := j.fetch(t.Context())
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("fetch error %v", err)
	}
}
