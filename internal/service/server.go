package service

import (
	"fmt"
	"log"
	"net/http"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/server"
)

// newServer creates the HTTP side: the credentials and certificates it
// needs, the server with its limits (the connection budget follows from
// the open-file limit unless MAX_CONNECTIONS is set), the connection guard
// and the net/http server around them.
func (s *Service) newServer() error {
	authz, err := s.newAuthorizer()
	if err != nil {
		return err
	}
	if err := s.loadCertificates(); err != nil {
		return err
	}
	maxClients, httpConns := server.FileBudget(openFileLimit())
	if s.cfg.Edge.MaxConnections > 0 {
		maxClients = s.cfg.Edge.MaxConnections
	}
	s.srv = server.New(s.serverConfig(authz, maxClients), s.hub, s.poller)
	s.guard = server.NewConnGuard(httpConns)
	s.http = s.httpServer()
	s.logEdge(maxClients, httpConns)
	return nil
}

// newAuthorizer creates the authenticator when auth is enabled; it returns
// a nil Authorizer (not a nil *auth.Authenticator) when it is not.
func (s *Service) newAuthorizer() (server.Authorizer, error) {
	if !s.cfg.Auth.Enabled {
		return nil, nil
	}
	var err error
	if s.auth, err = newAuth(s.cfg.Auth, s.cfg.Edge, s.log); err != nil {
		return nil, err
	}
	return s.auth, nil
}

// loadCertificates loads TLS_CERT_FILE and TLS_KEY_FILE when TLS is on.
func (s *Service) loadCertificates() (err error) {
	e := s.cfg.Edge
	if !e.TLS() {
		return nil
	}
	s.certs, err = server.LoadCertificates(e.TLSCertFile, e.TLSKeyFile, s.log)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", config.EnvTLSCertFile, config.EnvTLSKeyFile, err)
	}
	return nil
}

// serverConfig maps the configuration into the server's Config.
func (s *Service) serverConfig(authz server.Authorizer, maxClients int) server.Config {
	cfg := s.cfg
	return server.Config{
		Auth:             authz,
		Envelope:         cfg.Decode.Envelope,
		MaxClientMessage: cfg.Clients.MaxMessageBytes,
		SocketSendBuffer: cfg.Clients.SocketSendBuffer,
		WriteTimeout:     cfg.Clients.WriteTimeout,
		Compression:      cfg.Clients.Compression,
		Readiness:        s.Readiness,
		Stats:            s.stats,
		Logger:           s.log,
		Resumer:          s.resumer,
		Views:            serverViews{s.views},
		Snapshot:         s.table != nil,
		NoViewer:         !cfg.Viewer,
		ViewerBasicAuth:  cfg.Auth.Enabled && cfg.Auth.Username != "",

		// Listener protection and metrics.
		AllowedOrigins:      cfg.Edge.AllowedOrigins,
		MaxConnections:      maxClients,
		MaxConnectionsPerIP: cfg.Edge.MaxConnectionsPerIP,
		TrustedProxies:      cfg.Edge.TrustedProxies,
		MaxSubscriptionKeys: cfg.Edge.MaxSubscriptionKeys,
		MaxKeyLength:        cfg.Edge.MaxKeyLength,
		Metrics:             s.metrics.Handler(),
	}
}

// httpServer returns the net/http server for PORT: the guard in front of
// the server, the header and idle timeouts, and TLS when it is on.
func (s *Service) httpServer() *http.Server {
	h := &http.Server{
		Handler:           s.guard.Handler(s.srv),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(httpErrorLog{s.log}, "", 0),
		ConnState:         s.guard.ConnState,
		ConnContext:       s.guard.ConnContext,
	}
	if s.certs != nil {
		h.TLSConfig = s.certs.TLSConfig()
	}
	return h
}
