package auth

import (
	"slices"
	"sync/atomic"
	"time"
)

// Grant is the set of Kafka keys a credential may read.
type Grant struct {
	// All grants every key, and records without a key.
	All bool
	// Keys are exact keys and glob patterns (the subscription syntax: '*'
	// any run of bytes, '?' one byte), when All is false. A record goes to
	// the holder only if its key matches one of them; a record without a
	// key matches none.
	Keys []string
}

// grantOf returns the grant of a list of patterns: "*" among them grants
// all; otherwise the patterns sorted and distinct, so that two lists of
// the same patterns make equal grants (patterns is reordered).
func grantOf(patterns []string) Grant {
	for _, p := range patterns {
		if p == "*" {
			return Grant{All: true}
		}
	}
	slices.Sort(patterns)
	return Grant{Keys: slices.Compact(patterns)}
}

// Principal is who a credential names and what it grants. It holds no
// secret.
type Principal struct {
	// ID names the holder for log lines: "jwt:" and the token's sub claim,
	// "key:" and 8 hex digits of a keyed hash of an API key (stable for
	// the life of the process, unrelated across processes),
	// "basic" for the Basic credentials (the user name counts as a
	// secret). Never a secret.
	ID string
	// Grant is what the holder may read.
	Grant Grant
	// Expires is when the credential stops being valid (a JWT's exp);
	// zero for credentials that do not expire.
	Expires time.Time

	// Revocation is the identity under which an API key from
	// AUTH_API_KEYS_FILE is revoked (see Authenticator.Run); empty for
	// every other credential.
	Revocation string
	// revoked is set once the key is removed from the file.
	revoked *atomic.Bool
}

// Revoked reports whether the credential has been revoked since it was
// checked. A caller that registers a connection for revocation (see
// Authenticator.Run) checks it after registering, so that a revocation
// between the check and the registration is not missed.
func (p Principal) Revoked() bool { return p.revoked != nil && p.revoked.Load() }

// Reason is why a credential was refused, or a connection closed for its
// credential, as counted by Authenticator.Refusals.
type Reason string

// Refusal reasons. Every reason is counted from zero.
const (
	ReasonMissing       Reason = "missing"         // no credential presented
	ReasonCrossOrigin   Reason = "cross_origin"    // only a cookie or Basic credentials, from a foreign Origin
	ReasonUnknownKey    Reason = "unknown_key"     // an API key or Basic pair that is not configured
	ReasonMalformed     Reason = "malformed"       // a token that is not a readable JWT
	ReasonBadAlgorithm  Reason = "bad_algorithm"   // alg none, or an algorithm no configured key allows
	ReasonUnknownKID    Reason = "unknown_kid"     // a kid the JWKS does not hold (yet)
	ReasonBadSignature  Reason = "bad_signature"   // the signature does not verify
	ReasonExpired       Reason = "expired"         // at or past exp; also a connection closed at exp
	ReasonNoExp         Reason = "no_exp"          // a JWT without exp (unless AUTH_JWT_REQUIRE_EXP=false)
	ReasonNotYetValid   Reason = "not_yet_valid"   // before nbf (minus leeway)
	ReasonBadIssuer     Reason = "bad_issuer"      // iss is not AUTH_JWT_ISSUER
	ReasonBadAudience   Reason = "bad_audience"    // aud does not name AUTH_JWT_AUDIENCE
	ReasonBadClaims     Reason = "bad_claims"      // the keys claim is missing or not a list of patterns
	ReasonGrantTooLarge Reason = "grant_too_large" // the keys claim has too many globs, or a pattern too long
	ReasonOutOfScope    Reason = "out_of_scope"    // an exact key outside the grant was asked for
	ReasonRevoked       Reason = "revoked"         // a connection closed because its key left the file
)

// Reasons lists every reason, in a stable order.
var Reasons = [...]Reason{
	ReasonMissing, ReasonCrossOrigin, ReasonUnknownKey, ReasonMalformed, ReasonBadAlgorithm, ReasonUnknownKID,
	ReasonBadSignature, ReasonExpired, ReasonNoExp, ReasonNotYetValid, ReasonBadIssuer, ReasonBadAudience,
	ReasonBadClaims, ReasonGrantTooLarge, ReasonOutOfScope, ReasonRevoked,
}

// Error is a refused credential. Its text never holds the credential.
type Error struct {
	Reason Reason
}

func (e *Error) Error() string { return "auth: credential refused: " + string(e.Reason) }

// refusals counts refusals by reason. Safe for concurrent use.
type refusals [len(Reasons)]atomic.Uint64

func (r *refusals) add(why Reason) {
	for i, x := range Reasons {
		if x == why {
			r[i].Add(1)
			return
		}
	}
}

func (r *refusals) snapshot() map[Reason]uint64 {
	m := make(map[Reason]uint64, len(Reasons))
	for i, x := range Reasons {
		m[x] = r[i].Load()
	}
	return m
}
