package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
)

// assetFlood holds n connections that pipeline GETs of the viewer's chart
// library and never read an answer; a connection the server closes is
// opened again a second later. It returns once each of the n has sent its
// requests, and stops when the test ends.
func assetFlood(t *testing.T, addr string, n int) {
	t.Helper()
	var sent sync.WaitGroup
	sent.Add(n)
	req := []byte("GET /_wsdest/uplot/uPlot.iife.min.js HTTP/1.1\r\nHost: x\r\n\r\n")
	pipelined := bytes.Repeat(req, 64)
	ctx := t.Context()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for range n {
		wg.Go(func() {
			first := true
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				_ = c.(*net.TCPConn).SetReadBuffer(4096)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				for ctx.Err() == nil {
					if _, err := c.Write(pipelined); err != nil {
						break
					}
					if first {
						first = false
						sent.Done()
					}
					time.Sleep(100 * time.Millisecond)
				}
				stop()
				c.Close()
				time.Sleep(time.Second)
			}
			if first {
				sent.Done()
			}
		})
	}
	sent.Wait()
}

// TestProbesDuringAssetFlood runs the service with an open-file limit of
// 1,024 (64 HTTP connections in the guard) and 256 connections that
// pipeline GETs of the 51 KB chart library without reading: every
// /healthz and /readyz, one after the other and two at once, is answered
// 200 within 2 s.
func TestProbesDuringAssetFlood(t *testing.T) {
	b := e2etest.StartBroker(t, "t", 1)
	addr := startLimitedService(t, 1024, e2etest.BrokerEnv(b).With(e2etest.Env{config.EnvLogLevel: "info"}))
	probe := func(path string) error {
		cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
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
