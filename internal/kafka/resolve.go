package kafka

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Portal API client settings, as Quix Streams uses them.
const (
	portalAttempts    = 5
	portalBackoff     = time.Second
	portalTimeout     = 30 * time.Second
	portalAPIVersion  = "2.0"
	portalMaxBodySize = 4 << 20
)

// Resolve turns the connection settings into a Config. See
// Resolver.Resolve; hc is the HTTP client for the Quix Portal API (nil = a
// client with a 30 s timeout).
func Resolve(ctx context.Context, s Settings, hc *http.Client) (Config, error) {
	return Resolver{HTTP: hc}.Resolve(ctx, s)
}

// Resolver resolves connection settings. The zero value is ready to use.
type Resolver struct {
	// HTTP is the client for the Portal API; nil = a client with a 30 s
	// timeout.
	HTTP *http.Client
	// Backoff returns the wait before retry n (1, 2, ...) of a Portal API
	// call; nil = 1 s doubling each time. Tests make it zero.
	Backoff func(n int) time.Duration
}

// Resolve builds the Config for s:
//   - a broker address (the dev broker's too): that address, with s.SASL
//     and s.TLS (the CA file is read here);
//   - Quix Cloud (s.Quix, no broker address): the broker address, SASL
//     and TLS come from the Portal API, and the topic and consumer group
//     get the "{workspaceId}-" prefix unless they already start with the
//     workspace id.
//
// Portal API connection errors and 5xx/429 answers are retried (5 attempts
// in all). Errors name the setting to check (s.Names) and never contain a
// secret.
func (r Resolver) Resolve(ctx context.Context, s Settings) (Config, error) {
	names := s.Names.orDefaults()
	out := Config{
		Topic:       s.Topic,
		Group:       s.Group,
		ResetLatest: s.ResetLatest,
		ClientID:    DefaultClientID,
	}
	if len(s.Brokers) == 0 {
		if s.Quix == nil {
			return Config{}, errors.New("kafka: no broker address and no Quix Cloud settings")
		}
		return r.resolveQuix(ctx, *s.Quix, names, out)
	}

	out.Brokers = s.Brokers
	if s.SASL != nil {
		sasl := *s.SASL
		out.SASL = &sasl
	}
	if t := s.TLS; t != nil {
		out.TLS = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return Config{}, fmt.Errorf("%s: %w", names.CAFile, err)
			}
			pool, err := certPool(pem)
			if err != nil {
				return Config{}, fmt.Errorf("%s: %s: %w", names.CAFile, t.CAFile, err)
			}
			out.TLS.RootCAs = pool
		}
	}
	return out, nil
}

func (r Resolver) resolveQuix(ctx context.Context, q QuixSettings, names SettingNames, out Config) (Config, error) {
	base := strings.TrimRight(q.PortalAPI, "/") + "/workspaces/" + url.PathEscape(q.WorkspaceID)

	body, status, err := r.get(ctx, base+"/broker/librdkafka", q.SDKToken)
	if err == nil && status != http.StatusOK {
		err = statusError(status, names)
	}
	if err != nil {
		return Config{}, fmt.Errorf("%s: fetch broker settings: %w", names.PortalAPI, err)
	}
	settings, err := parseSettings(body)
	if err != nil {
		return Config{}, fmt.Errorf("%s: broker settings: %w", names.PortalAPI, err)
	}

	servers := settings["bootstrap.servers"]
	for b := range strings.SplitSeq(servers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out.Brokers = append(out.Brokers, b)
		}
	}
	if len(out.Brokers) == 0 {
		return Config{}, fmt.Errorf("%s: broker settings: no bootstrap.servers", names.PortalAPI)
	}

	protocol := strings.ToLower(settings["security.protocol"])
	var useSASL, useTLS bool
	switch protocol {
	case "", "plaintext":
	case "ssl":
		useTLS = true
	case "sasl_plaintext":
		useSASL = true
	case "sasl_ssl":
		useSASL, useTLS = true, true
	default:
		return Config{}, fmt.Errorf("%s: broker settings: security.protocol %q is not supported (want plaintext, ssl, sasl_plaintext or sasl_ssl)", names.PortalAPI, protocol)
	}

	if useSASL {
		mech := settings["sasl.mechanism"]
		if mech == "" {
			mech = settings["sasl.mechanisms"]
		}
		mech = strings.ToUpper(strings.TrimSpace(mech))
		switch mech {
		case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		case "":
			return Config{}, fmt.Errorf("%s: broker settings: security.protocol is %s but no sasl.mechanism", names.PortalAPI, protocol)
		default:
			return Config{}, fmt.Errorf("%s: broker settings: sasl.mechanism %q is not supported (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", names.PortalAPI, mech)
		}
		if settings["sasl.username"] == "" {
			return Config{}, fmt.Errorf("%s: broker settings: security.protocol is %s but sasl.username is empty", names.PortalAPI, protocol)
		}
		out.SASL = &SASL{Mechanism: mech, Username: settings["sasl.username"], Password: settings["sasl.password"]}
	}

	if useTLS {
		out.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		var pems [][]byte
		if enc := strings.TrimSpace(settings["ssl.ca.cert"]); enc != "" {
			pem, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				return Config{}, fmt.Errorf("%s: broker settings: ssl.ca.cert is not base64: %w", names.PortalAPI, err)
			}
			pems = append(pems, pem)
		}
		cert, err := r.workspaceCert(ctx, base+"/certificates", q.SDKToken, names)
		if err != nil {
			return Config{}, fmt.Errorf("%s: fetch certificates: %w", names.PortalAPI, err)
		}
		if cert != nil {
			pems = append(pems, cert)
		}
		if len(pems) > 0 {
			pool, err := certPool(pems...)
			if err != nil {
				return Config{}, fmt.Errorf("%s: broker CA certificate: %w", names.PortalAPI, err)
			}
			out.TLS.RootCAs = pool
		}
	}

	out.Topic = workspacePrefix(q.WorkspaceID, out.Topic)
	if out.Group != "" {
		out.Group = workspacePrefix(q.WorkspaceID, out.Group)
	}
	out.LongIdle = true
	return out, nil
}

// workspaceCert returns the ca.cert of the workspace's certificates zip,
// or nil when the workspace has none (an empty body, or 204/404).
func (r Resolver) workspaceCert(ctx context.Context, u, token string, names SettingNames) ([]byte, error) {
	body, status, err := r.get(ctx, u, token)
	switch {
	case err != nil:
		return nil, err
	case status == http.StatusNoContent || status == http.StatusNotFound:
		return nil, nil
	case status != http.StatusOK:
		return nil, statusError(status, names)
	case len(body) == 0:
		return nil, nil
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return nil, fmt.Errorf("read zip: %w", err)
	}
	f, err := zr.Open("ca.cert")
	if err != nil {
		return nil, fmt.Errorf("zip has no ca.cert: %w", err)
	}
	defer f.Close()
	cert, err := io.ReadAll(io.LimitReader(f, portalMaxBodySize))
	if err != nil {
		return nil, fmt.Errorf("read ca.cert: %w", err)
	}
	return cert, nil
}

// get performs a Portal API GET, retrying connection errors and 5xx/429
// answers. It returns the body and status of the last answer.
func (r Resolver) get(ctx context.Context, u, token string) ([]byte, int, error) {
	hc := r.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: portalTimeout}
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		body, status, err := getOnce(ctx, hc, u, token)
		retry := err != nil || status >= 500 || status == http.StatusTooManyRequests
		if !retry {
			return body, status, nil
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		lastErr = err
		if err == nil {
			lastErr = statusError(status, SettingNames{}) // 5xx and 429 carry no hint
		}
		if attempt == portalAttempts {
			return nil, 0, fmt.Errorf("%w (after %d attempts)", lastErr, attempt)
		}
		if err := sleep(ctx, r.backoff(attempt)); err != nil {
			return nil, 0, err
		}
	}
}

func getOnce(ctx context.Context, hc *http.Client, u, token string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Version", portalAPIVersion)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, portalMaxBodySize))
	if err != nil {
		return nil, 0, fmt.Errorf("read response: %w", err)
	}
	return body, resp.StatusCode, nil
}

func (r Resolver) backoff(n int) time.Duration {
	if r.Backoff != nil {
		return r.Backoff(n)
	}
	return portalBackoff << (n - 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// statusError describes a non-200 answer, with a hint at the setting that
// most likely causes it.
func statusError(status int, names SettingNames) error {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s (check %s)", text, names.SDKToken)
	case http.StatusNotFound:
		return fmt.Errorf("%s (check %s)", text, names.WorkspaceID)
	}
	return errors.New(text)
}

// parseSettings reads the librdkafka settings object; values that are not
// strings (numbers, booleans) are kept in their JSON text.
func parseSettings(body []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		if string(v) != "null" {
			out[k] = string(v)
		}
	}
	return out, nil
}

// certPool returns the system roots plus the PEM certificates given.
func certPool(pems ...[]byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, pem := range pems {
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("no PEM certificate found")
		}
	}
	return pool, nil
}

// workspacePrefix prefixes name with "{ws}-" unless it already starts with
// the workspace id, as Quix Streams does.
func workspacePrefix(ws, name string) string {
	if strings.HasPrefix(name, ws) {
		return name
	}
	return ws + "-" + name
}
