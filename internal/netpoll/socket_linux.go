//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Socket is a TCP connection the poller has taken over from net (Adopt):
// a bare non-blocking descriptor, read by the epoll loop and written by
// its owner. It exists to make an idle client cheap: a *net.TCPConn keeps,
// for the whole life of the connection, its netFD, two addresses with the
// socket addresses they point into, and the runtime's poll descriptor,
// which the runtime pads to 512 bytes outside the heap; a Socket is 48
// bytes.
//
// Writes go straight to the socket. Write blocks (until the socket takes
// everything, SetWriteDeadline passes, or the Socket is closed) by waiting
// for the loop to see the socket writable; the writer pool's non-blocking
// writes go through RawSocket. Nothing reads but the poller: Read fails
// with ErrPolled and read deadlines have no effect. LocalAddr and
// RemoteAddr ask the kernel each time, and are nil once the Socket is
// closed.
//
// Its methods are safe for concurrent use. Close may be called while a
// read or write is in progress: the descriptor is released when the last
// of them ends, so it is never reused under one.
type Socket struct {
	p  *Poller
	h  Handler
	id uint64
	fd int32 // set by Adopt, read-only afterwards
	// refs counts the system calls in progress on fd, plus closedBit once
	// Close has run; whoever brings it to closedBit closes fd.
	refs atomic.Int32
	wdl  atomic.Int64 // write deadline, unix ns; 0 = none
}

// closedBit in Socket.refs marks a Socket closed.
const closedBit = 1 << 30

// ErrPolled is what Socket.Read returns: the poller reads a Socket, and
// hands what it reads to the Handler.
var ErrPolled = errors.New("netpoll: the socket is read by the poller")

var (
	_ net.Conn        = (*Socket)(nil)
	_ syscall.RawConn = (*rawSocket)(nil)
)

// Adopt hands conn to the poller for good, and returns the connection to
// use in its place. A *net.TCPConn becomes a Socket (its descriptor is
// duplicated and conn itself closed); any other connection is watched as
// Watch does, by a goroutine that ends with it, and returned as it is.
// Either way h hears what the peer sends, possibly before Adopt returns,
// and no Forget is needed: closing the returned connection is enough.
func (p *Poller) Adopt(conn net.Conn, h Handler) (net.Conn, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		if _, err := p.Watch(conn, h); err != nil {
			return nil, err
		}
		return conn, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("netpoll: adopt: %w", err)
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(f uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, f, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = e
			return
		}
		fd = int(r)
	}); err != nil {
		return nil, fmt.Errorf("netpoll: adopt: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("netpoll: adopt: dup: %w", dupErr)
	}
	s := &Socket{p: p, h: h, fd: int32(fd)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		syscall.Close(fd)
		return nil, ErrClosed
	}
	p.nextID++
	s.id = p.nextID
	ev := syscall.EpollEvent{Events: readEvents}
	setID(&ev, s.id)
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Unlock()
		syscall.Close(fd)
		return nil, fmt.Errorf("netpoll: register: %w", err)
	}
	p.sockets[s.id] = s
	p.mu.Unlock()
	// The duplicate keeps the connection open; this releases net's hold
	// on it (and the runtime's poll descriptor, which the next accepted
	// connection reuses).
	_ = tc.Close()
	return s, nil
}

// readEvents is what a watched connection, and a Socket while no write
// waits, is registered for.
const readEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP

// acquire takes a reference on fd for one system call; it reports false
// once the Socket is closed.
func (s *Socket) acquire() bool {
	for {
		v := s.refs.Load()
		if v&closedBit != 0 {
			return false
		}
		if s.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (s *Socket) release() {
	if s.refs.Add(-1) == closedBit {
		syscall.Close(int(s.fd))
	}
}

// Close closes the connection: the poller forgets it (its handler hears
// nothing more, but for a read already in progress) and a Write waiting
// for room fails. A second Close returns
// net.ErrClosed.
func (s *Socket) Close() error {
	for {
		v := s.refs.Load()
		if v&closedBit != 0 {
			return fmt.Errorf("netpoll: close: %w", net.ErrClosed)
		}
		if s.refs.CompareAndSwap(v, v|closedBit) {
			s.p.forgetSocket(s.id)
			if v == 0 {
				syscall.Close(int(s.fd))
			}
			return nil
		}
	}
}

// CloseWrite shuts down the sending side (the peer reads the end of the
// stream); the poller still reads.
func (s *Socket) CloseWrite() error {
	if !s.acquire() {
		return fmt.Errorf("netpoll: close write: %w", net.ErrClosed)
	}
	defer s.release()
	if err := syscall.Shutdown(int(s.fd), syscall.SHUT_WR); err != nil {
		return fmt.Errorf("netpoll: close write: %w", err)
	}
	return nil
}

// Read returns ErrPolled: the poller reads the socket.
func (s *Socket) Read([]byte) (int, error) { return 0, ErrPolled }

// Write writes b, waiting for room in the socket as long as the write
// deadline allows. It fails when it has to wait once the Socket is closed,
// the peer's end of stream was read, or the poller is closed.
func (s *Socket) Write(b []byte) (int, error) {
	n := 0
	for {
		if !s.acquire() {
			return n, fmt.Errorf("netpoll: write: %w", net.ErrClosed)
		}
		m, err := syscall.Write(int(s.fd), b[n:])
		s.release()
		if m > 0 {
			n += m
		}
		switch {
		case err == nil && n == len(b):
			return n, nil
		case err == nil, err == syscall.EINTR:
		case err == syscall.EAGAIN:
			if err := s.waitWritable(); err != nil {
				return n, fmt.Errorf("netpoll: write: %w", err)
			}
		default:
			return n, fmt.Errorf("netpoll: write: %w", err)
		}
	}
}

// waitWritable waits until the loop sees the socket writable, the write
// deadline passes (os.ErrDeadlineExceeded), or the Socket or the poller is
// closed.
func (s *Socket) waitWritable() error {
	var timeout <-chan time.Time
	if dl := s.wdl.Load(); dl != 0 {
		d := time.Until(time.Unix(0, dl))
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	wake, err := s.p.awaitWritable(s)
	if err != nil {
		return err
	}
	select {
	case <-wake:
		return nil
	case <-timeout:
		// The channel stays registered (other writers may wait on it)
		// until the socket is writable or closed.
		return os.ErrDeadlineExceeded
	}
}

// SetDeadline sets the write deadline: nothing reads a Socket but the
// poller.
func (s *Socket) SetDeadline(t time.Time) error { return s.SetWriteDeadline(t) }

// SetReadDeadline has no effect: nothing reads a Socket but the poller.
func (s *Socket) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline bounds how long a Write waits for room in the socket:
// a Write checks it each time it has to wait (one already waiting keeps
// the deadline it started waiting with). The zero time means none.
func (s *Socket) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	s.wdl.Store(ns)
	return nil
}

// LocalAddr returns the socket's address, or nil once it is closed.
func (s *Socket) LocalAddr() net.Addr { return s.addr(syscall.Getsockname) }

// RemoteAddr returns the peer's address, or nil once the Socket is closed.
func (s *Socket) RemoteAddr() net.Addr { return s.addr(syscall.Getpeername) }

func (s *Socket) addr(get func(int) (syscall.Sockaddr, error)) net.Addr {
	if !s.acquire() {
		return nil
	}
	sa, err := get(int(s.fd))
	s.release()
	if err != nil {
		return nil
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return nil
}

// RawSocket returns the socket for non-blocking writes (internal/hub's
// writer pool): its Write calls f with the descriptor, again each time the
// socket becomes writable while f returns false. Control calls f once;
// Read fails with ErrPolled.
func (s *Socket) RawSocket() syscall.RawConn { return (*rawSocket)(s) }

// rawSocket is a Socket seen as a syscall.RawConn.
type rawSocket Socket

func (r *rawSocket) Control(f func(fd uintptr)) error {
	s := (*Socket)(r)
	if !s.acquire() {
		return fmt.Errorf("netpoll: control: %w", net.ErrClosed)
	}
	defer s.release()
	f(uintptr(s.fd))
	return nil
}

func (r *rawSocket) Read(func(fd uintptr) bool) error { return ErrPolled }

func (r *rawSocket) Write(f func(fd uintptr) bool) error {
	s := (*Socket)(r)
	for {
		if !s.acquire() {
			return fmt.Errorf("netpoll: write: %w", net.ErrClosed)
		}
		done := f(uintptr(s.fd))
		s.release()
		if done {
			return nil
		}
		if err := s.waitWritable(); err != nil {
			return fmt.Errorf("netpoll: write: %w", err)
		}
	}
}

// awaitWritable arms EPOLLOUT for s and returns the channel the loop
// closes when s is writable, or that is closed when s or the poller is.
func (p *Poller) awaitWritable(s *Socket) (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if _, ok := p.sockets[s.id]; !ok {
		// Closed, or the peer's end of stream was read: no event will
		// come.
		return nil, net.ErrClosed
	}
	wake := p.waiters[s.id]
	if wake == nil {
		wake = make(chan struct{}) // only ever closed
		if !s.acquire() {
			return nil, net.ErrClosed
		}
		ev := syscall.EpollEvent{Events: readEvents | syscall.EPOLLOUT}
		setID(&ev, s.id)
		err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(s.fd), &ev)
		s.release()
		if err == syscall.ENOENT {
			// The loop took it out of the epoll set at the peer's end
			// of stream, a moment before it forgets it.
			return nil, net.ErrClosed
		}
		if err != nil {
			return nil, fmt.Errorf("epoll_ctl: %w", err)
		}
		p.waiters[s.id] = wake
	}
	return wake, nil
}

// writable is the loop's answer to EPOLLOUT: it disarms it and wakes the
// writer waiting for s, if any.
func (p *Poller) writable(s *Socket) {
	p.mu.Lock()
	wake := p.waiters[s.id]
	delete(p.waiters, s.id)
	if _, ok := p.sockets[s.id]; ok && s.acquire() {
		ev := syscall.EpollEvent{Events: readEvents}
		setID(&ev, s.id)
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(s.fd), &ev)
		s.release()
	}
	p.mu.Unlock()
	signal(wake)
}

// forgetSocket drops a Socket from the poller (its owner closed it, or
// its reading ended) and wakes a writer waiting for it.
func (p *Poller) forgetSocket(id uint64) {
	p.mu.Lock()
	delete(p.sockets, id)
	wake := p.waiters[id]
	delete(p.waiters, id)
	p.mu.Unlock()
	signal(wake)
}

// signal wakes every writer waiting on c, a channel just taken out of
// p.waiters (so that it is closed once).
func signal(c chan struct{}) {
	if c != nil {
		close(c)
	}
}

// serveSocket handles one epoll event of s: wakes its writer on EPOLLOUT
// and does one read on anything else. The end of the stream or a failed
// read takes s out of the epoll set before the handler hears of it.
func (p *Poller) serveSocket(s *Socket, events uint32, buf []byte) {
	if events&syscall.EPOLLOUT != 0 {
		p.writable(s)
		if events&^syscall.EPOLLOUT == 0 {
			return
		}
	}
	if !s.acquire() {
		return // closed by its owner: nothing more is said
	}
	n, err := syscall.Read(int(s.fd), buf)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		s.release()
		return
	}
	if n > 0 {
		s.release()
		s.h.OnData(buf[:n])
		return
	}
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(s.fd), nil)
	s.release()
	p.forgetSocket(s.id)
	s.h.OnEOF(err)
}
