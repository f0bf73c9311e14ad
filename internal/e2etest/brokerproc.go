package e2etest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// brokerProcessEnv marks the child process of StartBrokerProcess.
const brokerProcessEnv = "WSDEST_E2E_BROKER_PROCESS"

// ServeBrokerProcess is the body of the helper test that StartBrokerProcess
// runs in a child process: when the test binary was started for it, it
// serves a kfake broker with topic "t" (partitions as asked) until its
// stdin closes, then exits; otherwise it skips the test. Call it from a
// test named as the one given to StartBrokerProcess.
func ServeBrokerProcess(t *testing.T) {
	if os.Getenv(brokerProcessEnv) == "" {
		t.Skip("helper process for StartBrokerProcess")
	}
	var parts int32 = 1
	fmt.Sscan(os.Getenv(brokerProcessEnv), &parts)
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

// BrokerProcess is a kfake broker in a child process, which a test can
// freeze with SIGSTOP: its sockets stay open and nothing answers.
type BrokerProcess struct {
	// Addr is the broker's host:port.
	Addr string
	proc *os.Process
}

// StartBrokerProcess runs the test binary's helper test (which must call
// ServeBrokerProcess) as a broker with topic "t" of partitions partitions,
// stopped when the test ends.
func StartBrokerProcess(t testing.TB, helperTest string, partitions int32) *BrokerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helperTest+"$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", brokerProcessEnv, partitions))
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
		t.Fatalf("e2etest: broker process: %q %v", line, err)
	}
	return &BrokerProcess{Addr: addr, proc: cmd.Process}
}

// Freeze stops the broker process (SIGSTOP) and returns once the kernel
// reports it stopped: the signal is delivered asynchronously, and until then
// the broker may still answer.
func (b *BrokerProcess) Freeze(t testing.TB) {
	t.Helper()
	if err := b.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "broker process stopped", func() bool { return ProcessStopped(b.proc.Pid) })
}

// ProcessStopped reports whether the process pid is stopped by a signal,
// from /proc/pid/stat (Linux).
func ProcessStopped(pid int) bool {
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
func (b *BrokerProcess) Thaw(t testing.TB) {
	t.Helper()
	if err := b.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}
