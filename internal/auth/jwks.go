package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// Defaults of the JWKS fetcher.
const (
	DefaultJWKSRefresh    = time.Hour
	DefaultJWKSMinRefetch = 10 * time.Second
	jwksTimeout           = 10 * time.Second
	maxJWKS               = 1 << 20
)

// jwk is one verification key of a JWKS.
type jwk struct {
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	alg string // the key's "alg", if it names one
}

// jwks is a JSON Web Key Set fetched from a URL, refreshed every refresh
// and, when a token names a kid it does not hold, refetched in the
// background at most once every minGap. Lookups never wait for a fetch: a
// token with an unknown kid is refused at once.
type jwks struct {
	url     string
	shown   string // url for log lines: no user information, no query
	client  *http.Client
	refresh time.Duration
	minGap  time.Duration
	log     *slog.Logger

	keys atomic.Pointer[map[string]jwk] // replaced whole by run
	kick chan struct{}                  // capacity 1: a refetch is wanted
}

func newJWKS(rawURL string, client *http.Client, refresh, minGap time.Duration, log *slog.Logger) *jwks {
	if client == nil {
		client = &http.Client{Timeout: jwksTimeout}
	}
	c := *client // a copy: the redirect policy is ours
	c.CheckRedirect = sameOrigin
	client = &c
	if refresh <= 0 {
		refresh = DefaultJWKSRefresh
	}
	if minGap <= 0 {
		minGap = DefaultJWKSMinRefetch
	}
	j := &jwks{url: rawURL, shown: shownURL(rawURL), client: client, refresh: refresh, minGap: minGap, log: log, kick: make(chan struct{}, 1)}
	empty := map[string]jwk{}
	j.keys.Store(&empty)
	return j
}

func (j *jwks) key(kid string) (jwk, bool) {
	k, ok := (*j.keys.Load())[kid]
	return k, ok
}

// unknown asks for a refetch; it never blocks.
func (j *jwks) unknown() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// run fetches the set now, then every refresh, and on demand (unknown)
// no sooner than minGap after the previous fetch, until ctx is done. A
// failed fetch (unreachable, an error status, not a set, a set without a
// usable key, a redirect elsewhere) keeps the keys it had and is logged
// once per run of failures.
func (j *jwks) run(ctx context.Context) {
	failing := false
	fetch := func() time.Time {
		err := j.fetch(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			j.log.Warn("jwks: fetch failed; keeping the keys held", "url", j.shown, "err", err)
			failing = true
		case err == nil && failing:
			j.log.Info("jwks: fetched again", "url", j.shown)
			failing = false
		}
		return time.Now()
	}
	last := fetch()
	tick := time.NewTicker(j.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			last = fetch()
		case <-j.kick:
			if wait := j.minGap - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			last = fetch()
		}
	}
}

// fetch replaces the keys with the set at the URL.
func (j *jwks) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, which may hold a secret
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return err
	}
	if len(b) > maxJWKS {
		return fmt.Errorf("larger than %d bytes", maxJWKS)
	}
	keys, skipped, err := parseJWKS(b)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		// Most likely a broken answer: keep the keys held.
		return fmt.Errorf("no usable key (%d skipped)", skipped)
	}
	if skipped > 0 {
		j.log.Debug("jwks: keys skipped (not a signature key of a supported type)", "url", j.shown, "skipped", skipped)
	}
	j.keys.Store(&keys)
	return nil
}

// maxJWKSRedirects bounds the redirects followed to the key set.
const maxJWKSRedirects = 3

// sameOrigin is the redirect policy of the JWKS fetch: whoever answers
// decides which tokens are valid, so a redirect is followed only on the
// same host and port, and never from https to http.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	switch {
	case len(via) > maxJWKSRedirects:
		return fmt.Errorf("more than %d redirects", maxJWKSRedirects)
	case req.URL.Host != first.Host:
		return errors.New("redirected to another host")
	case first.Scheme == "https" && req.URL.Scheme != "https":
		return errors.New("redirected from https to http")
	}
	return nil
}

// rawJWK is the JSON of one key; only public members are read.
type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JWK Set (RFC 7517): RSA, EC (P-256, P-384, P-521) and
// OKP Ed25519 keys with a kid. Keys for encryption, without a kid, or of
// another type are skipped and counted.
func parseJWKS(b []byte) (map[string]jwk, int, error) {
	var set struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, 0, fmt.Errorf("not a JWK set: %w", err)
	}
	keys := make(map[string]jwk, len(set.Keys))
	skipped := 0
	for _, r := range set.Keys {
		if r.Kid == "" || (r.Use != "" && r.Use != "sig") {
			skipped++
			continue
		}
		k, err := r.publicKey()
		if err != nil {
			skipped++
			continue
		}
		keys[r.Kid] = jwk{key: k, alg: r.Alg}
	}
	return keys, skipped, nil
}

func (r rawJWK) publicKey() (any, error) {
	switch r.Kty {
	case "RSA":
		n, err1 := b64int(r.N)
		e, err2 := b64int(r.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || n.BitLen() < minRSABits {
			return nil, errors.New("rsa key too small or bad exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var c elliptic.Curve
		switch r.Crv {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		default:
			return nil, errors.New("unsupported curve")
		}
		x, err1 := base64.RawURLEncoding.DecodeString(r.X)
		y, err2 := base64.RawURLEncoding.DecodeString(r.Y)
		size := (c.Params().BitSize + 7) / 8
		if errors.Join(err1, err2) != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad ec point")
		}
		return ecdsa.ParseUncompressedPublicKey(c, append(append([]byte{4}, x...), y...))
	case "OKP":
		x, err := base64.RawURLEncoding.DecodeString(r.X)
		if r.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad okp key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unsupported kty")
}

// shownURL is u without user information and query, for log lines.
func shownURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	p.User, p.RawQuery, p.Fragment = nil, "", ""
	return p.String()
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}
