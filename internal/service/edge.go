package service

import (
	"syscall"

	"github.com/wsdest/wsdest/internal/server"
)

// openFileLimit returns the process's soft limit on open files (Go raises
// it to the hard limit at start), or 1024 when it cannot be read.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	if rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
}

// logEdge logs, once at start-up, what protects the listener.
func (s *Service) logEdge(maxClients, httpConns int) {
	e := s.cfg.Edge
	limit := openFileLimit()
	if derived, _ := server.FileBudget(limit); e.MaxConnections > derived {
		s.log.Warn("MAX_CONNECTIONS is above what the open-file limit leaves for clients: at the limit, health checks and the Kafka client may fail to open connections",
			"max_connections", e.MaxConnections, "open_file_limit", limit, "clients_within_the_limit", derived)
	}
	scheme := "ws:// and http://"
	if e.TLS() {
		scheme = "wss:// and https:// (TLS 1.2+, HTTP/2 for the HTTP endpoints)"
	}
	perIP := any("off")
	if e.MaxConnectionsPerIP > 0 {
		perIP = e.MaxConnectionsPerIP
	}
	s.log.Info("listener limits", "serving", scheme,
		"max_connections", maxClients, "derived", e.MaxConnections == 0,
		"max_http_connections", httpConns, "max_connections_per_ip", perIP,
		"trusted_proxies", len(e.TrustedProxies),
		"max_subscription_keys", e.MaxSubscriptionKeys, "max_key_length", e.MaxKeyLength,
		"max_views", e.MaxViews, "max_views_per_ip", e.MaxViewsPerIP)
}
