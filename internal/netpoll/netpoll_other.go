//go:build !linux

package netpoll

import (
	"log/slog"
	"net"
	"sync"
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
