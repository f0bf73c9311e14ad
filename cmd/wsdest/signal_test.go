//go:build unix

package main

import (
	"bufio"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"

	"github.com/wsdest/wsdest/internal/e2etest"
)

// TestSIGTERM runs the program as a process of its own (this test binary,
// re-executed into main), with two clients connected, and sends it
// SIGTERM: each client gets 1001 "going away" and the process exits 0.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	b := e2etest.StartBroker(t, "t", 1)
	cmd := exec.Command(os.Args[0], noEnvFile(t)...)
	cmd.Env = []string{
		runMainEnv + "=1",
		"Quix__Broker__Address=" + b.Addr(),
		"input=t",
		"HOST=127.0.0.1",
		"PORT=0",
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := &e2etest.LogBuffer{}
	log.DumpOnFailure(t, "wsdest process")
	exited := make(chan struct{})
	var waitErr error // set before exited is closed
	go func() {
		defer close(exited)
		// Wait only after stderr is drained: Wait closes the pipe.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.Write(append(sc.Bytes(), '\n'))
		}
		waitErr = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails harmlessly once it has exited
		<-exited
	})

	re := regexp.MustCompile(`msg="wsdest started" .*?listen=(\S+)`)
	var addr string
	e2etest.Eventually(t, "the start-up line", func() bool {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	e2etest.Eventually(t, "/readyz 200", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	clients := []*e2etest.Client{
		e2etest.Connect(t, "ws://"+addr+"/ws"),
		e2etest.Connect(t, "ws://"+addr+"/ws/k"),
	}
	e2etest.NewProducer(t, b).Produce([]byte("k"), []byte(`{"n":1}`))
	for _, c := range clients {
		if got := c.Next(t); string(got) != `{"n":1}` {
			t.Fatalf("got %s", got)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.ExpectClose(t, 1001, "going away")
	}
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	select {
	case <-exited:
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			t.Errorf("exit status %d, want 0", ee.ExitCode())
		} else if waitErr != nil {
			t.Error(waitErr)
		}
	case <-ctx.Done():
		t.Fatalf("still running %v after SIGTERM", e2etest.Wait)
	}
	for _, want := range []string{`msg="shutting down" clients=2`, `msg="wsdest stopped"`} {
		if len(log.Lines(want)) != 1 {
			t.Errorf("log lacks %s", want)
		}
	}
}
