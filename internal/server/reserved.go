package server

import "strings"

// Reserved reports whether path is an operational path that is never taken
// as a /{key} subscription: /healthz, /readyz, /stats, /metrics, /sse and
// /sse/..., and everything under /_wsdest/ (the viewer's assets and future
// internal endpoints). /ws and /ws/... are not reserved here: they are
// subscription paths whose rest is always a key, so a Kafka key named
// "metrics" is subscribed to as /ws/metrics (or ?key=metrics).
//
// A WebSocket upgrade on a reserved path (on /metrics, say) is answered
// 404, not subscribed.
func Reserved(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/stats", "/metrics", "/sse", "/_wsdest":
		return true
	}
	return strings.HasPrefix(path, "/sse/") || strings.HasPrefix(path, "/_wsdest/")
}
