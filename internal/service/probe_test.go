package service_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/service"
)

// assetFlood opens n connections that pipeline GETs of the viewer's chart
// library and never read an answer, and returns once each has sent its
// requests. They are closed when the test ends.
func assetFlood(t *testing.T, addr string, n int) {
	t.Helper()
	req := []byte("GET /_wsdest/uplot/uPlot.iife.min.js HTTP/1.1\r\nHost: x\r\n\r\n")
	pipelined := bytes.Repeat(req, 256) // 13 MB of answers: more than a socket holds
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		// The server may already have closed it (the guard makes room for
		// the next ones): what matters is what it does meanwhile.
		_, _ = c.Write(pipelined)
	}
}

// TestProbesDuringAssetFlood runs the service with an open-file limit of
// 1,024 (64 HTTP connections in the guard) and 256 connections that
// pipeline GETs of the 51 KB chart library without reading: every
// /healthz and /readyz, one after the other and two at once, is answered
// 200 (within 5 s: a bound on a loaded CI machine under -race, not a
// speed figure; before the guard made room by address, none was
// answered at all).
func TestProbesDuringAssetFlood(t *testing.T) {
	b := e2etest.StartBroker(t, "t", 1)
	addr := startLimitedService(t, 1024, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvLogLevel: "info"}))
	probe := func(path string) error {
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := cl.Get("http://" + addr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	e2etest.Eventually(t, "ready", func() bool { return probe("/readyz") == nil })

	assetFlood(t, addr, 256)
	// The attack takes hold: each handler writes answers until the socket
	// (its send buffer grows to megabytes) is full, then waits.
	time.Sleep(2 * time.Second)
	paths := []string{"/healthz", "/readyz"}
	for i := range 20 {
		if err := probe(paths[i%2]); err != nil {
			t.Errorf("GET %s during the flood: %v", paths[i%2], err)
		}
	}
	for range 10 {
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for j, path := range paths {
			wg.Go(func() { errs[j] = probe(path) })
		}
		wg.Wait()
		for j, err := range errs {
			if err != nil {
				t.Errorf("GET %s (two at once) during the flood: %v", paths[j], err)
			}
		}
	}
}

// TestSideAddrAnswerDeadline: on METRICS_ADDR and PPROF_ADDR too, a
// connection that pipelines requests and does not read the answers is
// closed at WRITE_TIMEOUT, and an idle keep-alive connection is closed
// like one on PORT.
func TestSideAddrAnswerDeadline(t *testing.T) {
	b := e2etest.StartBroker(t, "t", 1)
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{
		config.EnvMetricsAddr: "127.0.0.1:0", config.EnvPprofAddr: "127.0.0.1:0", config.EnvWriteTimeout: "200ms",
	}))
	metricsIdle, pprofIdle := service.IdleTimeouts(s.Svc)
	for _, tc := range []struct {
		name string
		addr net.Addr
		path string
		idle time.Duration
	}{
		{"METRICS_ADDR", s.Svc.MetricsAddr(), "/metrics", metricsIdle},
		{"PPROF_ADDR", s.Svc.PprofAddr(), "/debug/pprof/goroutine?debug=2", pprofIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.idle <= 0 {
				t.Errorf("no idle timeout: keep-alive connections are held for ever")
			}
			c, err := net.Dial("tcp", tc.addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			req := []byte("GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			// More answers than a socket holds; the server may close the
			// connection before it has read them all.
			_, _ = c.Write(bytes.Repeat(req, 1000))
			time.Sleep(time.Second) // past the deadline, reading nothing
			_ = c.SetReadDeadline(time.Now().Add(e2etest.Wait))
			n, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the connection is still open after %d bytes read", n)
			}
		})
	}
}

// TestPprofSampling: with a WRITE_TIMEOUT shorter than the sampling, a
// CPU profile and a trace of a second are still served: the sampling time
// is added to the answer's write deadline.
func TestPprofSampling(t *testing.T) {
	b := e2etest.StartBroker(t, "t", 1)
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{
		config.EnvPprofAddr: "127.0.0.1:0", config.EnvWriteTimeout: "200ms",
	}))
	for _, path := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
		resp, err := http.Get("http://" + s.Svc.PprofAddr().String() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes, %v: %s", path, resp.StatusCode, len(body), err, clipBody(body))
		}
	}
}

// clipBody returns the start of an answer's body, for an error message.
func clipBody(b []byte) []byte { return b[:min(len(b), 200)] }
