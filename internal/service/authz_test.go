package service_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/auth/authtest"
	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/service"
)

const (
	jwtSecret   = "e2e-hmac-secret-0123456789abcdef0123456789"
	jwtIssuer   = "https://issuer.test"
	jwtAudience = "wsdest"
	tenantAKey  = "tenant-a-api-key-7f3c9d"
	exactKey    = "exact-api-key-51e0aa"
	adminKey    = "admin-api-key-c0ffee"
)

func authKeys() (k struct {
	rsa     *rsa.PrivateKey
	ec, ec2 *ecdsa.PrivateKey
}) {
	t := authtest.Keys()
	k.rsa, k.ec, k.ec2 = t.RSA, t.EC, t.EC2
	return k
}

// authSetup is a broker and the auth settings of a service that accepts
// every kind of credential: a keys file, HMAC, a PEM public key and a
// JWKS served by the test.
type authSetup struct {
	b        *e2etest.Broker
	env      e2etest.Env
	keysFile string
	jwks     *authtest.JWKSServer
	secrets  []string // every key and token used, for the leak check
}

func newAuthSetup(t *testing.T, topic string) *authSetup {
	t.Helper()
	k := authKeys()
	dir := t.TempDir()
	s := &authSetup{b: e2etest.StartBroker(t, topic, 3), keysFile: filepath.Join(dir, "keys")}
	writeKeys(t, s.keysFile, "# the test's keys\n"+tenantAKey+" t-a/*\n"+exactKey+" t-b/1\n"+adminKey+" *\n")
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(dir, "jwt.pem")
	if err := os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s.jwks = authtest.NewJWKSServer(t, map[string]any{"ec-1": &k.ec.PublicKey})
	s.env = e2etest.BrokerEnv(s.b).With(e2etest.Env{
		config.EnvAPIKeysFile:      s.keysFile,
		config.EnvJWTSecret:        jwtSecret,
		config.EnvJWTPublicKeyFile: pemPath,
		config.EnvJWKSURL:          s.jwks.URL,
		config.EnvJWTIssuer:        jwtIssuer,
		config.EnvJWTAudience:      jwtAudience,
		"LOG_LEVEL":                "debug",
	})
	s.secrets = []string{jwtSecret, tenantAKey, exactKey, adminKey}
	return s
}

// writeKeys replaces the keys file atomically (a rename, as a secret
// mount's symlink swap is).
func writeKeys(t *testing.T, path, contents string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// token mints a token for sub with grant keys, changed by kv (a nil
// value deletes the claim), signed per kind: "HS256" with the secret,
// "RS256" with the PEM file's key, "ES256" with the JWKS key ec-1. It is
// remembered for the leak check.
func (s *authSetup) token(t *testing.T, kind string, keys []string, kv ...any) string {
	t.Helper()
	k := authKeys()
	c := jwt.MapClaims{"sub": "user-" + kind, "iss": jwtIssuer, "aud": jwtAudience,
		"exp": time.Now().Add(time.Hour).Unix(), "keys": keys}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	var tok string
	switch kind {
	case "HS256":
		tok = authtest.Mint(t, jwt.SigningMethodHS256, []byte(jwtSecret), "", c)
	case "RS256":
		tok = authtest.Mint(t, jwt.SigningMethodRS256, k.rsa, "", c)
	case "ES256":
		tok = authtest.Mint(t, jwt.SigningMethodES256, k.ec, "ec-1", c)
	default:
		t.Fatalf("token kind %s", kind)
	}
	s.secrets = append(s.secrets, tok)
	return tok
}

// credential is one way of presenting a credential.
type credential struct {
	name   string
	query  string      // "token=..." or ""
	header http.Header // for WebSocket and SSE
}

func (c credential) path(p string) string {
	if c.query == "" {
		return p
	}
	if strings.Contains(p, "?") {
		return p + "&" + c.query
	}
	return p + "?" + c.query
}

func (c credential) opts() []e2etest.DialOption {
	if c.header == nil {
		return nil
	}
	return []e2etest.DialOption{e2etest.WithHeader(c.header)}
}

// tenantA returns a credential of each kind granting t-a/*: an API key
// from the file (?token=), HS256 (Bearer), RS256 (cookie) and ES256 from
// the JWKS (?token=).
func (s *authSetup) tenantA(t *testing.T) []credential {
	return []credential{
		{name: "api key", query: "token=" + tenantAKey},
		{name: "HS256", header: http.Header{"Authorization": {"Bearer " + s.token(t, "HS256", []string{"t-a/*"})}}},
		{name: "RS256", header: http.Header{"Cookie": {"wsdest_token=" + s.token(t, "RS256", []string{"t-a/*"})}}},
		{name: "ES256 JWKS", query: "token=" + s.token(t, "ES256", []string{"t-a/*"})},
	}
}

// authKeyOf is the key of record i: tenant a, tenant b, and no key.
func authKeyOf(i int) []byte {
	switch i % 5 {
	case 0:
		return []byte("t-a/1")
	case 1:
		return []byte("t-b/1")
	case 2:
		return []byte("t-a/2")
	case 3:
		return []byte("t-b/2")
	}
	return nil
}

// produceAuth produces records from to to-1 keyed by authKeyOf, stamped
// at+i ms.
func produceAuth(p *e2etest.Producer, from, to int, at time.Time) {
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		r := e2etest.Record(authKeyOf(i), []byte(fmt.Sprintf(`{"i":%d}`, i)))
		r.Timestamp = at.Add(time.Duration(i) * time.Millisecond)
		recs = append(recs, r)
	}
	p.ProduceRecords(recs...)
}

// which returns the i in [from, to) whose key is granted by match.
func which(from, to int, match func(key []byte) bool) []int {
	var out []int
	for i := from; i < to; i++ {
		if match(authKeyOf(i)) {
			out = append(out, i)
		}
	}
	return out
}

func tenantAOnly(k []byte) bool { return strings.HasPrefix(string(k), "t-a/") }

// checkNoSecrets fails if a key or token appears in the service's log,
// /metrics or /stats.
func checkNoSecrets(t *testing.T, svc *e2etest.Service, secrets []string) {
	t.Helper()
	_, metrics := svc.Get(t, "/metrics")
	_, stats := svc.Get(t, "/stats")
	for name, text := range map[string]string{"log": svc.Log.String(), "metrics": metrics, "stats": stats} {
		for _, s := range secrets {
			for _, form := range []string{s, s[:len(s)*2/3]} {
				if strings.Contains(text, form) {
					t.Errorf("the %s holds a credential %.12q…", name, s)
				}
			}
		}
	}
}

// expect403 dials path as WebSocket and SSE and wants 403 naming key,
// without the credential in the body.
func expect403(t *testing.T, svc *e2etest.Service, c credential, path, key string, secrets []string) {
	t.Helper()
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	_, err := e2etest.Dial(ctx, svc.URL(c.path("/ws"+path)), c.opts()...)
	var de *e2etest.DialError
	if !errors.As(err, &de) || de.Status != http.StatusForbidden || !strings.Contains(de.Body, `"`+key+`"`) {
		t.Fatalf("WebSocket %s: %v, want 403 naming %q", path, err, key)
	}
	_, resp, err := e2etest.DialSSE(ctx, svc.HTTPURL(c.path("/sse"+path)), c.header)
	if err != nil || resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("X-Test-Body"), `"`+key+`"`) {
		t.Fatalf("SSE %s: %v %v, want 403 naming %q", path, resp.StatusCode, err, key)
	}
	for _, s := range secrets {
		if strings.Contains(de.Body, s) || strings.Contains(resp.Header.Get("X-Test-Body"), s) {
			t.Fatalf("403 body holds the credential")
		}
	}
}

// TestGrants: for each kind of credential granting t-a/*, every path a
// record leaves by delivers only t-a/* records: live (all, a key in scope,
// a glob), last=N, a cursor resume, SSE, and the catch-up and last=N from
// Kafka of a process without history; an exact key outside the grant is refused 403
// (path and ?key=, WebSocket and SSE), naming the key. A key granted one
// exact key, and one granting everything, see theirs.
func TestGrants(t *testing.T) {
	s := newAuthSetup(t, "grants")
	svc := e2etest.StartService(t, s.env)
	cold := e2etest.StartService(t, s.env.With(e2etest.Env{"HISTORY_BYTES": "0"}))
	svc.WaitReady(t)
	cold.WaitReady(t)
	p := e2etest.NewProducer(t, s.b)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	produceAuth(p, 0, 20, at)
	// Records 0-19 are in the past for every client connected below.
	for _, sv := range []*e2etest.Service{svc, cold} {
		e2etest.Eventually(t, "records 0-19 published", func() bool { return sv.Stats(t).Hub.Published == 20 })
	}

	creds := s.tenantA(t)
	type clients struct {
		all, inScope, glob, last *e2etest.Client
		sse                      *e2etest.SSEClient
	}
	cs := make([]clients, len(creds))
	for i, c := range creds {
		cs[i] = clients{
			all:     e2etest.Connect(t, svc.URL(c.path("/ws?envelope=true")), c.opts()...),
			inScope: e2etest.Connect(t, svc.URL(c.path("/ws/t-a/1?envelope=true")), c.opts()...),
			glob:    e2etest.Connect(t, svc.URL(c.path("/ws/t-*?envelope=true")), c.opts()...),
			last:    e2etest.Connect(t, svc.URL(c.path("/ws?envelope=true&last=3")), c.opts()...),
			sse:     e2etest.ConnectSSE(t, svc.HTTPURL(c.path("/sse?envelope=true&last=2")), c.header),
		}
	}
	exact := e2etest.Connect(t, svc.URL("/ws?envelope=true&token="+exactKey))
	admin := e2etest.Connect(t, svc.URL("/ws?envelope=true&token="+adminKey))
	// last=N counts only what the grant covers: the three most recent
	// t-a records of 0-19 (SSE: two).
	lastA := which(0, 20, tenantAOnly)
	for i := range creds {
		checkStream(t, readEnv(t, cs[i].last, 3), lastA[len(lastA)-3:])
		got, _ := readSSE(t, cs[i].sse, 2)
		checkStream(t, got, lastA[len(lastA)-2:])
	}
	produceAuth(p, 20, 40, at)
	liveA := which(20, 40, tenantAOnly)
	for i, c := range creds {
		t.Run(c.name, func(t *testing.T) {
			all := readEnv(t, cs[i].all, len(liveA))
			checkStream(t, all, liveA)
			checkStream(t, readEnv(t, cs[i].inScope, len(which(20, 40, func(k []byte) bool { return string(k) == "t-a/1" }))),
				which(20, 40, func(k []byte) bool { return string(k) == "t-a/1" }))
			checkStream(t, readEnv(t, cs[i].glob, len(liveA)), liveA)
			checkStream(t, readEnv(t, cs[i].last, len(liveA)), liveA)
			sseGot, _ := readSSE(t, cs[i].sse, len(liveA))
			checkStream(t, sseGot, liveA)
			for _, cl := range []*e2etest.Client{cs[i].all, cs[i].inScope, cs[i].glob, cs[i].last} {
				cl.ExpectQuiet(t)
			}
			cs[i].sse.ExpectQuiet(t)

			// A cursor resume from the middle of the live records.
			r := e2etest.Connect(t, svc.URL(c.path("/ws?envelope=true&from="+all[2].Cursor)), c.opts()...)
			checkStream(t, append(all[:3:3], readEnv(t, r, len(liveA)-3)...), liveA)
			r.ExpectQuiet(t)
			// The catch-up from Kafka, in a process that keeps no history.
			k := e2etest.Connect(t, cold.URL(c.path("/ws?envelope=true&from=earliest")), c.opts()...)
			checkStream(t, readEnv(t, k, len(lastA)+len(liveA)), append(append([]int(nil), lastA...), liveA...))
			k.ExpectQuiet(t)
			// last=N read backwards from Kafka counts only t-a records too.
			kl := e2etest.Connect(t, cold.URL(c.path("/ws?envelope=true&last=3")), c.opts()...)
			checkStream(t, readEnv(t, kl, 3), liveA[len(liveA)-3:])
			kl.ExpectQuiet(t)

			expect403(t, svc, c, "/t-b/1", "t-b/1", s.secrets)
			expect403(t, svc, c, "?key=t-a/1&key=t-b/2", "t-b/2", s.secrets)
		})
	}
	t.Run("exact grant", func(t *testing.T) {
		want := which(20, 40, func(k []byte) bool { return string(k) == "t-b/1" })
		checkStream(t, readEnv(t, exact, len(want)), want)
		exact.ExpectQuiet(t)
	})
	t.Run("grant all", func(t *testing.T) {
		checkStream(t, readEnv(t, admin, 20), span(20, 40)) // the records without a key too
	})
	checkNoSecrets(t, svc, s.secrets)
	checkNoSecrets(t, cold, s.secrets)
}

// TestJWTRefusals: a token that is expired, not yet valid, for another
// issuer or audience, tampered, unsigned, signed with HMAC over the public
// key, without a keys claim, or naming an unknown kid is refused
// (WebSocket: 1008 "credential not accepted"; SSE: 401), each counted under its
// reason; then the JWKS rotates in the unknown kid and the same token is
// accepted.
func TestJWTRefusals(t *testing.T) {
	s := newAuthSetup(t, "refusals")
	svc := e2etest.StartService(t, s.env)
	svc.WaitReady(t)
	k := authKeys()
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsa.PublicKey))})
	good := s.token(t, "HS256", []string{"*"})
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "user-HS256", "root", 1))) + "." + parts[2]
	claims := jwt.MapClaims{"sub": "x", "iss": jwtIssuer, "aud": jwtAudience, "keys": []string{"*"}, "exp": time.Now().Add(time.Hour).Unix()}
	rotated := authtest.Mint(t, jwt.SigningMethodES256, k.ec2, "ec-2", claims)
	s.secrets = append(s.secrets, tampered, rotated)
	none := authtest.None(t, claims)
	confused := authtest.Mint(t, jwt.SigningMethodHS256, rsaPEM, "", claims)
	tests := []struct {
		name, token, reason string
	}{
		{"expired", s.token(t, "RS256", []string{"*"}, "exp", time.Now().Add(-time.Hour).Unix()), "expired"},
		{"not yet valid", s.token(t, "ES256", []string{"*"}, "nbf", time.Now().Add(time.Hour).Unix()), "not_yet_valid"},
		{"wrong issuer", s.token(t, "HS256", []string{"*"}, "iss", "https://evil.test"), "bad_issuer"},
		{"wrong audience", s.token(t, "HS256", []string{"*"}, "aud", "another-service"), "bad_audience"},
		{"tampered", tampered, "bad_signature"},
		{"alg none", none, "bad_algorithm"},
		{"HMAC over the public key", confused, "bad_signature"},
		{"no keys claim", s.token(t, "HS256", nil, "keys", nil), "bad_claims"},
		{"unknown kid", rotated, "unknown_kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e2etest.Connect(t, svc.URL("/ws?token="+tt.token), e2etest.NoSync())
			c.ExpectClose(t, 1008, "credential not accepted")
			ctx, cancel := e2etest.Context(t)
			defer cancel()
			_, resp, err := e2etest.DialSSE(ctx, svc.HTTPURL("/sse"), http.Header{"Authorization": {"Bearer " + tt.token}})
			if err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("SSE: %v %v, want 401", resp, err)
			}
			_, metrics := svc.Get(t, "/metrics")
			if !strings.Contains(metrics, `wsdest_auth_refusals_total{reason="`+tt.reason+`"}`) ||
				strings.Contains(metrics, `wsdest_auth_refusals_total{reason="`+tt.reason+`"} 0`) {
				t.Errorf("refusal not counted as %s", tt.reason)
			}
		})
	}
	// The JWKS rotates in ec-2: the refused token is accepted once the set
	// is refetched (at a bounded rate, in the background).
	s.jwks.Set(t, map[string]any{"ec-1": &k.ec.PublicKey, "ec-2": &k.ec2.PublicKey})
	e2etest.Eventually(t, "the rotated key accepted", func() bool {
		ctx, cancel := e2etest.Context(t)
		defer cancel()
		c, err := e2etest.Dial(ctx, svc.URL("/ws?token="+rotated))
		if err != nil {
			return false
		}
		defer c.Close()
		return true
	})
	if n := s.jwks.Fetches.Load(); n > 4 {
		t.Errorf("%d JWKS fetches, want a bounded few", n)
	}
	checkNoSecrets(t, svc, append(s.secrets, none, confused))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestTokenExpiry: a WebSocket client whose token expires is closed at
// exp with 1008 "token expired"; an SSE stream ends; a client with a
// longer token stays.
func TestTokenExpiry(t *testing.T) {
	s := newAuthSetup(t, "expiry")
	svc := e2etest.StartService(t, s.env)
	svc.WaitReady(t)
	exp := time.Now().Add(5 * time.Second).Unix() // time enough to connect three clients on a loaded machine
	short := s.token(t, "HS256", []string{"*"}, "exp", exp)
	ws := e2etest.Connect(t, svc.URL("/ws?token="+short))
	sse := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?token="+short), nil)
	long := e2etest.Connect(t, svc.URL("/ws?token="+s.token(t, "HS256", []string{"*"})))
	ws.ExpectClose(t, 1008, "token expired")
	if now := time.Now().Unix(); now < exp {
		t.Errorf("closed at %d, before exp %d", now, exp)
	}
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	if _, err := sse.NextEvent(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("SSE stream did not end at exp: %v", err)
	}
	p := e2etest.NewProducer(t, s.b)
	p.Produce([]byte("t-a/1"), []byte(`{"i":1}`))
	if got := string(long.Next(t)); got != `{"i":1}` {
		t.Errorf("long-lived client got %s", got)
	}
	// The connect lines name the token's subject, not the token.
	e2etest.Eventually(t, "three connect lines naming the principal", func() bool {
		return len(svc.Log.Lines("principal=jwt:user-HS256")) == 3
	})
	// Counted when the hub has torn the clients down, a moment after the
	// peers saw the end.
	e2etest.Eventually(t, "two token_expired closes", func() bool { return svc.Stats(t).Hub.Closes["token_expired"] == 2 })
}

// TestKeysFileRevocation: a key removed from the keys file closes its
// WebSocket clients with 1008 "credential revoked" and ends its SSE
// streams; other keys' clients go on; a malformed file keeps the last good
// one (logged once) and a malformed file at start stops the service with
// an error naming the line, never a key.
func TestKeysFileRevocation(t *testing.T) {
	s := newAuthSetup(t, "revoke")
	svc := e2etest.StartService(t, s.env)
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, s.b)
	gone := e2etest.Connect(t, svc.URL("/ws?token="+tenantAKey))
	goneSSE := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?token="+tenantAKey), nil)
	stays := e2etest.Connect(t, svc.URL("/ws"), e2etest.WithBearer(adminKey))

	// The connect lines name each key by an id of 8 hex digits, the same
	// for both of the tenant's clients, and not the key's SHA-256 (which
	// would let a log reader test guesses of the key).
	e2etest.Eventually(t, "three connect lines naming a key's id", func() bool {
		return len(svc.Log.Lines("msg=\"client connected\"")) == 3
	})
	ids := map[string]int{}
	for _, l := range svc.Log.Lines("msg=\"client connected\"") {
		_, id, _ := strings.Cut(l, "principal=key:")
		id, _, _ = strings.Cut(id, " ")
		ids[id]++
	}
	sum := sha256.Sum256([]byte(tenantAKey))
	if len(ids) != 2 || ids[hex.EncodeToString(sum[:4])] != 0 || slices.Max(slices.Collect(maps.Values(ids))) != 2 {
		t.Errorf("key ids of the connect lines %v: want two ids, one on two lines, none the SHA-256 of the key", ids)
	}
	writeKeys(t, s.keysFile, adminKey+" *\n"+exactKey+" t-b/1 t-b/2\n")
	gone.ExpectClose(t, 1008, "credential revoked")
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	if _, err := goneSSE.NextEvent(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("SSE stream of a revoked key did not end: %v", err)
	}
	c := e2etest.Connect(t, svc.URL("/ws?token="+tenantAKey), e2etest.NoSync())
	c.ExpectClose(t, 1008, "credential not accepted")

	// A malformed file: the last good one stays in force.
	writeKeys(t, s.keysFile, adminKey+" *\n"+adminKey+" t-a/*\n")
	e2etest.Eventually(t, "the bad file logged", func() bool {
		return len(svc.Log.Lines("keys file not reloaded")) == 1
	})
	again := e2etest.Connect(t, svc.URL("/ws?token="+adminKey))
	p.Produce([]byte("t-a/1"), []byte(`{"i":1}`))
	for _, cl := range []*e2etest.Client{stays, again} {
		if got := string(cl.Next(t)); got != `{"i":1}` {
			t.Errorf("got %s", got)
		}
	}
	if n := len(svc.Log.Lines("keys file not reloaded")); n != 1 {
		t.Errorf("%d lines for one bad file, want 1", n)
	}
	_, metrics := svc.Get(t, "/metrics")
	if !strings.Contains(metrics, `wsdest_auth_refusals_total{reason="revoked"} 2`) {
		t.Errorf("revocations not counted:\n%s", grepLines(metrics, "auth_refusals"))
	}
	checkNoSecrets(t, svc, s.secrets)

	// A malformed file at start.
	cfg, err := config.FromEnv(s.env.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Port = 0
	_, err = service.New(context.Background(), cfg, svc.Log.Logger(cfg.Log.Level))
	if err == nil || !strings.Contains(err.Error(), "AUTH_API_KEYS_FILE: ") || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), adminKey) {
		t.Errorf("start with a bad keys file: %v", err)
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
