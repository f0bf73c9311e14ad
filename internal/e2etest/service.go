package e2etest

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/service"
)

// Env is a set of environment variables, read by config.FromEnv through
// Lookup. Variables not in the map are unset.
type Env map[string]string

// Lookup implements the lookup function of config.FromEnv.
func (e Env) Lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// Environ returns e as os.Environ does: "NAME=value" entries.
func (e Env) Environ() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

// With returns a copy of e with the variables of more added or replaced.
func (e Env) With(more Env) Env {
	out := maps.Clone(e)
	if out == nil {
		out = Env{}
	}
	maps.Copy(out, more)
	return out
}

// Without returns a copy of e without the named variables.
func (e Env) Without(names ...string) Env {
	out := maps.Clone(e)
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// BrokerEnv is the environment of a service streaming b's topic, listening
// on a free loopback port.
func BrokerEnv(b *Broker) Env {
	return Env{
		config.EnvBrokerAddress: b.Addr(),
		config.EnvTopic:         b.Topic(),
		config.EnvHost:          "127.0.0.1",
		config.EnvPort:          "0",
	}
}

// Service is the real wsdest service, built by config.FromEnv and
// service.New and run by service.Run on a goroutine of its own.
type Service struct {
	// Svc is the running service.
	Svc *service.Service
	// Config is the configuration it was built from.
	Config config.Config
	// Log holds the service's log output (text format, at LOG_LEVEL).
	Log *LogBuffer

	addr   string
	cancel context.CancelFunc
	done   chan struct{}
	runErr error // set before done is closed
	http   *http.Client
}

// StartService builds the service from env (HOST defaults to 127.0.0.1
// and PORT to 0 when env leaves them out) and runs it until the test ends
// or Stop is called. It does not wait for readiness: see WaitReady.
func StartService(t testing.TB, env Env) *Service {
	t.Helper()
	env = Env{config.EnvHost: "127.0.0.1", config.EnvPort: "0"}.With(env)
	cfg, err := config.FromEnv(env.Lookup)
	if err != nil {
		t.Fatalf("e2etest: config: %v", err)
	}
	lb := &LogBuffer{}
	lb.DumpOnFailure(t, "service")
	logger := lb.Logger(cfg.Log.Level)
	// The service outlives t.Context's end by the length of Stop, so that
	// cleanups registered later (clients) run before it stops.
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("e2etest: service.New: %v", err)
	}
	s := &Service{
		Svc:    svc,
		Config: cfg,
		Log:    lb,
		addr:   svc.Addr().String(),
		cancel: cancel,
		done:   make(chan struct{}),
		http:   &http.Client{Timeout: Wait},
	}
	go func() {
		defer close(s.done)
		s.runErr = svc.Run(ctx)
	}()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("e2etest: service stop: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			_, body, err := s.get(context.Background(), "/stats")
			t.Logf("service /stats at the failure: %s %v", body, err)
		}
	})
	return s
}

// Addr returns the host:port the service listens on.
func (s *Service) Addr() string { return s.addr }

// URL returns the ws:// URL of pathQuery (which starts with '/').
func (s *Service) URL(pathQuery string) string { return "ws://" + s.addr + pathQuery }

// HTTPURL returns the http:// URL of pathQuery.
func (s *Service) HTTPURL(pathQuery string) string { return "http://" + s.addr + pathQuery }

// Stop cancels the service's context and waits, at most Wait, for Run to
// return; it returns Run's error. Stopping again returns the same result.
func (s *Service) Stop() error {
	s.cancel()
	select {
	case <-s.done:
		return s.runErr
	case <-time.After(Wait):
		return context.DeadlineExceeded
	}
}

// Done is closed when Run has returned.
func (s *Service) Done() <-chan struct{} { return s.done }

// Get performs a GET of pathQuery and returns the status and body.
func (s *Service) Get(t testing.TB, pathQuery string) (int, string) {
	t.Helper()
	status, body, err := s.get(t.Context(), pathQuery)
	if err != nil {
		t.Fatalf("e2etest: GET %s: %v", pathQuery, err)
	}
	return status, body
}

func (s *Service) get(ctx context.Context, pathQuery string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.HTTPURL(pathQuery), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// Stats fetches and decodes /stats.
func (s *Service) Stats(t testing.TB) service.Stats {
	t.Helper()
	status, body := s.Get(t, "/stats")
	if status != http.StatusOK {
		t.Fatalf("e2etest: /stats: status %d: %s", status, body)
	}
	var st service.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("e2etest: /stats: %v: %s", err, body)
	}
	return st
}

// WaitReady waits until /readyz answers 200: the service has the topic's
// partitions and a reachable broker. Consumption starts at the records
// stamped after the service started, so everything produced from now on
// is delivered.
func (s *Service) WaitReady(t testing.TB) {
	t.Helper()
	s.waitReadyz(t, http.StatusOK)
}

// WaitUnready waits until /readyz answers 503.
func (s *Service) WaitUnready(t testing.TB) {
	t.Helper()
	s.waitReadyz(t, http.StatusServiceUnavailable)
}

func (s *Service) waitReadyz(t testing.TB, want int) {
	t.Helper()
	Eventually(t, "/readyz "+http.StatusText(want), func() bool {
		status, _, err := s.get(t.Context(), "/readyz")
		return err == nil && status == want
	})
}
