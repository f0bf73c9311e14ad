package server

import (
	"errors"
	"net/http"

	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/message"
)

// Views makes the views a client asks for with ?where= (a filter) and
// ?fields= (a projection): the service passes the view package's
// Registry. Acquire returns the view of the three, shared with every
// client of the same ones, held by owner (the client's address, which
// MAX_VIEWS_PER_IP bounds); its error is one line for a 400 answer (a
// syntax error with its position, a bound with its limit). Release gives
// back a view Acquire returned, once, with the same owner, when its
// client is closed.
type Views interface {
	Acquire(where, fields string, shape message.Shape, owner string) (hub.View, error)
	Release(v hub.View, owner string)
}

// viewOwner is who holds the views of r's client: its address, as
// MAX_CONNECTIONS_PER_IP counts it (an IPv6 /64).
func (s *Server) viewOwner(r *http.Request) string {
	return perIPKey(clientAddr(r, s.cfg.TrustedProxies)).String()
}

// acquireView gives the admitted client the view its request asks for,
// if any (a.sub.View), or answers 400 and gives back the client's slot.
// An empty where= or fields= asks for nothing.
func (s *Server) acquireView(w http.ResponseWriter, r *http.Request, a *admission) bool {
	q := r.URL.Query()
	where, fields := lastValue(q["where"]), lastValue(q["fields"])
	if where == "" && fields == "" {
		return true
	}
	var err error
	if s.cfg.Views == nil {
		err = errors.New("views (where=, fields=) are not enabled on this server")
	} else {
		a.sub.View, err = s.cfg.Views.Acquire(where, fields, a.sub.Shape, s.viewOwner(r))
	}
	if err != nil {
		a.slot.release()
		s.rejects.reject(r.Context(), RejectBadRequest, a.remote, "client rejected: bad view", "err", err)
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// viewHold is what gives back a WebSocket client's view: the server and
// the view's owner.
type viewHold struct {
	s     *Server
	owner string
}

// releaseView gives back v, a view acquireView acquired for owner (nil:
// none).
func (s *Server) releaseView(v hub.View, owner string) {
	if v != nil {
		s.cfg.Views.Release(v, owner)
	}
}
