// Package auth checks client credentials and says what they grant: API
// keys (static, from AUTH_API_KEYS, granting every key; or from a keys
// file, each with the Kafka key patterns it may read), JWTs (HMAC, a PEM
// public key, or a JWKS fetched from a URL; the keys claim lists what the
// token may read) and HTTP Basic username and password.
//
// A credential travels in the `token` query parameter (the Quix
// connector's contract), an `Authorization: Bearer` header, the cookie
// wsdest_token, or as HTTP Basic. Any one valid credential is enough, and
// a credential is accepted when any configured verifier accepts it. The
// cookie and Basic credentials are ambient: a browser attaches them to a
// request any page makes, so they count only when the caller says the
// request's origin may use them (see Ambient).
//
// Secrets are never kept, logged or put in an error: API keys and Basic
// credentials are held as SHA-256 digests, a presented key is found by its
// digest in a map and its digest compared in constant time; the Basic pair
// is compared in constant time over digests of both sides.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// CookieName is the cookie that may carry a JWT or an API key.
const CookieName = "wsdest_token"

// DefaultKeysFilePoll is how often AUTH_API_KEYS_FILE is checked for
// changes.
const DefaultKeysFilePoll = 2 * time.Second

// Config configures an Authenticator. Empty fields configure nothing.
type Config struct {
	// APIKeys are static keys, each granting every Kafka key.
	APIKeys []string
	// Username and Password are the Basic credentials (granting every
	// key); Basic is configured only when Username is non-empty.
	Username string
	Password string

	// MaxGrantGlobs and MaxPatternLength bound the patterns of a grant
	// (a keys file line, a JWT's keys claim): at most MaxGrantGlobs with
	// '*' or '?' (default DefaultMaxGrantGlobs), none longer than
	// MaxPatternLength bytes (default DefaultMaxPatternLength). A line
	// beyond is an error of the file; a token beyond is refused
	// (ReasonGrantTooLarge).
	MaxGrantGlobs    int
	MaxPatternLength int

	// KeysFile is AUTH_API_KEYS_FILE (see parseKeysFile for its format).
	// It must be readable and good at New; Run re-reads it every
	// KeysFilePoll (default DefaultKeysFilePoll).
	KeysFile     string
	KeysFilePoll time.Duration

	// JWTSecret is the HMAC key of HS256/384/512 tokens.
	JWTSecret []byte
	// JWTPublicKeyFile is a PEM file with an RSA, ECDSA or Ed25519 public
	// key (or a certificate holding one).
	JWTPublicKeyFile string
	// JWKSURL is where a JSON Web Key Set is fetched (by Run): every
	// JWKSRefresh (default DefaultJWKSRefresh), and at most every
	// JWKSMinRefetch (default DefaultJWKSMinRefetch) when a token names a
	// kid the set does not hold. JWKSClient defaults to an http.Client
	// with a 10 s timeout.
	JWKSURL        string
	JWKSRefresh    time.Duration
	JWKSMinRefetch time.Duration
	JWKSClient     *http.Client
	// JWTIssuer and JWTAudience, when set, must match iss and aud.
	JWTIssuer   string
	JWTAudience string
	// JWTKeysClaim names the claim listing the patterns a token may read.
	// Default DefaultKeysClaim.
	JWTKeysClaim string
	// JWTLeeway is the clock skew allowed on nbf. Default DefaultLeeway.
	// exp gets none: a token is refused from its exp on.
	JWTLeeway time.Duration
	// JWTAllowNoExp accepts tokens without an exp claim (which then never
	// expire). Default false: such a token is refused (ReasonNoExp).
	JWTAllowNoExp bool

	// Logger receives reload and fetch problems. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for JWT validation; default time.Now.
	Now func() time.Time
}

// JWT reports whether any JWT verification key is configured.
func (c Config) JWT() bool {
	return len(c.JWTSecret) > 0 || c.JWTPublicKeyFile != "" || c.JWKSURL != ""
}

func (c Config) limits() limits {
	return limits{globs: c.MaxGrantGlobs, length: c.MaxPatternLength}.orDefaults()
}

type digest = [sha256.Size]byte

// Authenticator checks requests. It is safe for concurrent use; the keys
// file and the JWKS are refreshed by Run. One with no credentials refuses
// every request; whether auth is required at all is the caller's decision.
type Authenticator struct {
	log    *slog.Logger
	ids    keyIDs       // names the keys in log lines; immutable
	static keySet       // AUTH_API_KEYS; immutable
	file   *keysFile    // nil without AUTH_API_KEYS_FILE
	jwt    *jwtVerifier // nil without a JWT key
	poll   time.Duration
	basic  bool
	user   digest
	pass   digest

	refused refusals
}

// New returns an Authenticator for c. It reads the keys file and the
// public key file; an error names the file and the problem, never a
// secret.
func New(c Config) (*Authenticator, error) {
	a := &Authenticator{log: c.Logger, static: make(keySet), poll: c.KeysFilePoll, ids: newKeyIDs()}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.poll <= 0 {
		a.poll = DefaultKeysFilePoll
	}
	for _, k := range c.APIKeys {
		if k != "" {
			key := newKey(k, Grant{All: true}, false, a.ids)
			a.static[key.digest] = key
		}
	}
	if c.Username != "" {
		a.basic = true
		a.user = sha256.Sum256([]byte(c.Username))
		a.pass = sha256.Sum256([]byte(c.Password))
	}
	if c.KeysFile != "" {
		a.file = &keysFile{path: c.KeysFile, limits: c.limits(), ids: a.ids}
		if err := a.file.load(); err != nil {
			return nil, &FileError{Field: "KeysFile", Err: err}
		}
	}
	if c.JWT() {
		v, err := newJWTVerifier(c)
		if err != nil {
			return nil, &FileError{Field: "JWTPublicKeyFile", Err: err}
		}
		if c.JWKSURL != "" {
			v.jwks = newJWKS(c.JWKSURL, c.JWKSClient, c.JWKSRefresh, c.JWKSMinRefetch, a.log)
		}
		a.jwt = v
	}
	return a, nil
}

// BasicConfigured reports whether Basic credentials are configured, so a
// server can decide whether to answer 401 with a Basic challenge.
func (a *Authenticator) BasicConfigured() bool { return a.basic }

// Ambient says whether a request's ambient credentials (the cookie
// wsdest_token and HTTP Basic, which a browser attaches by itself to a
// request of any page, WebSocket and EventSource included, with no CORS
// check) may count. The caller decides from the request's Origin.
type Ambient bool

// The two answers for Authorize.
const (
	AmbientRefused Ambient = false // a foreign origin: only the query token and Bearer count
	AmbientAllowed Ambient = true  // no Origin, the server's own, or an allowed one
)

// Authorize returns the principal of the first valid credential r
// carries: a `token` query parameter, an `Authorization: Bearer` token,
// the cookie wsdest_token (each an API key or a JWT), or HTTP Basic; the
// cookie and Basic only when ambient is AmbientAllowed. When none is valid
// it returns an *Error with the reason of the last credential tried
// (ReasonCrossOrigin when only ignored ambient ones were presented,
// ReasonMissing when there was none) and counts it.
func (a *Authenticator) Authorize(r *http.Request, ambient Ambient) (Principal, error) {
	why := ReasonMissing
	try := func(tok string) (Principal, bool) {
		if tok == "" {
			return Principal{}, false
		}
		p, err := a.token(tok)
		if err != nil {
			why = err.(*Error).Reason
			return Principal{}, false
		}
		return p, true
	}
	if p, ok := try(r.URL.Query().Get("token")); ok {
		return p, nil
	}
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if p, ok := try(strings.TrimSpace(rest)); ok {
			return p, nil
		}
	case strings.EqualFold(scheme, "Basic") && a.basic && ambient == AmbientRefused:
		why = ReasonCrossOrigin
	case strings.EqualFold(scheme, "Basic") && a.basic:
		if user, pass, found := r.BasicAuth(); found {
			u := sha256.Sum256([]byte(user))
			p := sha256.Sum256([]byte(pass))
			if subtle.ConstantTimeCompare(u[:], a.user[:])&subtle.ConstantTimeCompare(p[:], a.pass[:]) == 1 {
				return Principal{ID: "basic", Grant: Grant{All: true}}, nil
			}
			why = ReasonUnknownKey
		}
	}
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		if ambient == AmbientRefused {
			why = ReasonCrossOrigin
		} else if p, ok := try(c.Value); ok {
			return p, nil
		}
	}
	a.refused.add(why)
	return Principal{}, &Error{Reason: why}
}

// token checks one presented token: an API key, or else a JWT.
func (a *Authenticator) token(tok string) (Principal, error) {
	d := sha256.Sum256([]byte(tok))
	if k, ok := a.static.lookup(d); ok {
		return k.principal(), nil
	}
	if a.file != nil {
		if k, ok := (*a.file.set.Load()).lookup(d); ok {
			return k.principal(), nil
		}
	}
	if a.jwt != nil && looksLikeJWT(tok) {
		return a.jwt.verify(tok)
	}
	return Principal{}, &Error{Reason: ReasonUnknownKey}
}

// Refused counts a refusal decided outside Authorize: ReasonOutOfScope,
// ReasonRevoked, or ReasonExpired for a connection closed at its token's
// exp.
func (a *Authenticator) Refused(why Reason) { a.refused.add(why) }

// Refusals returns the refusals counted so far, every reason present.
func (a *Authenticator) Refusals() map[Reason]uint64 { return a.refused.snapshot() }

// Run keeps the keys file and the JWKS current until ctx is done, then
// returns nil. revoke is called, from Run's goroutine, with the
// Principal.Revocation of every key that was removed from the file or
// whose patterns changed; it must not block for long. A bad file keeps
// the last good one and is logged once per distinct contents.
func (a *Authenticator) Run(ctx context.Context, revoke func(revocations []string)) error {
	done := make(chan struct{})
	if a.jwt != nil && a.jwt.jwks != nil {
		go func() {
			defer close(done)
			a.jwt.jwks.run(ctx)
		}()
	} else {
		close(done)
	}
	defer func() { <-done }()
	if a.file == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(a.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		revoked, changed, err := a.file.reload()
		if err != nil {
			a.log.Error("auth: keys file not reloaded; the last good one stays in force", "err", err)
			continue
		}
		if changed {
			a.log.Info("auth: keys file reloaded", "keys", len(*a.file.set.Load()), "revoked", len(revoked))
		}
		if len(revoked) > 0 {
			revoke(revoked)
		}
	}
}

// FileError is a file of the Config that New could not use: Field names
// the Config field (KeysFile or JWTPublicKeyFile). Its text names the file
// and the problem (a line number), never a key.
type FileError struct {
	Field string
	Err   error
}

func (e *FileError) Error() string { return "auth: " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

var _ error = (*Error)(nil)

// AsError returns err's *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
