package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/e2etest"
)

// runMainEnv marks a run of this test binary as the wsdest program itself,
// for the tests that need a process of their own (signals).
const runMainEnv = "WSDEST_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// noEnvFile returns an -env-file argument naming an empty file, so that no
// .env of the developer's can change a test.
func noEnvFile(t *testing.T) []string {
	path := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-env-file", path}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), []string{arg}, e2etest.Env{}.Environ(), &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit %d, want 0", arg, code)
		}
		if !strings.Contains(stderr.String(), "Usage: wsdest") || !strings.Contains(stderr.String(), "-env-file") {
			t.Errorf("%s: usage is %q", arg, stderr.String())
		}
	}
}

// TestStartErrors runs the program with settings it cannot start with:
// each exits with status 2 and one line on stderr naming the variable to
// fix, and no secret given in the environment shows up.
func TestStartErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Value-42"
	unreachable := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // after the parallel subtests
	base := e2etest.Env{
		"Quix__Broker__Address": unreachable,
		"input":                 "t",
		"HOST":                  "127.0.0.1",
		"PORT":                  "0",
	}
	tests := []struct {
		name string
		env  e2etest.Env
		want []string // substrings of the line
	}{
		{"non-numeric PORT", base.With(e2etest.Env{"PORT": "80a", "WS_USERNAME": "u", "WS_PASSWORD": secret}), []string{"PORT", `"80a"`}},
		{"port out of range", base.With(e2etest.Env{"PORT": "65536"}), []string{"PORT", "65536"}},
		{"unknown boolean AUTH_ENABLED", base.With(e2etest.Env{"AUTH_ENABLED": "maybe", "AUTH_API_KEYS": secret}), []string{"AUTH_ENABLED", `"maybe"`}},
		{"AUTH_ENABLED without credentials", base.With(e2etest.Env{"AUTH_ENABLED": "true"}), []string{"AUTH_ENABLED", "AUTH_API_KEYS"}},
		{"WS_PASSWORD without WS_USERNAME", base.With(e2etest.Env{"WS_PASSWORD": secret}), []string{"WS_PASSWORD", "WS_USERNAME"}},
		{"topic missing with a broker", base.Without("input"), []string{"input"}},
		{"bad topic name", base.With(e2etest.Env{"input": "a topic"}), []string{"input", `"a topic"`}},
		{"bad broker address", base.With(e2etest.Env{"Quix__Broker__Address": "kafka"}), []string{"Quix__Broker__Address", `"kafka"`}},
		{"SDK token without portal", base.Without("Quix__Broker__Address").With(e2etest.Env{"Quix__Sdk__Token": secret, "Quix__Workspace__Id": "ws"}),
			[]string{"Quix__Portal__Api", "Quix__Sdk__Token"}},
		{"SASL password without mechanism", base.With(e2etest.Env{"KAFKA_SASL_PASSWORD": secret}), []string{"KAFKA_SASL_PASSWORD", "KAFKA_SASL_MECHANISM"}},
		{"bad MAX_QUEUE_BYTES", base.With(e2etest.Env{"MAX_QUEUE_BYTES": "lots"}), []string{"MAX_QUEUE_BYTES", `"lots"`}},
		{"bad FORMAT", base.With(e2etest.Env{"FORMAT": "xml"}), []string{"FORMAT", `"xml"`}},
		{"port in use", base.With(e2etest.Env{"PORT": fmt.Sprint(busy.Addr().(*net.TCPAddr).Port), "AUTH_API_KEYS": secret}),
			[]string{"PORT", "address already in use"}},
		{"dev broker port in use", base.Without("Quix__Broker__Address").With(e2etest.Env{"DEV_BROKER_ADDR": busy.Addr().String()}),
			[]string{"DEV_BROKER_ADDR", "address already in use"}},
		// A misspelt broker setting must not start the dev broker.
		{"broker address in the wrong case", base.Without("Quix__Broker__Address").With(e2etest.Env{"QUIX__BROKER__ADDRESS": unreachable}),
			[]string{"QUIX__BROKER__ADDRESS is not a setting wsdest reads: did you mean Quix__Broker__Address?"}},
		{"broker address one letter off", base.Without("Quix__Broker__Address").With(e2etest.Env{"Quix__Broker__Adress": unreachable}),
			[]string{"Quix__Broker__Adress", "did you mean Quix__Broker__Address?"}},
		{"topic in the wrong case", base.Without("input").With(e2etest.Env{"INPUT": "t"}), []string{"INPUT", "did you mean input?"}},
		// Quix Streams' retries: five attempts over 15 s, the slowest case.
		{"unreachable Portal API", base.Without("Quix__Broker__Address").With(e2etest.Env{
			"Quix__Sdk__Token": secret, "Quix__Workspace__Id": "ws", "Quix__Portal__Api": "http://" + unreachable,
		}), []string{"Quix__Portal__Api", "connection refused", "after 5 attempts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), noEnvFile(t), tt.env.Environ(), &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			out := stderr.String()
			if n := strings.Count(out, "\n"); n != 1 || !strings.HasSuffix(out, "\n") {
				t.Errorf("stderr has %d lines, want 1:\n%s", n, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr %q does not mention %q", out, w)
				}
			}
			if strings.Contains(out, secret) {
				t.Errorf("stderr shows the secret: %s", out)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
		})
	}
}

func TestUnexpectedArgument(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve"}, e2etest.Env{}.Environ(), &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unexpected argument "serve"`) {
		t.Errorf("stderr: %q", stderr.String())
	}
}

// program is run() on a goroutine of the test.
type program struct {
	log    *e2etest.LogBuffer // its stderr
	addr   string             // where it listens
	cancel context.CancelFunc
	done   chan int // receives the exit status
}

var listenRE = regexp.MustCompile(`msg="wsdest started" .*?listen=(\S+)`)

// startProgram calls run with env and waits for the start-up line.
func startProgram(t *testing.T, env e2etest.Env) *program {
	t.Helper()
	p := &program{log: &e2etest.LogBuffer{}, done: make(chan int, 1)}
	p.log.DumpOnFailure(t, "wsdest")
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	p.cancel = cancel
	args := noEnvFile(t)
	go func() { p.done <- run(ctx, args, env.Environ(), &bytes.Buffer{}, p.log) }()
	t.Cleanup(func() {
		if code, ok := p.stop(); !ok || code != 0 {
			t.Errorf("run: exit %d (returned %v), want 0", code, ok)
		}
	})
	e2etest.Eventually(t, "the start-up line", func() bool {
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("run exited with %d", code)
		default:
		}
		m := listenRE.FindStringSubmatch(p.log.String())
		if m != nil {
			p.addr = m[1]
		}
		return m != nil
	})
	return p
}

// stop cancels run's context and returns its exit status, waiting at most
// e2etest.Wait.
func (p *program) stop() (int, bool) {
	p.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), e2etest.Wait)
	defer cancel()
	select {
	case code := <-p.done:
		p.done <- code
		return code, true
	case <-ctx.Done():
		return -1, false
	}
}

func (p *program) waitReady(t *testing.T) {
	t.Helper()
	e2etest.Eventually(t, "/readyz 200", func() bool {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestDevBroker runs the program with no broker configured: it starts the
// embedded development broker, by default with demo data.
func TestDevBroker(t *testing.T) {
	t.Parallel()
	env := e2etest.Env{
		"DEV_BROKER_ADDR": "127.0.0.1:0",
		"HOST":            "127.0.0.1",
		"PORT":            "0",
		"DEMO_INTERVAL":   "10ms",
	}

	t.Run("demo data", func(t *testing.T) {
		t.Parallel()
		p := startProgram(t, env)
		p.waitReady(t)
		c := e2etest.Connect(t, "ws://"+p.addr+"/ws/sensor-2?envelope=true")
		for range 3 {
			var e struct {
				Topic string
				Key   string
				Value struct {
					Timestamp   int64
					Temperature *float64
					Humidity    *float64
					Tags        struct{ Location string }
				}
			}
			frame := c.Next(t)
			if err := json.Unmarshal(frame, &e); err != nil {
				t.Fatalf("demo record %s: %v", frame, err)
			}
			if e.Topic != "input" || e.Key != "sensor-2" || e.Value.Timestamp == 0 || e.Value.Temperature == nil ||
				e.Value.Humidity == nil || e.Value.Tags.Location == "" {
				t.Errorf("demo record %s", frame)
			}
		}
		if l := p.log.Lines("development Kafka broker running"); len(l) != 1 {
			t.Errorf("dev broker warning lines: %q", l)
		}
		// A normal dev start warns once: the dev broker is memory only.
		if l := p.log.Lines("level=WARN"); len(l) != 1 {
			t.Errorf("a dev start logs %d warnings, want 1: %q", len(l), l)
		}
	})

	t.Run("no demo data, own producer", func(t *testing.T) {
		t.Parallel()
		p := startProgram(t, env.With(e2etest.Env{"DEMO_DATA": "false"}))
		m := regexp.MustCompile(`msg="development Kafka broker running.*" addr=(\S+)`).FindStringSubmatch(p.log.String())
		if m == nil {
			t.Fatalf("no dev broker address in the log")
		}
		p.waitReady(t)
		c := e2etest.Connect(t, "ws://"+p.addr+"/ws")

		cl, err := kgo.NewClient(kgo.SeedBrokers(m[1]), kgo.DefaultProduceTopic("input"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := e2etest.Context(t)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("mine"), Value: []byte(`{"hello":"dev"}`)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if got := c.Next(t); string(got) != `{"hello":"dev"}` {
			t.Errorf("got %s", got)
		}
		c.ExpectQuiet(t) // no demo records
	})
}

// TestEnvFile: an -env-file that does not exist stops start-up with one
// line naming it; a file that exists is read, and the start-up line says
// which file was read and, first, the URL to open.
func TestEnvFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "typo.env")
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-env-file", missing}, e2etest.Env{}.Environ(), &stdout, &stderr); code != 2 {
		t.Errorf("missing -env-file: exit %d, want 2", code)
	}
	if out := stderr.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, missing+" does not exist") {
		t.Errorf("missing -env-file: stderr %q, want one line naming the file", out)
	}

	// A misspelling in the file is refused like one in the environment.
	typo := filepath.Join(t.TempDir(), "typo-inside.env")
	if err := os.WriteFile(typo, []byte("quix__broker__address=kafka:9092\ninput=t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run(t.Context(), []string{"-env-file", typo}, e2etest.Env{}.Environ(), &stdout, &stderr); code != 2 {
		t.Errorf("misspelt name in the env file: exit %d, want 2", code)
	}
	if out := stderr.String(); out != "wsdest: quix__broker__address is not a setting wsdest reads: did you mean Quix__Broker__Address? (names are case-sensitive)\n" {
		t.Errorf("misspelt name in the env file: stderr %q", out)
	}

	file := filepath.Join(t.TempDir(), "dev.env")
	if err := os.WriteFile(file, []byte("DEMO_DATA=false\nHOST=127.0.0.1\nPORT=0\nDEV_BROKER_ADDR=127.0.0.1:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &program{log: &e2etest.LogBuffer{}, done: make(chan int, 1)}
	p.log.DumpOnFailure(t, "wsdest")
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	p.cancel = cancel
	go func() {
		p.done <- run(ctx, []string{"-env-file", file}, e2etest.Env{}.Environ(), &bytes.Buffer{}, p.log)
	}()
	var line string
	e2etest.Eventually(t, "the start-up line", func() bool {
		l := p.log.Lines("wsdest started")
		if len(l) > 0 {
			line = l[0]
		}
		return line != ""
	})
	if code, ok := p.stop(); !ok || code != 0 {
		t.Errorf("run: exit %d (returned %v), want 0", code, ok)
	}
	want := regexp.MustCompile(`msg="wsdest started" open=http://localhost:\d+/ listen=127\.0\.0\.1:\d+ env_file=` + regexp.QuoteMeta(file) + ` `)
	if !want.MatchString(line) || !strings.Contains(line, "demo_data=false") || strings.Contains(line, " addr=") {
		t.Errorf("start-up line %q, want it to match %s, say demo_data=false (read from the file) and no second addr", line, want)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-version"}, e2etest.Env{}.Environ(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0; stderr %q", code, stderr.String())
	}
	if out := stdout.String(); !strings.HasPrefix(out, "wsdest ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
		t.Errorf("-version printed %q", out)
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T00:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	want := "wsdest v1.2.3 commit 0123456789ab+dirty 2026-12-01T00:00:00Z go1.26.0 " + runtime.GOOS + "/" + runtime.GOARCH
	if got := versionLine(info); got != want {
		t.Errorf("versionLine = %q, want %q", got, want)
	}
}

// TestViewerSetting: a browser's GET of / gets the viewer by default and
// the 426 answer with VIEWER=false, and the start-up line says which.
func TestViewerSetting(t *testing.T) {
	t.Parallel()
	env := e2etest.Env{"DEV_BROKER_ADDR": "127.0.0.1:0", "HOST": "127.0.0.1", "PORT": "0", "DEMO_DATA": "false"}
	for _, tt := range []struct {
		viewer string
		status int
		line   string
	}{
		{"", http.StatusOK, " open=http://localhost:"},
		{"false", http.StatusUpgradeRequired, " viewer=false "},
	} {
		t.Run("VIEWER="+tt.viewer, func(t *testing.T) {
			t.Parallel()
			p := startProgram(t, env.With(e2etest.Env{"VIEWER": tt.viewer}))
			req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+p.addr+"/sensor-1", nil)
			req.Header.Set("Accept", "text/html,*/*;q=0.8")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("browser GET /sensor-1: %d, want %d", resp.StatusCode, tt.status)
			}
			if l := p.log.Lines("wsdest started"); len(l) != 1 || !strings.Contains(l[0], tt.line) {
				t.Errorf("start-up line %q, want %q in it", l, tt.line)
			}
		})
	}
}
