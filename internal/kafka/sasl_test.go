package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	saslUser = "quix-user"
	saslPass = "quix-s3cret-pass"
)

func saslOpt(t *testing.T, mech string) kgo.Opt {
	t.Helper()
	switch mech {
	case MechanismPlain:
		return kgo.SASL(plain.Auth{User: saslUser, Pass: saslPass}.AsMechanism())
	case MechanismScramSHA256:
		return kgo.SASL(scram.Auth{User: saslUser, Pass: saslPass}.AsSha256Mechanism())
	case MechanismScramSHA512:
		return kgo.SASL(scram.Auth{User: saslUser, Pass: saslPass}.AsSha512Mechanism())
	}
	t.Fatalf("unknown mechanism %s", mech)
	return nil
}

// TestQuixCloudEndToEnd resolves the connection from a fake Portal API
// that points at a kfake cluster requiring SASL (and TLS for sasl_ssl),
// then consumes through it: the resolved settings really authenticate.
func TestQuixCloudEndToEnd(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		mech     string
		protocol string
		caVia    string // "", "settings" or "zip"
	}{
		{MechanismPlain, "SASL_PLAINTEXT", ""},
		{MechanismScramSHA256, "sasl_plaintext", ""},
		{MechanismScramSHA512, "SASL_SSL", "settings"},
		{MechanismScramSHA256, "SASL_SSL", "zip"},
	}
	for _, tt := range tests {
		t.Run(tt.mech+"/"+tt.protocol+"/"+tt.caVia, func(t *testing.T) {
			topic := testWS + "-sensors"
			opts := []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(tt.mech, saslUser, saslPass), kfake.SeedTopics(2, topic)}
			var clientTLS *tls.Config
			if tt.caVia != "" {
				opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}))
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(ca.pem)
				clientTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			}
			c := newCluster(t, opts...)

			settings := map[string]any{
				"bootstrap.servers": strings.Join(c.ListenAddrs(), ","),
				"security.protocol": tt.protocol,
				"sasl.mechanism":    tt.mech,
				"sasl.username":     saslUser,
				"sasl.password":     saslPass,
			}
			p := newPortal(t)
			switch tt.caVia {
			case "settings":
				settings["ssl.ca.cert"] = base64.StdEncoding.EncodeToString(ca.pem)
			case "zip":
				z := zipWith(t, "ca.cert", ca.pem)
				p.certs = func(int) (int, []byte) { return http.StatusOK, z }
			}
			p.settings = fixed(http.StatusOK, settings)

			cfg, err := Resolve(context.Background(), mustConfig(t, quixEnv(p.srv.URL)), p.srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Topic != topic {
				t.Fatalf("topic %q, want %q", cfg.Topic, topic)
			}
			r := startSource(t, cfg)
			eventually(t, "ready", r.src.Ready)

			popts := []kgo.Opt{saslOpt(t, tt.mech)}
			if clientTLS != nil {
				popts = append(popts, kgo.DialTLSConfig(clientTLS))
			}
			prod := newProducer(t, c.ListenAddrs(), popts...)
			produce(t, prod, &kgo.Record{Topic: topic, Partition: 1, Value: []byte("authenticated")})
			if got := r.next(t); string(got.Value) != "authenticated" {
				t.Errorf("got %q", got.Value)
			}
			if strings.Contains(r.log.String(), saslPass) {
				t.Errorf("log shows the password:\n%s", r.log)
			}
		})
	}
}

// TestSASLWrongPassword: the broker rejects the credentials; the source
// warns once (not once per retry), stays not ready, and never logs the
// password.
func TestSASLWrongPassword(t *testing.T) {
	for _, mech := range []string{MechanismPlain, MechanismScramSHA256} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, saslUser, saslPass), kfake.SeedTopics(1, "t"))
			var attempts atomic.Int32
			c.KeepControl()
			c.ControlKey(int16(kmsg.SASLHandshake), func(kmsg.Request) (kmsg.Response, error, bool) {
				attempts.Add(1)
				return nil, nil, false
			})
			wrong := "wrong-" + saslPass
			r := startSource(t, Config{
				Brokers: c.ListenAddrs(), Topic: "t", ResetLatest: true,
				SASL: &SASL{Mechanism: mech, Username: saslUser, Password: wrong},
			})
			// Each attempt is one failed connect; a few must still give one
			// warning.
			eventually(t, "retries", func() bool { return attempts.Load() >= 4 })
			if r.src.Ready() {
				t.Error("Ready with rejected credentials")
			}
			r.stop()
			if n := len(r.log.Lines("level=WARN")); n != 1 {
				t.Errorf("%d warnings, want 1:\n%s", n, r.log)
			}
			if n := len(r.log.Lines("level=INFO")); n != 0 {
				t.Errorf("%d info lines, want 0:\n%s", n, r.log)
			}
			if strings.Contains(r.log.String(), wrong) {
				t.Errorf("log shows the password:\n%s", r.log)
			}
		})
	}
}

// TestNonRetryableErrorRateLimited: a user without ACLs gets a topic
// authorization error on every metadata refresh; it is logged once.
func TestNonRetryableErrorRateLimited(t *testing.T) {
	c := newCluster(t, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(MechanismPlain, "admin", "admin"),
		kfake.User(MechanismPlain, saslUser, saslPass),
		kfake.SeedTopics(1, "t"))
	var metadata atomic.Int32
	c.KeepControl()
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		metadata.Add(1)
		return nil, nil, false
	})
	r := startSource(t, Config{
		Brokers: c.ListenAddrs(), Topic: "t", ResetLatest: true,
		SASL:           &SASL{Mechanism: MechanismPlain, Username: saslUser, Password: saslPass},
		metadataMinAge: 20 * time.Millisecond,
		errorLogEvery:  time.Hour,
	})
	eventually(t, "repeated metadata", func() bool { return metadata.Load() >= 30 })
	r.stop()
	lines := r.log.Lines("kafka fetch error")
	if len(lines) != 1 {
		t.Fatalf("%d fetch error lines, want 1:\n%s", len(lines), r.log)
	}
	if !strings.Contains(lines[0], "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("line %q does not name the error", lines[0])
	}
	// The limiter's next line, an hour and more on, would report the
	// repeats of the error it left out.
	m := regexp.MustCompile(`err=("(?:[^"\\]|\\.)*"|\S+)`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("line %q has no err", lines[0])
	}
	key := m[1]
	if unq, err := strconv.Unquote(key); err == nil {
		key = unq
	}
	if n, ok := r.src.errLog.AllowAt(key, time.Now().Add(2*time.Hour)); !ok || n == 0 {
		t.Errorf("the error's line an hour on: %d left out, %v; want some", n, ok)
	}
	if r.src.Ready() {
		t.Error("Ready without authorization")
	}
}
