//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
)

// readBuf is the size of the shared read buffer.
const readBuf = 64 << 10

// Poller reads registered connections. Its methods are safe for
// concurrent use.
type Poller struct {
	epfd    int
	wakeR   int // read end of the wake-up pipe, registered with id 0
	wakeW   int
	mu      sync.Mutex
	conns   map[uint64]*entry        // Watch registrations; guarded by mu
	sockets map[uint64]*Socket       // Adopt registrations; guarded by mu
	waiters map[uint64]chan struct{} // Sockets with a Write waiting for room; guarded by mu
	nextID  uint64                   // guarded by mu
	closed  bool                     // guarded by mu
	done    chan struct{}            // closed when the loop has exited
	wg      sync.WaitGroup           // fallback readers
	log     *slog.Logger
}

// entry is a Watch or Notify registration: the loop reads it and calls h,
// or, for Notify, calls n and reads nothing.
type entry struct {
	raw syscall.RawConn
	h   Handler
	n   Notifier
}

// Watch is what Poller.Watch and Poller.Notify return: a token to Forget
// the connection (and to Rearm a Notify registration).
type Watch struct {
	p  *Poller
	id uint64 // 0 for a goroutine reader
}

// New starts a poller with its reading goroutine. logger (nil: discard)
// hears of a failure of the loop itself.
func New(logger *slog.Logger) (*Poller, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("netpoll: pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		return nil, fmt.Errorf("netpoll: epoll_ctl: %w", err)
	}
	p := &Poller{
		epfd:    epfd,
		wakeR:   pipe[0],
		wakeW:   pipe[1],
		conns:   make(map[uint64]*entry),
		sockets: make(map[uint64]*Socket),
		waiters: make(map[uint64]chan struct{}),
		done:    make(chan struct{}),
		log:     logger,
	}
	go p.loop()
	return p, nil
}

// Watch starts reading conn and calling h. A *net.TCPConn is served by the
// shared epoll loop; any other connection by a goroutine of its own. Call Forget once conn is closed by its owner.
func (p *Poller) Watch(conn net.Conn, h Handler) (Watch, error) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		// wg.Add happens under p.mu, so that Close, which sets closed
		// under it before it waits, never races with it.
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			return Watch{}, ErrClosed
		}
		watchGoroutine(conn, h, &p.wg)
		return Watch{p: p}, nil
	}
	return p.register(tc, &entry{h: h}, readEvents)
}

// CanNotify reports whether Notify works on this system: on Linux it
// does.
const CanNotify = true

// Notify registers conn to have n told when conn can be read (data, the
// peer's end of stream, or an error), from the poller's goroutine; the
// poller reads nothing itself. It is one-shot: after a Readable call, n
// hears nothing more until Rearm. The owner reads conn without waiting
// (ReadNow) on a goroutine of its own, and calls Rearm once a read would
// block, so that a reader that blocks (crypto/tls writing an alert while
// it reads) holds up nobody but its own connection. Call Forget once conn
// is closed by its owner.
func (p *Poller) Notify(conn *net.TCPConn, n Notifier) (Watch, error) {
	return p.register(conn, &entry{n: n}, readEvents|syscall.EPOLLONESHOT)
}

// register adds tc to the epoll set with events, as e.
func (p *Poller) register(tc *net.TCPConn, e *entry, events uint32) (Watch, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return Watch{}, fmt.Errorf("netpoll: %w", err)
	}
	e.raw = raw
	// p.mu is held across the registration so that Close cannot release
	// the epoll descriptor (which may then be reused) in the middle of it.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Watch{}, ErrClosed
	}
	p.nextID++
	id := p.nextID
	var ctlErr error
	err = raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: events}
		setID(&ev, id)
		ctlErr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		return Watch{}, fmt.Errorf("netpoll: register: %w", err)
	}
	p.conns[id] = e
	return Watch{p: p, id: id}, nil
}

// Rearm asks for the next Readable of a Notify registration: call it once
// a read of the connection would block (ReadNow returned ErrWouldBlock),
// after the last of what was read is handled. Whatever arrived meanwhile
// is announced at once. It fails with net.ErrClosed once the connection is
// closed or forgotten, and with ErrClosed once the poller is.
func (w Watch) Rearm() error {
	p := w.p
	if p == nil || w.id == 0 {
		return fmt.Errorf("netpoll: rearm: %w", net.ErrClosed)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	e := p.conns[w.id]
	if e == nil || e.n == nil {
		return fmt.Errorf("netpoll: rearm: %w", net.ErrClosed)
	}
	var ctlErr error
	err := e.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: readEvents | syscall.EPOLLONESHOT}
		setID(&ev, w.id)
		ctlErr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		return fmt.Errorf("netpoll: rearm: %w", err)
	}
	return nil
}

// ReadNow reads what the socket of raw holds now, without waiting: it
// returns ErrWouldBlock when there is nothing, and io.EOF at the peer's
// end of stream. It is for connections registered with Notify.
func ReadNow(raw syscall.RawConn, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), b)
			if rerr != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, fmt.Errorf("netpoll: read: %w", err)
	case rerr == syscall.EAGAIN:
		return 0, ErrWouldBlock
	case rerr != nil:
		return 0, fmt.Errorf("netpoll: read: %w", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Forget stops serving a connection its owner has closed. Closing the
// socket already took it out of the epoll set; this drops the entry.
func (w Watch) Forget() {
	if w.p == nil || w.id == 0 {
		return
	}
	w.p.mu.Lock()
	delete(w.p.conns, w.id)
	w.p.mu.Unlock()
}

// setID and getID keep the 64-bit id in the event's data, in place of the
// file descriptor: ids are never reused, descriptors are.
func setID(ev *syscall.EpollEvent, id uint64) {
	ev.Fd = int32(id)
	ev.Pad = int32(id >> 32)
}

func getID(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, readBuf)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if !closed {
				// Cannot happen with a valid descriptor; say so loudly,
				// since clients would go unread until pings drop them.
				p.log.Error("netpoll: epoll_wait failed; client connections are no longer read", "err", err)
			}
			return
		}
		for i := range n {
			id := getID(&events[i])
			if id == 0 {
				return // woken by Close
			}
			p.mu.Lock()
			e, s := p.conns[id], p.sockets[id]
			p.mu.Unlock()
			switch {
			case s != nil:
				p.serveSocket(s, events[i].Events, buf)
			case e != nil && e.n != nil:
				e.n.Readable(Watch{p: p, id: id})
			case e != nil:
				p.serve(id, e, buf)
			}
		}
	}
}

// serve does one read for a readable connection. Level-triggered epoll
// reports it again if more is waiting.
func (p *Poller) serve(id uint64, e *entry, buf []byte) {
	var n int
	var rerr error
	err := e.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		return true
	})
	if err == nil {
		err = rerr
	}
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		return
	}
	if n > 0 {
		e.h.OnData(buf[:n])
		return
	}
	// End of stream or a failed read: stop watching before telling the
	// handler, while the descriptor is still certainly this connection's.
	_ = e.raw.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	p.mu.Lock()
	delete(p.conns, id)
	p.mu.Unlock()
	e.h.OnEOF(err)
}

// Close stops the loop and releases the epoll instance. Connections are not
// closed; their owners close them (a Socket can still be written, but a
// Write that has to wait for room fails with ErrClosed). It waits for
// fallback readers to end, so their connections must be closed first.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for id, wake := range p.waiters {
		delete(p.waiters, id)
		signal(wake)
	}
	p.mu.Unlock()
	_, _ = syscall.Write(p.wakeW, []byte{1})
	<-p.done
	syscall.Close(p.epfd)
	syscall.Close(p.wakeR)
	syscall.Close(p.wakeW)
	p.wg.Wait()
	return nil
}
