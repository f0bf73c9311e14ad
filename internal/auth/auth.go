// Package auth checks client credentials: API keys (as a token query
// parameter or a Bearer token) and HTTP Basic username and password.
//
// All comparisons are constant-time over SHA-256 digests of both sides, and
// a presented key is compared against every configured key, so neither the
// length of a key, how much of it matched, nor which key matched shows in
// the response time.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Credentials are the accepted client credentials. Empty keys are ignored;
// Basic auth is configured only when Username is non-empty.
type Credentials struct {
	APIKeys  []string
	Username string
	Password string
}

type digest = [sha256.Size]byte

// Authenticator checks requests against a fixed set of credentials. It is
// immutable after New and safe for concurrent use. One with no credentials
// rejects every request; whether auth is required at all is the caller's
// decision.
type Authenticator struct {
	keys  []digest
	basic bool
	user  digest
	pass  digest
}

// New returns an Authenticator for c. It keeps only digests of the secrets.
func New(c Credentials) *Authenticator {
	a := &Authenticator{}
	for _, k := range c.APIKeys {
		if k != "" {
			a.keys = append(a.keys, sha256.Sum256([]byte(k)))
		}
	}
	if c.Username != "" {
		a.basic = true
		a.user = sha256.Sum256([]byte(c.Username))
		a.pass = sha256.Sum256([]byte(c.Password))
	}
	return a
}

// BasicConfigured reports whether Basic credentials are configured, so a
// server can decide whether to answer 401 with a Basic challenge.
func (a *Authenticator) BasicConfigured() bool { return a.basic }

// Check reports whether r carries a valid credential: a `token` query
// parameter holding an API key (the Quix connector's contract), an
// `Authorization: Bearer <key>` header, or HTTP Basic with the configured
// username and password. Any one valid credential is enough.
func (a *Authenticator) Check(r *http.Request) bool {
	ok := 0
	if tok := r.URL.Query().Get("token"); tok != "" {
		ok |= a.checkKey(tok)
	}
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if tok := strings.TrimSpace(rest); tok != "" {
			ok |= a.checkKey(tok)
		}
	case strings.EqualFold(scheme, "Basic") && a.basic:
		if user, pass, found := r.BasicAuth(); found {
			u := sha256.Sum256([]byte(user))
			p := sha256.Sum256([]byte(pass))
			ok |= subtle.ConstantTimeCompare(u[:], a.user[:]) & subtle.ConstantTimeCompare(p[:], a.pass[:])
		}
	}
	return ok == 1
}

// checkKey returns 1 if key is one of the configured keys, else 0. It
// visits every key whatever the outcome.
func (a *Authenticator) checkKey(key string) int {
	d := sha256.Sum256([]byte(key))
	match := 0
	for i := range a.keys {
		match |= subtle.ConstantTimeCompare(d[:], a.keys[i][:])
	}
	return match
}
