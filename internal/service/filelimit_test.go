package service_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/service"
	"github.com/wsdest/wsdest/internal/testbroker"
)

// TestHelperService is not a test: run by startServiceProcess in a child
// process (under prlimit), it runs the service from the environment until
// its stdin closes.
func TestHelperService(t *testing.T) {
	if os.Getenv("WSDEST_HELPER_SERVICE") != "1" {
		t.Skip("helper process for TestAtFileLimit")
	}
	cfg, err := config.FromEnv(os.LookupEnv)
	if err != nil {
		println("config:", err.Error())
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Log.Level}))
	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		println("service:", err.Error())
		os.Exit(2)
	}
	os.Stdout.WriteString("addr " + svc.Addr().String() + "\n")
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	if err := svc.Run(ctx); err != nil {
		println("run:", err.Error())
		os.Exit(1)
	}
	os.Exit(0)
}

// TestAtFileLimit runs the service with an open-file limit of 256 (set
// with prlimit) and attacks it: WebSocket clients up to its limit, and a
// stream of TCP connections that never send a request, held open. The
// service refuses the clients over MAX_CONNECTIONS (derived from the file
// limit) with 503, and meanwhile /healthz, /readyz and /metrics keep
// answering on fresh connections, and the Kafka client reconnects to a
// restarted broker and delivers.
func TestAtFileLimit(t *testing.T) {
	const nofile = 256
	maxClients, _ := server.FileBudget(nofile)
	b := e2etest.StartBroker(t, "t", 1)
	addr := startLimitedService(t, nofile, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvPingInterval: "1h", config.EnvLogLevel: "info"}))
	probe := func(path string) int {
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := cl.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	e2etest.Eventually(t, "ready", func() bool { return probe("/readyz") == 200 })

	// Clients up to the limit, then 503.
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	var clients []*e2etest.Client
	for {
		c, err := e2etest.Dial(ctx, "ws://"+addr+"/ws")
		var de *e2etest.DialError
		if errors.As(err, &de) && de.Status == http.StatusServiceUnavailable {
			break
		}
		if err != nil {
			t.Fatalf("client %d: %v", len(clients), err)
		}
		clients = append(clients, c)
		t.Cleanup(func() { c.Close() })
	}
	if len(clients) != maxClients {
		t.Errorf("%d clients accepted, want %d (FileBudget(%d))", len(clients), maxClients, nofile)
	}

	// Held connections that never send a request, opened without pause
	// at first and then at a steady pace, while the probes run.
	flood, stopFlood := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var held []net.Conn
	burst := make(chan struct{})
	wg.Go(func() {
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for i := 0; flood.Err() == nil; i++ {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				held = append(held, c)
			}
			if len(held) > 400 {
				held[0].Close()
				held = held[1:]
			}
			if i == 400 {
				close(burst)
			}
			if i >= 400 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	defer func() { stopFlood(); wg.Wait() }()
	<-burst
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/healthz", "/healthz"} {
		if st := probe(path); st != 200 {
			t.Errorf("GET %s during the flood: %d, want 200", path, st)
		}
	}

	// The Kafka client must be able to open new connections: restart the
	// broker, then a record produced to the new one reaches a client.
	b.Restart(t)
	e2etest.Eventually(t, "ready after the broker restart", func() bool { return probe("/readyz") == 200 })
	p := e2etest.NewProducer(t, b)
	p.Produce([]byte("k"), []byte(`{"after":"restart"}`))
	if got := clients[0].Next(t); string(got) != `{"after":"restart"}` {
		t.Errorf("got %s", got)
	}
	if st := probe("/healthz"); st != 200 {
		t.Errorf("/healthz at the end: %d", st)
	}
}

// startLimitedService runs the service from env in a child process with
// an open-file limit of nofile (set with prlimit; the test is skipped
// without it) until the test ends, and returns its address. The test
// fails if the service logs that it ran out of descriptors.
func startLimitedService(t *testing.T, nofile int, env e2etest.Env) string {
	t.Helper()
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	log := &e2etest.LogBuffer{}
	log.DumpOnFailure(t, "service")
	lim := fmt.Sprintf("--nofile=%d:%d", nofile, nofile)
	cmd := exec.Command("prlimit", lim, os.Args[0], "-test.run=^TestHelperService$")
	cmd.Env = append(os.Environ(), "WSDEST_HELPER_SERVICE=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = log
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
		if strings.Contains(log.String(), "too many open files") {
			t.Errorf("the service ran out of file descriptors")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		t.Fatalf("service process: %q %v", line, err)
	}
	return addr
}

// TestHelperBrokerProcess is not a test: see testbroker.Start.
func TestHelperBrokerProcess(t *testing.T) { testbroker.Serve(t) }

// frozenSlack is how much shorter than the measured freeze a logged outage
// may be: see TestFrozenBroker.
const frozenSlack = 20 * time.Millisecond

// TestFrozenBroker freezes the broker process with SIGSTOP under a running
// service: /readyz turns 503 and wsdest_broker_up 0 within seconds (not
// franz-go's request timeouts), the connected client stays connected, the
// outage logged when the broker is thawed is at least as long as the
// freeze, and records produced before and after all arrive.
func TestFrozenBroker(t *testing.T) {
	bp := testbroker.Start(t, "TestHelperBrokerProcess", 1)
	s := e2etest.StartService(t, e2etest.Env{config.EnvBrokerAddress: bp.Addr, config.EnvTopic: "t"})
	s.WaitReady(t)
	c := e2etest.Connect(t, s.URL("/ws"))
	p := e2etest.NewProducerTo(t, bp.Addr)
	p.Produce([]byte("k"), []byte(`{"n":1}`))
	if got := c.Next(t); string(got) != `{"n":1}` {
		t.Fatalf("got %s", got)
	}

	bp.Freeze(t)
	frozeAt := time.Now()
	s.WaitUnready(t)
	t.Logf("/readyz 503 %v after SIGSTOP", time.Since(frozeAt).Round(time.Millisecond))
	if v := value(scrape(t, s.HTTPURL("/metrics")), "wsdest_broker_up"); v != 0 {
		t.Errorf("wsdest_broker_up = %v while frozen", v)
	}
	thawAt := time.Now()
	bp.Thaw(t)
	frozen := thawAt.Sub(frozeAt)
	s.WaitReady(t)
	p.Produce([]byte("k"), []byte(`{"n":2}`))
	if got := c.Next(t); string(got) != `{"n":2}` {
		t.Fatalf("after the freeze the connected client got %s", got)
	}
	l := s.Log.Lines("reachable again")
	if len(l) != 1 {
		t.Fatalf("reachable-again lines: %q", l)
	}
	_, after, _ := strings.Cut(l[0], "outage=")
	outage, err := time.ParseDuration(strings.Fields(after)[0])
	// The log rounds to the millisecond, and an answer the broker wrote
	// just before it stopped may be read a few milliseconds after Freeze
	// returned; the bug this guards against was off by whole seconds.
	if err != nil || outage+frozenSlack < frozen {
		t.Errorf("outage logged as %q, the broker was frozen for %v", after, frozen)
	}
}
