package kafka

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testToken = "sdk-s3cret-token"
	testWS    = "acme-prod"
)

// mustConfig maps the environment variables these tests use into
// Settings the way the service does (internal/service's kafkaSettings),
// so that the cases read as the operator writes them.
func mustConfig(t *testing.T, env map[string]string) Settings {
	t.Helper()
	get := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(env[n]); v != "" {
				return v
			}
		}
		return ""
	}
	s := Settings{
		Topic:       get("input"),
		Group:       get("Quix__Consumer_Group", "CONSUMER_GROUP"),
		ResetLatest: get("AUTO_OFFSET_RESET") != "earliest",
		Names:       SettingNames{CAFile: "KAFKA_TLS_CA_FILE", PortalAPI: "Quix__Portal__Api", SDKToken: "Quix__Sdk__Token", WorkspaceID: "Quix__Workspace__Id"},
	}
	brokers := get("Quix__Broker__Address", "KAFKA_BROKERS")
	switch {
	case brokers != "":
		s.Brokers = strings.Split(brokers, ",")
		if m := get("KAFKA_SASL_MECHANISM"); m != "" {
			s.SASL = &SASL{Mechanism: m, Username: get("KAFKA_SASL_USERNAME"), Password: get("KAFKA_SASL_PASSWORD")}
		}
		if ca := get("KAFKA_TLS_CA_FILE"); ca != "" || get("KAFKA_TLS") == "true" {
			s.TLS = &TLSSettings{CAFile: ca, InsecureSkipVerify: get("KAFKA_TLS_INSECURE_SKIP_VERIFY") == "true"}
		}
	case get("Quix__Sdk__Token") != "":
		s.Quix = &QuixSettings{SDKToken: get("Quix__Sdk__Token"), PortalAPI: get("Quix__Portal__Api"), WorkspaceID: get("Quix__Workspace__Id")}
	default:
		s.Brokers = []string{get("DEV_BROKER_ADDR")}
		if s.Topic == "" {
			s.Topic = "input"
		}
	}
	return s
}

func quixEnv(portal string, kv ...string) map[string]string {
	env := map[string]string{
		"Quix__Sdk__Token":    testToken,
		"Quix__Portal__Api":   portal,
		"Quix__Workspace__Id": testWS,
		"input":               "sensors",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// portal plays the Quix Portal API. Each endpoint answers from a function
// so that a test can change its answers over time.
type portal struct {
	t        *testing.T
	srv      *httptest.Server
	settings func(n int) (int, any) // status, JSON body
	certs    func(n int) (int, []byte)

	mu    sync.Mutex
	calls map[string]int
}

func newPortal(t *testing.T) *portal {
	p := &portal{t: t, calls: map[string]int{}}
	p.certs = func(int) (int, []byte) { return http.StatusOK, nil }
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *portal) serve(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if got := r.Header.Get("X-Version"); got != "2.0" {
		p.t.Errorf("X-Version = %q, want 2.0", got)
	}
	p.mu.Lock()
	p.calls[r.URL.Path]++
	n := p.calls[r.URL.Path]
	p.mu.Unlock()
	switch r.URL.Path {
	case "/workspaces/" + testWS + "/broker/librdkafka":
		status, body := p.settings(n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if body != nil {
			if raw, ok := body.(string); ok {
				_, _ = w.Write([]byte(raw))
				return
			}
			_ = json.NewEncoder(w).Encode(body)
		}
	case "/workspaces/" + testWS + "/certificates":
		status, body := p.certs(n)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

func (p *portal) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[path]
}

func fixed(status int, body any) func(int) (int, any) {
	return func(int) (int, any) { return status, body }
}

func zipWith(t *testing.T, name string, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// noWait makes Portal API retries immediate and records the backoff asked
// for.
type noWait struct{ retries []int }

func (n *noWait) backoff(i int) time.Duration { n.retries = append(n.retries, i); return 0 }

func TestResolveQuix(t *testing.T) {
	ca := newTestCA(t)
	caB64 := base64.StdEncoding.EncodeToString(ca.pem)

	tests := []struct {
		name     string
		env      []string
		settings map[string]any
		certs    []byte
		check    func(t *testing.T, c Config)
	}{
		{
			name:     "plaintext",
			settings: map[string]any{"bootstrap.servers": "b1:9092, b2:9092", "security.protocol": "PLAINTEXT"},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.Brokers, ",") != "b1:9092,b2:9092" || c.SASL != nil || c.TLS != nil {
					t.Errorf("brokers %v sasl %v tls %v", c.Brokers, c.SASL, c.TLS != nil)
				}
				if c.Topic != testWS+"-sensors" || c.Group != "" || !c.LongIdle || !c.ResetLatest {
					t.Errorf("topic %q group %q longIdle %v resetLatest %v", c.Topic, c.Group, c.LongIdle, c.ResetLatest)
				}
			},
		},
		{
			name:     "no protocol means plaintext",
			settings: map[string]any{"bootstrap.servers": "b1:9092"},
			check: func(t *testing.T, c Config) {
				if c.SASL != nil || c.TLS != nil {
					t.Errorf("sasl %v tls %v", c.SASL, c.TLS != nil)
				}
			},
		},
		{
			name:     "sasl_plaintext PLAIN, group prefixed",
			env:      []string{"Quix__Consumer_Group", "viewers", "AUTO_OFFSET_RESET", "earliest"},
			settings: map[string]any{"bootstrap.servers": "b:9092", "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p"},
			check: func(t *testing.T, c Config) {
				if c.SASL == nil || *c.SASL != (SASL{MechanismPlain, "u", "p"}) || c.TLS != nil {
					t.Errorf("sasl %v tls %v", c.SASL, c.TLS != nil)
				}
				if c.Group != testWS+"-viewers" || c.ResetLatest {
					t.Errorf("group %q resetLatest %v", c.Group, c.ResetLatest)
				}
			},
		},
		{
			name:     "sasl_ssl SCRAM-SHA-256 with base64 CA, names already prefixed",
			env:      []string{"input", testWS + "-sensors", "CONSUMER_GROUP", testWS + "-g"},
			settings: map[string]any{"bootstrap.servers": "b:9093", "security.protocol": "sasl_ssl", "sasl.mechanisms": "scram-sha-256", "sasl.username": "u", "sasl.password": "p", "ssl.ca.cert": caB64},
			check: func(t *testing.T, c Config) {
				if c.SASL == nil || c.SASL.Mechanism != MechanismScramSHA256 {
					t.Errorf("sasl %v", c.SASL)
				}
				if c.TLS == nil || !ca.trustedBy(c.TLS.RootCAs) || c.TLS.InsecureSkipVerify {
					t.Errorf("TLS does not trust the workspace CA")
				}
				if c.Topic != testWS+"-sensors" || c.Group != testWS+"-g" {
					t.Errorf("topic %q group %q, want unchanged", c.Topic, c.Group)
				}
			},
		},
		{
			name:     "ssl with certificates zip",
			settings: map[string]any{"bootstrap.servers": "b:9093", "security.protocol": "SSL"},
			certs:    zipWith(t, "ca.cert", ca.pem),
			check: func(t *testing.T, c Config) {
				if c.SASL != nil || c.TLS == nil || !ca.trustedBy(c.TLS.RootCAs) {
					t.Errorf("sasl %v, TLS trusts CA: %v", c.SASL, c.TLS != nil && ca.trustedBy(c.TLS.RootCAs))
				}
			},
		},
		{
			name:     "ssl without any CA uses system roots",
			settings: map[string]any{"bootstrap.servers": "b:9093", "security.protocol": "ssl", "ssl.endpoint.identification.algorithm": "https", "socket.keepalive.enable": true, "retries": 3},
			check: func(t *testing.T, c Config) {
				if c.TLS == nil || c.TLS.RootCAs != nil {
					t.Errorf("TLS %v, want system roots (nil RootCAs)", c.TLS)
				}
			},
		},
		{
			name:     "SCRAM-SHA-512",
			settings: map[string]any{"bootstrap.servers": "b:9092", "security.protocol": "sasl_plaintext", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "p"},
			check: func(t *testing.T, c Config) {
				if c.SASL == nil || c.SASL.Mechanism != MechanismScramSHA512 {
					t.Errorf("sasl %v", c.SASL)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPortal(t)
			p.settings = fixed(http.StatusOK, tt.settings)
			p.certs = func(int) (int, []byte) { return http.StatusOK, tt.certs }
			nw := &noWait{}
			c, err := Resolver{Backoff: nw.backoff}.Resolve(context.Background(), mustConfig(t, quixEnv(p.srv.URL+"/", tt.env...)))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
			if len(nw.retries) != 0 {
				t.Errorf("retried %v", nw.retries)
			}
		})
	}
}

func TestResolveQuixErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings func(int) (int, any)
		certs    func(int) (int, []byte)
		want     string
		retries  int // backoff calls expected
	}{
		{"unauthorized", fixed(http.StatusUnauthorized, nil), nil,
			"Quix__Portal__Api: fetch broker settings: 401 Unauthorized (check Quix__Sdk__Token)", 0},
		{"forbidden", fixed(http.StatusForbidden, map[string]any{"token": testToken}), nil,
			"Quix__Portal__Api: fetch broker settings: 403 Forbidden (check Quix__Sdk__Token)", 0},
		{"unknown workspace", fixed(http.StatusNotFound, nil), nil,
			"Quix__Portal__Api: fetch broker settings: 404 Not Found (check Quix__Workspace__Id)", 0},
		{"server error every time", fixed(http.StatusInternalServerError, nil), nil,
			"Quix__Portal__Api: fetch broker settings: 500 Internal Server Error (after 5 attempts)", 4},
		{"not json", fixed(http.StatusOK, "<html>"), nil,
			"Quix__Portal__Api: broker settings: not a JSON object: invalid character '<' looking for beginning of value", 0},
		{"no servers", fixed(http.StatusOK, map[string]any{"security.protocol": "plaintext"}), nil,
			"Quix__Portal__Api: broker settings: no bootstrap.servers", 0},
		{"bad protocol", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "kerberos"}), nil,
			`Quix__Portal__Api: broker settings: security.protocol "kerberos" is not supported (want plaintext, ssl, sasl_plaintext or sasl_ssl)`, 0},
		{"bad mechanism", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "sasl_ssl", "sasl.mechanism": "GSSAPI", "sasl.password": testToken}), nil,
			`Quix__Portal__Api: broker settings: sasl.mechanism "GSSAPI" is not supported (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`, 0},
		{"no mechanism", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "sasl_plaintext"}), nil,
			"Quix__Portal__Api: broker settings: security.protocol is sasl_plaintext but no sasl.mechanism", 0},
		{"no username", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "sasl_ssl", "sasl.mechanism": "PLAIN", "sasl.password": testToken}), nil,
			"Quix__Portal__Api: broker settings: security.protocol is sasl_ssl but sasl.username is empty", 0},
		{"bad base64 CA", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "ssl", "ssl.ca.cert": "%%%"}), nil,
			"Quix__Portal__Api: broker settings: ssl.ca.cert is not base64: illegal base64 data at input byte 0", 0},
		{"CA not PEM", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "ssl", "ssl.ca.cert": base64.StdEncoding.EncodeToString([]byte("nope"))}), nil,
			"Quix__Portal__Api: broker CA certificate: no PEM certificate found", 0},
		{"certificates fail", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "ssl"}),
			func(int) (int, []byte) { return http.StatusBadGateway, nil },
			"Quix__Portal__Api: fetch certificates: 502 Bad Gateway (after 5 attempts)", 4},
		{"certificates not a zip", fixed(http.StatusOK, map[string]any{"bootstrap.servers": "b:1", "security.protocol": "ssl"}),
			func(int) (int, []byte) { return http.StatusOK, []byte("garbage") },
			"Quix__Portal__Api: fetch certificates: read zip: zip: not a valid zip file", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPortal(t)
			p.settings = tt.settings
			if tt.certs != nil {
				p.certs = tt.certs
			}
			nw := &noWait{}
			_, err := Resolver{Backoff: nw.backoff}.Resolve(context.Background(), mustConfig(t, quixEnv(p.srv.URL)))
			if err == nil {
				t.Fatal("want an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q contains the token", err)
			}
			if len(nw.retries) != tt.retries {
				t.Errorf("%d retries, want %d", len(nw.retries), tt.retries)
			}
		})
	}
}

func TestResolveQuixRetriesThenSucceeds(t *testing.T) {
	p := newPortal(t)
	p.settings = func(n int) (int, any) {
		if n <= 2 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, map[string]any{"bootstrap.servers": "b:9092"}
	}
	nw := &noWait{}
	c, err := Resolver{Backoff: nw.backoff}.Resolve(context.Background(), mustConfig(t, quixEnv(p.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 1 || c.Brokers[0] != "b:9092" {
		t.Errorf("brokers %v", c.Brokers)
	}
	if got := p.count("/workspaces/" + testWS + "/broker/librdkafka"); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
	if len(nw.retries) != 2 || nw.retries[0] != 1 || nw.retries[1] != 2 {
		t.Errorf("backoff calls %v, want [1 2]", nw.retries)
	}
}

func TestResolvePortalUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	var calls atomic.Int32
	_, err := Resolver{Backoff: func(int) time.Duration { calls.Add(1); return 0 }}.Resolve(context.Background(), mustConfig(t, quixEnv(url)))
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "Quix__Portal__Api: fetch broker settings: ") || !strings.HasSuffix(msg, "(after 5 attempts)") {
		t.Errorf("error %q", msg)
	}
	if strings.Contains(msg, testToken) {
		t.Errorf("error %q contains the token", msg)
	}
	if calls.Load() != 4 {
		t.Errorf("%d backoffs, want 4", calls.Load())
	}
}

func TestResolveDefaultBackoffHonoursContext(t *testing.T) {
	p := newPortal(t)
	p.settings = fixed(http.StatusServiceUnavailable, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the first attempt has been answered; the default
		// one-second backoff must not hold Resolve up.
		for p.count("/workspaces/"+testWS+"/broker/librdkafka") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := Resolve(ctx, mustConfig(t, quixEnv(p.srv.URL)), p.srv.Client())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestResolveDefaultBackoff(t *testing.T) {
	var r Resolver
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if got := r.backoff(i + 1); got != want {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, want)
		}
	}
}

func TestResolvePlain(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("dev broker", func(t *testing.T) {
		c, err := Resolve(context.Background(), mustConfig(t, map[string]string{"DEV_BROKER_ADDR": "127.0.0.1:19092", "CONSUMER_GROUP": "g"}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Brokers) != 1 || c.Brokers[0] != "127.0.0.1:19092" || c.Topic != "input" || c.Group != "g" || c.SASL != nil || c.TLS != nil || c.LongIdle {
			t.Errorf("got %+v", c)
		}
	})
	t.Run("brokers with sasl and tls", func(t *testing.T) {
		c, err := Resolve(context.Background(), mustConfig(t, map[string]string{
			"Quix__Broker__Address": "k1:9093,k2:9093", "input": "t", "Quix__Consumer_Group": "g", "AUTO_OFFSET_RESET": "earliest",
			"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p",
			"KAFKA_TLS_CA_FILE": caFile,
			// a token beside a broker address is ignored
			"Quix__Sdk__Token": testToken, "Quix__Workspace__Id": testWS,
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(c.Brokers, ",") != "k1:9093,k2:9093" || c.Topic != "t" || c.Group != "g" || c.ResetLatest || c.LongIdle {
			t.Errorf("got %+v", c)
		}
		if c.SASL == nil || *c.SASL != (SASL{MechanismScramSHA512, "u", "p"}) {
			t.Errorf("sasl %v", c.SASL)
		}
		if c.TLS == nil || !ca.trustedBy(c.TLS.RootCAs) {
			t.Error("TLS does not trust the CA file")
		}
	})
	t.Run("tls insecure without CA", func(t *testing.T) {
		c, err := Resolve(context.Background(), mustConfig(t, map[string]string{
			"KAFKA_BROKERS": "k:9093", "input": "t", "KAFKA_TLS": "true", "KAFKA_TLS_INSECURE_SKIP_VERIFY": "true",
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.TLS == nil || !c.TLS.InsecureSkipVerify || c.TLS.RootCAs != nil || c.SASL != nil {
			t.Errorf("got %+v", c)
		}
	})
	errTests := []struct {
		name, file, want string
	}{
		{"missing CA file", filepath.Join(dir, "nope.pem"), "KAFKA_TLS_CA_FILE: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{"CA file not PEM", junk, "KAFKA_TLS_CA_FILE: " + junk + ": no PEM certificate found"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(context.Background(), mustConfig(t, map[string]string{
				"KAFKA_BROKERS": "k:9093", "input": "t", "KAFKA_TLS_CA_FILE": tt.file,
			}), nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}
