package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// credentialRefusal returns the refusal for a request whose credential
// Authorize refused with err: wsframe.ReasonNotAccepted when it carried a
// credential where wsdest reads one (Authorize tried one and refused it,
// a ?token=, or an Authorization header with a Bearer or Basic credential
// that nothing is configured to check), wsframe.ReasonNoCredential otherwise
// (?api_key=, ?access_token= and ?Token= are not such places). Neither
// echoes what the request carried, so no secret shows.
func credentialRefusal(r *http.Request, err error) string {
	if e, ok := auth.AsError(err); (ok && e.Reason != auth.ReasonMissing) || r.URL.Query().Get("token") != "" {
		return wsframe.ReasonNotAccepted
	}
	scheme, rest, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Basic")) && strings.TrimSpace(rest) != "" {
		return wsframe.ReasonNotAccepted
	}
	return wsframe.ReasonNoCredential
}

// upgradeDropped answers a request that carries Sec-WebSocket-Key, so a
// WebSocket client sent it, but lost its Upgrade or Connection header on
// the way: a proxy that does not pass them on (HTTP/1.1 hop-by-hop
// headers), most often nginx without the lines shown.
func (s *Server) upgradeDropped(w http.ResponseWriter, r *http.Request) {
	s.rejects.reject(r.Context(), RejectHandshake, r.RemoteAddr,
		"websocket request without its Upgrade header: a proxy dropped it", "path", r.URL.Path)
	w.Header().Set("Upgrade", "websocket")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUpgradeRequired)
	fmt.Fprint(w, upgradeDroppedText)
}

const upgradeDroppedText = `426 Upgrade Required: this WebSocket request (it carries Sec-WebSocket-Key) arrived without "Upgrade: websocket" and "Connection: upgrade": a proxy between the client and wsdest dropped them.
A proxy must pass them on explicitly. In nginx, in the location that proxies to wsdest:
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
and in the http block:
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
deploy/nginx/wsdest.conf in wsdest's repository is a complete configuration.
`
