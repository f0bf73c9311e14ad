package service_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
)

// TestShutdownWithIdleConnection: an HTTP connection that is open but has
// sent no request (a browser's preconnect, a load balancer's probe) holds
// http.Server.Shutdown for seconds; WebSocket clients must still get their
// 1001 "going away" at once, not be dropped when the shutdown timeout ends.
func TestShutdownWithIdleConnection(t *testing.T) {
	t.Parallel()
	_, _, s := start(t, 1, e2etest.Env{config.EnvShutdownTimeout: "3s"})
	c := e2etest.Connect(t, s.URL("/ws"))
	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// The server accepts connections in order: once a later connection is
	// answered, the idle one has been accepted and is tracked.
	if status, _ := s.Get(t, "/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz: %d", status)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	c.ExpectClose(t, 1001, "going away")
	idle.Close()
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
}
