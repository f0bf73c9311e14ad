package server

import (
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// The viewer shares the URL space with the WebSocket paths: a plain GET
// from a browser (not an upgrade, Accept naming text/html) on /, /{key},
// /ws or /ws/{key} gets the viewer page, which subscribes itself to that
// path's key(s) and query; every other plain GET keeps the 426 answer. The
// page's assets are under /_wsdest/, a reserved prefix that is never a key
// path.

// servePage answers a browser's page load with the viewer. The page holds
// no data, so it is served to anyone; only with ViewerBasicAuth does a
// request without a token or valid credentials get a 401 challenge first
// (with the page as its body, so cancelling the prompt still leaves the
// Token field to use).
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.ViewerBasicAuth && s.cfg.Auth != nil && !r.URL.Query().Has("token") && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="wsdest", charset="UTF-8"`)
		s.viewer.ServePageStatus(w, r, http.StatusUnauthorized)
		return
	}
	s.viewer.ServePage(w, r)
}

// wantsViewer reports whether r is a browser's plain page load.
func wantsViewer(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return acceptsHTML(r.Header.Values("Accept"))
}

// acceptsHTML reports whether an Accept header names text/html (or
// application/xhtml+xml) with a non-zero quality. A bare */* does not
// count: curl and most libraries send it, and they should keep getting
// the 426 text.
func acceptsHTML(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || (mt != "text/html" && mt != "application/xhtml+xml") {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// ViewerURL is the URL to open in a browser for a server listening on
// addr: public when set (Quix Cloud's public URL for the deployment),
// otherwise http://localhost:PORT/ for a wildcard or loopback address and
// http://IP:PORT/ for a specific one.
func ViewerURL(addr net.Addr, public string) string {
	if public != "" {
		if !strings.HasSuffix(public, "/") {
			public += "/"
		}
		return public
	}
	host, port := "localhost", ""
	if ta, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
		if !ta.IP.IsUnspecified() && !ta.IP.IsLoopback() && ta.IP != nil {
			host = ta.IP.String()
		}
	} else if h, p, err := net.SplitHostPort(addr.String()); err == nil {
		port = p
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// authorized reports whether r carries a valid credential.
func (s *Server) authorized(r *http.Request) bool {
	_, err := s.authorize(r)
	return err == nil
}
