package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/bench"
	"github.com/wsdest/wsdest/internal/bench/benchtest"
	"github.com/wsdest/wsdest/internal/devbroker"
)

// TestMain lets the test binary act as wsbench's worker processes: run
// re-executes os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == bench.WorkerFlag {
		if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "wsbench worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-h"}, nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, f := range []string{"-url", "-clients", "-connect-rate", "-in-flight", "-brokers", "-topic", "-rate", "-duration",
		"-size", "-keys", "-pid", "-idle", "-stall", "-procs", "-source-ips", "-drain", "-stall-read", "-timeout",
		"-allow-remote", "{key}", "ONE JSON line", "deliveries_expected"} {
		if !strings.Contains(stderr.String(), f) {
			t.Errorf("usage lacks %q", f)
		}
	}
	if strings.Contains(stderr.String(), bench.WorkerFlag+" ") {
		t.Error("usage shows the hidden worker flag")
	}
	if stdout.Len() != 0 {
		t.Errorf("help wrote to stdout: %q", stdout.String())
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(bench.Config) bool
		usage bool
	}{
		{"defaults", nil, func(c bench.Config) bool {
			return c.URL == "ws://127.0.0.1:8000/ws" && c.Clients == 100 && c.Idle == 5*time.Second &&
				c.Drain == 3*time.Second && len(c.Brokers) == 1 && c.Brokers[0] == "127.0.0.1:9092" && c.Topic == "input"
		}, false},
		{"brokers list", []string{"-brokers", "127.0.0.1:1, 127.0.0.1:2,"}, func(c bench.Config) bool {
			return len(c.Brokers) == 2 && c.Brokers[1] == "127.0.0.1:2"
		}, false},
		{"values", []string{"-clients", "7", "-rate", "12.5", "-duration", "2s", "-stall", "0.1", "-procs", "3", "-source-ips", "4", "-allow-remote"},
			func(c bench.Config) bool {
				return c.Clients == 7 && c.Rate == 12.5 && c.Duration == 2*time.Second && c.Stall == 0.1 && c.Procs == 3 &&
					c.SourceIPs == 4 && c.AllowRemote
			}, false},
		{"bad number", []string{"-clients", "many"}, nil, true},
		{"unknown flag", []string{"-nope"}, nil, true},
		{"stray argument", []string{"extra"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, io.Discard)
			if tt.usage {
				if !errors.As(err, new(usageError)) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

func TestRefusesRemote(t *testing.T) {
	err := run(t.Context(), []string{"-url", "ws://192.0.2.1:8000/ws", "-idle", "0"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-allow-remote") {
		t.Fatalf("err = %v", err)
	}
}

// TestRun runs the whole program, split over worker processes, against
// the in-process broker and a broadcast server.
func TestRun(t *testing.T) {
	broker, err := devbroker.Start(t.Context(), devbroker.Config{Addr: "127.0.0.1:0", Topic: "input"}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	srv, err := benchtest.Start(broker.Addr(), "input", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	var stdout bytes.Buffer
	args := []string{"-url", srv.URL(), "-brokers", broker.Addr(), "-clients", "10", "-procs", "2",
		"-rate", "500", "-duration", "400ms", "-keys", "3", "-idle", "0", "-pid", strconv.Itoa(os.Getpid()), "-drain", "10s"}
	if err := run(t.Context(), args, nil, &stdout, t.Output()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines: %q", len(lines), stdout.String())
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatal(err)
	}
	if res.Connected != 10 || res.RecordsProduced != 200 || res.DeliveriesExpected != 2000 ||
		res.DeliveriesReceived != 2000 || res.Loss != 0 || res.ServerRSSBytes.Before == 0 {
		t.Errorf("result %s", lines[0])
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
