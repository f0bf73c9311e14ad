//go:build linux

package netpoll_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/netpoll"
)

// notified is a Notifier that hands each announcement to the test.
type notified chan netpoll.Watch

func (n notified) Readable(w netpoll.Watch) { n <- w }

func (n notified) next(t *testing.T) netpoll.Watch {
	t.Helper()
	select {
	case w := <-n:
		return w
	case <-time.After(waitFor):
		t.Fatal("no Readable")
		return netpoll.Watch{}
	}
}

// quiet fails the test if n is told anything within a moment; it can
// only miss a wrong call, never report a false one.
func (n notified) quiet(t *testing.T, why string) {
	t.Helper()
	select {
	case <-n:
		t.Fatalf("Readable %s", why)
	case <-time.After(50 * time.Millisecond):
	}
}

// readAll reads with ReadNow until it would block or fails.
func readAll(t *testing.T, raw syscall.RawConn) (string, error) {
	t.Helper()
	var got []byte
	buf := make([]byte, 3)
	for {
		n, err := netpoll.ReadNow(raw, buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return string(got), err
		}
	}
}

// TestNotify: a Notify registration announces data once, and again only
// after Rearm; the poller reads nothing, ReadNow reads without waiting,
// and the end of the stream is announced and read as io.EOF.
func TestNotify(t *testing.T) {
	p := newPoller(t)
	client, server := tcpPair(t, listen(t))
	raw, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := make(notified, 4)
	w, err := p.Notify(server, n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, raw); !errors.Is(err, netpoll.ErrWouldBlock) {
		t.Fatalf("read of an empty socket: %v", err)
	}
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := n.next(t)
	if _, err := client.Write([]byte(" again")); err != nil {
		t.Fatal(err)
	}
	n.quiet(t, "again before Rearm")
	if data, err := readAll(t, raw); data != "hello again" || !errors.Is(err, netpoll.ErrWouldBlock) {
		t.Fatalf("read %q, %v", data, err)
	}
	if err := got.Rearm(); err != nil {
		t.Fatal(err)
	}
	n.quiet(t, "after Rearm with nothing to read")
	if _, err := client.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	if data, _ := readAll(t, raw); data != "more" {
		t.Fatalf("read %q", data)
	}
	client.Close()
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	n.next(t)
	if data, err := readAll(t, raw); data != "" || err != io.EOF {
		t.Fatalf("at the end of the stream: %q, %v", data, err)
	}
	w.Forget()
	if err := w.Rearm(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Rearm after Forget: %v", err)
	}
	server.Close()
	if _, err := netpoll.ReadNow(raw, make([]byte, 1)); err == nil {
		t.Error("ReadNow of a closed connection succeeded")
	}
}
