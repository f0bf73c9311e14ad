// Package testbroker runs a kfake Kafka broker in a child process of the
// test binary, so that a test can freeze it with SIGSTOP (its sockets stay
// open and nothing answers) and thaw it again. It is for tests only, and
// imports nothing of wsdest, so that any package's tests can use it.
package testbroker

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// processEnv marks the child process of Start.
const processEnv = "WSDEST_TEST_BROKER_PROCESS"

// Serve is the body of the helper test that Start
// runs in a child process: when the test binary was started for it, it
// serves a kfake broker with topic "t" (partitions as asked) until its
// stdin closes, then exits; otherwise it skips the test. Call it from a
// test named as the one given to Start.
func Serve(t *testing.T) {
	if os.Getenv(processEnv) == "" {
		t.Skip("helper process for testbroker.Start")
	}
	var parts int32 = 1
	fmt.Sscan(os.Getenv(processEnv), &parts)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, "t"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("addr", c.ListenAddrs()[0])
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	c.Close()
	os.Exit(0)
}

// Process is a kfake broker in a child process, which a test can
// freeze with SIGSTOP: its sockets stay open and nothing answers.
type Process struct {
	// Addr is the broker's host:port.
	Addr string
	proc *os.Process
}

// Start runs the test binary's helper test (which must call Serve) as a broker with topic "t" of partitions partitions,
// stopped when the test ends.
func Start(t testing.TB, helperTest string, partitions int32) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helperTest+"$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", processEnv, partitions))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		t.Fatalf("testbroker: broker process: %q %v", line, err)
	}
	return &Process{Addr: addr, proc: cmd.Process}
}

// Freeze stops the broker process (SIGSTOP) and returns once the kernel
// reports it stopped: the signal is delivered asynchronously, and until then
// the broker may still answer.
func (b *Process) Freeze(t testing.TB) {
	t.Helper()
	if err := b.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !Stopped(b.proc.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("testbroker: the broker process did not stop within 10s of SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
}

// Stopped reports whether the process pid is stopped by a signal,
// from /proc/pid/stat (Linux).
func Stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold spaces or parentheses.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}

// Thaw resumes it (SIGCONT).
func (b *Process) Thaw(t testing.TB) {
	t.Helper()
	if err := b.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}
