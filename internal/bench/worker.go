package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync/atomic"
	"time"
)

// A run split over processes: the parent starts one worker per process,
// each running a Group over part of the client indexes. The parent talks to
// a worker over its stdin and stdout, one JSON message a line:
//
//	worker -> parent  {"type":"connected","result":{...}}  once, after Connect
//	worker -> parent  {"type":"progress","received":N}     every progressEvery
//	parent -> worker  stop                                 (or stdin closed)
//	worker -> parent  {"type":"result","result":{...}}     then it exits
//
// The worker's stderr is its log.

// WorkerFlag is the hidden command-line flag that turns the wsbench binary
// into a worker; its value is the worker's JSON arguments.
const WorkerFlag = "-worker"

const progressEvery = 100 * time.Millisecond

type workerArgs struct {
	Group GroupConfig `json:"group"`
	// Deadline is the run's hard bound; the worker stops by itself then.
	Deadline time.Time `json:"deadline"`
}

type workerMsg struct {
	Type     string       `json:"type"`
	Received int64        `json:"received,omitempty"`
	Result   *GroupResult `json:"result,omitempty"`
}

// ServeWorker runs one worker: arg is the JSON the parent passed after
// WorkerFlag. It returns when the parent says stop, closes stdin, or the
// run's deadline passes.
func ServeWorker(ctx context.Context, arg string, stdin io.Reader, stdout io.Writer) error {
	var wa workerArgs
	if err := json.Unmarshal([]byte(arg), &wa); err != nil {
		return fmt.Errorf("bench: worker arguments: %w", err)
	}
	ctx, cancel := context.WithDeadline(ctx, wa.Deadline)
	defer cancel()
	enc := json.NewEncoder(stdout)

	g := NewGroup(wa.Group)
	res := g.Connect(ctx)
	if err := enc.Encode(workerMsg{Type: "connected", Result: &res}); err != nil {
		g.Abort()
		return fmt.Errorf("bench: worker: report: %w", err)
	}

	// The reading goroutine ends with the process when stdin stays open
	// past the deadline; the process exits right after this function.
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if sc.Text() == "stop" {
				return
			}
		}
	}()
	t := time.NewTicker(progressEvery)
	defer t.Stop()
wait:
	for {
		select {
		case <-stop:
			break wait
		case <-ctx.Done():
			break wait
		case <-t.C:
			if err := enc.Encode(workerMsg{Type: "progress", Received: g.Received()}); err != nil {
				break wait
			}
		}
	}
	res = g.Stop()
	if err := enc.Encode(workerMsg{Type: "result", Result: &res}); err != nil {
		return fmt.Errorf("bench: worker: report: %w", err)
	}
	return nil
}

// clientSet is a Group in this process or in a worker.
type clientSet interface {
	connect(ctx context.Context) (GroupResult, error)
	received() int64
	stop(ctx context.Context) (GroupResult, error)
	// kill ends the set at once, on an error path.
	kill()
}

type localSet struct{ g *Group }

func (l localSet) connect(ctx context.Context) (GroupResult, error) { return l.g.Connect(ctx), nil }
func (l localSet) received() int64                                  { return l.g.Received() }
func (l localSet) stop(context.Context) (GroupResult, error)        { return l.g.Stop(), nil }
func (l localSet) kill()                                            { l.g.Abort() }

// remoteSet is the parent's side of a worker process.
type remoteSet struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser

	// Filled by the goroutine reading the worker's stdout.
	connected chan GroupResult // buffered 1
	result    chan GroupResult // buffered 1
	recv      atomic.Int64
	readErr   error         // set before readDone closes
	readDone  chan struct{} // closed when stdout ends
}

func startRemote(ctx context.Context, spawn func(context.Context, []string) *exec.Cmd, wa workerArgs, stderr io.Writer) (*remoteSet, error) {
	arg, err := json.Marshal(wa)
	if err != nil {
		return nil, fmt.Errorf("bench: worker arguments: %w", err)
	}
	cmd := spawn(ctx, []string{WorkerFlag, string(arg)})
	if cmd.Stderr == nil {
		cmd.Stderr = stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: worker stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: worker stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start worker: %w", err)
	}
	r := &remoteSet{
		cmd:       cmd,
		stdin:     stdin,
		connected: make(chan GroupResult, 1),
		result:    make(chan GroupResult, 1),
		readDone:  make(chan struct{}),
	}
	go r.read(stdout)
	return r, nil
}

func (r *remoteSet) read(stdout io.Reader) {
	defer close(r.readDone)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			r.readErr = fmt.Errorf("bench: worker message %.80q: %w", sc.Text(), err)
			return
		}
		switch {
		case m.Type == "progress":
			r.recv.Store(m.Received)
		case m.Type == "connected" && m.Result != nil:
			r.connected <- *m.Result
		case m.Type == "result" && m.Result != nil:
			r.recv.Store(m.Result.Received)
			r.result <- *m.Result
			return
		}
	}
	r.readErr = sc.Err()
	if r.readErr == nil {
		r.readErr = errors.New("bench: worker exited early (see its log above)")
	}
}

func (r *remoteSet) connect(ctx context.Context) (GroupResult, error) {
	select {
	case res := <-r.connected:
		return res, nil
	case <-r.readDone:
		return GroupResult{}, r.readErr
	case <-ctx.Done():
		return GroupResult{}, fmt.Errorf("bench: worker connect: %w", ctx.Err())
	}
}

func (r *remoteSet) received() int64 { return r.recv.Load() }

func (r *remoteSet) stop(ctx context.Context) (GroupResult, error) {
	_, _ = io.WriteString(r.stdin, "stop\n")
	r.stdin.Close()
	var (
		res GroupResult
		err error
	)
	select {
	case res = <-r.result:
	case <-r.readDone:
		select {
		case res = <-r.result:
		default:
			err = r.readErr
		}
	case <-ctx.Done():
		err = fmt.Errorf("bench: worker stop: %w", ctx.Err())
		r.cmd.Process.Kill()
	}
	<-r.readDone
	if werr := r.cmd.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("bench: worker: %w", werr)
	}
	return res, err
}

func (r *remoteSet) kill() {
	r.cmd.Process.Kill()
	r.stdin.Close()
	<-r.readDone
	r.cmd.Wait()
}
