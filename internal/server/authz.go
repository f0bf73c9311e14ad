package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// Authorizer decides whether a request carries a valid credential, and
// what it grants (auth.Authenticator). It must be safe for concurrent use.
type Authorizer interface {
	// Authorize returns the principal of a valid credential, or an error.
	// The cookie and Basic credentials count only when ambient is
	// auth.AmbientAllowed.
	Authorize(r *http.Request, ambient auth.Ambient) (auth.Principal, error)
	// Refused counts a refusal the server decides: out of scope, revoked,
	// expired.
	Refused(why auth.Reason)
}

// everyone is the principal of a client when no auth is configured.
var everyone = auth.Principal{Grant: auth.Grant{All: true}}

// authorize returns the principal of r's credential: everyone when auth is
// off. The ambient credentials (cookie, Basic) count only from an origin
// that may use them (originPolicy.ambient), so that a page elsewhere
// cannot open a stream with the credentials the browser holds for us.
func (s *Server) authorize(r *http.Request) (auth.Principal, error) {
	if s.cfg.Auth == nil {
		return everyone, nil
	}
	return s.cfg.Auth.Authorize(r, auth.Ambient(s.origins.ambient(r)))
}

// scope narrows a.sub to what p may read. An exact key outside the grant
// is refused before the handshake: 403 naming the key (never the
// credential), counted as out of scope; the slot is given back and scope
// reports false. A pattern, or no key, keeps what the grant covers.
func (s *Server) scope(w http.ResponseWriter, r *http.Request, a *admission, p auth.Principal) bool {
	if p.Grant.All {
		return true
	}
	a.sub.Grant = append([]string{}, p.Grant.Keys...) // never nil: nil grants all
	key, denied := a.sub.Denied()
	if !denied {
		return true
	}
	a.slot.release()
	s.cfg.Auth.Refused(auth.ReasonOutOfScope)
	s.rejects.reject(r.Context(), RejectOutOfScope, a.remote, "client rejected: key outside its credential's grant",
		"key", clip(key, 100), "principal", p.ID)
	http.Error(w, "403 Forbidden: this credential may not read the key "+strconv.Quote(clip(key, 100)), http.StatusForbidden)
	return false
}

// credWatch closes a client when its credential ends: at a token's exp
// (1008 "token expired"; an SSE stream ends) or when its API key is
// revoked (1008 "credential revoked"). It costs a runtime timer, no
// goroutine. It is made before the client joins the hub, so that the
// client's OnClosed can stop it, and started once the client exists.
type credWatch struct {
	s *Server

	mu     sync.Mutex
	client *hub.Client // set by start; guarded by mu
	timer  *time.Timer // guarded by mu
	key    string      // the revocation identity registered; guarded by mu
	done   bool        // stop ran; guarded by mu
}

// watch returns a credWatch for p, or nil when p neither expires nor can
// be revoked.
func (s *Server) watch(p auth.Principal) *credWatch {
	if p.Expires.IsZero() && p.Revocation == "" {
		return nil
	}
	return &credWatch{s: s}
}

// start watches c's credential p. A credential revoked or expired while
// the client was being added closes it at once.
func (w *credWatch) start(c *hub.Client, p auth.Principal) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return
	}
	w.client = c
	if !p.Expires.IsZero() {
		w.timer = time.AfterFunc(time.Until(p.Expires), w.expired)
	}
	if p.Revocation != "" {
		w.key = p.Revocation
		w.s.revocations.add(w.key, c)
	}
	w.mu.Unlock()
	// After registering: a revocation from now on finds the client, one
	// before it set the flag.
	if p.Revoked() {
		w.s.closeRevoked(c)
	}
}

func (w *credWatch) expired() {
	w.s.cfg.Auth.Refused(auth.ReasonExpired)
	w.client.Close(wsframe.ClosePolicyViolation, wsframe.ReasonTokenExpired, hub.ReasonTokenExpired)
}

// stop ends the watch; it is called once the client is closed.
func (w *credWatch) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.key != "" {
		w.s.revocations.remove(w.key, w.client)
	}
}

// revocations indexes the clients of revocable credentials by their
// revocation identity. Safe for concurrent use; nothing under mu blocks.
type revocations struct {
	mu    sync.Mutex
	byKey map[string]map[*hub.Client]struct{} // guarded by mu
}

func (v *revocations) add(key string, c *hub.Client) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.byKey == nil {
		v.byKey = make(map[string]map[*hub.Client]struct{})
	}
	m := v.byKey[key]
	if m == nil {
		m = make(map[*hub.Client]struct{})
		v.byKey[key] = m
	}
	m[c] = struct{}{}
}

func (v *revocations) remove(key string, c *hub.Client) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m := v.byKey[key]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(v.byKey, key)
		}
	}
}

// take removes and returns the clients of the keys.
func (v *revocations) take(keys []string) []*hub.Client {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []*hub.Client
	for _, k := range keys {
		for c := range v.byKey[k] {
			out = append(out, c)
		}
		delete(v.byKey, k)
	}
	return out
}

// Revoke closes the clients connected with the revoked credentials (their
// auth.Principal.Revocation), with 1008 "credential revoked". It is the
// callback of auth.Authenticator.Run.
func (s *Server) Revoke(revocations []string) {
	for _, c := range s.revocations.take(revocations) {
		s.closeRevoked(c)
	}
}

func (s *Server) closeRevoked(c *hub.Client) {
	s.cfg.Auth.Refused(auth.ReasonRevoked)
	c.Close(wsframe.ClosePolicyViolation, wsframe.ReasonCredentialRevoked, hub.ReasonRevoked)
}
