//go:build !linux

package netpoll

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
)

// Poller reads registered connections, here with a goroutine each.
type Poller struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Watch is what Poller.Watch returns.
type Watch struct{}

// New returns a poller; logger is unused here.
func New(*slog.Logger) (*Poller, error) { return &Poller{}, nil }

// Watch starts reading conn and calling h.
func (p *Poller) Watch(conn net.Conn, h Handler) (Watch, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Watch{}, ErrClosed
	}
	watchGoroutine(conn, h, &p.wg)
	return Watch{}, nil
}

// Forget is a no-op: the reading goroutine ends with the connection.
func (Watch) Forget() {}

// Close waits for the readers to end; their connections must be closed
// first.
func (p *Poller) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Adopt watches conn as Watch does and returns it: there are no Sockets
// here.
func (p *Poller) Adopt(conn net.Conn, h Handler) (net.Conn, error) {
	if _, err := p.Watch(conn, h); err != nil {
		return nil, err
	}
	return conn, nil
}

// CanNotify reports whether Notify works on this system: not here.
const CanNotify = false

// Notify is not supported here: it returns errors.ErrUnsupported, and the
// caller reads the connection from a goroutine of its own (Watch).
func (p *Poller) Notify(*net.TCPConn, Notifier) (Watch, error) {
	return Watch{}, errors.ErrUnsupported
}

// Rearm returns errors.ErrUnsupported: see Notify.
func (Watch) Rearm() error { return errors.ErrUnsupported }

// ReadNow returns errors.ErrUnsupported: see Notify.
func ReadNow(syscall.RawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }
