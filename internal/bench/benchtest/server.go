// Package benchtest holds a tiny WebSocket broadcast server for testing the
// load tool without the real service.
package benchtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// Queue is the number of frames a client that has not answered the ping
// may fall behind before the server closes it.
const Queue = 512

// Server is a stand-in for wsdest: it consumes a topic from the start and
// sends every record value, as a text frame, to every client whose "key"
// query parameter is empty or equal to the record key. Every client is
// pinged once on connect, and each has a queue of Queue frames and a small
// socket send buffer.
//
// Its slow-client policy tells readers from stalled clients by what they
// do, not by how fast they are, so that a test's outcome does not depend on
// the machine's load: a client that has answered the ping is a reader, and
// when its queue is full the broadcast waits for it (the records wait in
// Kafka); a client that has not answered is closed when its queue
// overflows, as wsdest closes slow clients. With Start's readers above 0
// no record is broadcast before that many clients have answered, so that
// no reader can be taken for a stalled client either. Its methods are safe
// for concurrent use.
type Server struct {
	ln      net.Listener
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pongs   atomic.Int64
	slow    atomic.Int64
	readers int64
	ready   chan struct{} // closed when readers clients have answered the ping

	mu    sync.Mutex
	conns map[*conn]struct{}

	// Owned by the consumer goroutine.
	targets []*conn
}

type conn struct {
	c      net.Conn
	key    string
	q      chan []byte   // never closed: the broadcast may still send after a drop
	gone   chan struct{} // closed by dropLocked
	reader atomic.Bool   // answered the ping; set by the connection's read goroutine
}

// Start listens on a free loopback port and consumes topic from brokers.
// When readers is above 0 it broadcasts nothing until that many clients
// have answered the ping (see Server).
func Start(brokers, topic string, readers int) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("benchtest: listen: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("benchtest: consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, cancel: cancel, readers: int64(readers), ready: make(chan struct{}), conns: map[*conn]struct{}{}}
	if readers <= 0 {
		close(s.ready)
	}
	s.wg.Go(s.accept)
	s.wg.Go(func() {
		defer cl.Close()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return
		}
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { s.broadcast(string(r.Key), wsframe.Text(r.Value)) })
		}
	})
	return s, nil
}

// URL returns the server's WebSocket URL.
func (s *Server) URL() string { return "ws://" + s.ln.Addr().String() + "/ws" }

// Pongs returns the number of pongs clients sent.
func (s *Server) Pongs() int64 { return s.pongs.Load() }

// SlowClosed returns the number of clients closed for falling behind.
func (s *Server) SlowClosed() int64 { return s.slow.Load() }

func (s *Server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serve(c) })
	}
}

func (s *Server) serve(nc net.Conn) {
	// A small send buffer turns off its autotuning (up to megabytes), so
	// a client that does not read overflows its queue soon.
	if err := nc.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		nc.Close()
		return
	}
	c := &conn{c: nc, q: make(chan []byte, Queue), gone: make(chan struct{})}
	c.q <- wsframe.Control(wsframe.OpPing, []byte("hi"))
	u := ws.Upgrader{
		OnRequest: func(uri []byte) error {
			if pu, err := url.ParseRequestURI(string(uri)); err == nil {
				c.key = pu.Query().Get("key")
			}
			return nil
		},
		// Register before the response goes out: once a client has seen
		// it, it must get every record produced afterwards. Broadcasts
		// only queue, so none can overtake the response.
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			return nil, nil
		},
	}
	if _, err := u.Upgrade(nc); err != nil {
		s.drop(c)
		nc.Close()
		return
	}
	s.wg.Go(func() {
		for {
			h, err := ws.ReadHeader(nc)
			if err != nil {
				return
			}
			if h.OpCode == ws.OpPong {
				c.reader.Store(true)
				if s.pongs.Add(1) == s.readers {
					close(s.ready)
				}
			}
			if _, err := io.CopyN(io.Discard, nc, h.Length); err != nil {
				return
			}
		}
	})
	defer nc.Close()
	for {
		select {
		case <-c.gone:
			return
		case f := <-c.q:
			if _, err := nc.Write(f); err != nil {
				s.drop(c)
				return
			}
		}
	}
}

// broadcast queues frame for every client that wants key. It runs on the
// consumer goroutine only, and sends outside the lock, since it may wait
// for a reader.
func (s *Server) broadcast(key string, frame []byte) {
	s.mu.Lock()
	s.targets = s.targets[:0]
	for c := range s.conns {
		if c.key == "" || c.key == key {
			s.targets = append(s.targets, c)
		}
	}
	s.mu.Unlock()
	for _, c := range s.targets {
		if c.reader.Load() {
			select {
			case c.q <- frame:
			case <-c.gone:
			}
			continue
		}
		select {
		case c.q <- frame:
		default:
			s.mu.Lock()
			if s.dropLocked(c) {
				s.slow.Add(1)
			}
			s.mu.Unlock()
		}
	}
	clear(s.targets)
}

func (s *Server) drop(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(c)
}

// dropLocked closes c and reports whether it was still connected.
func (s *Server) dropLocked(c *conn) bool {
	if _, ok := s.conns[c]; !ok {
		return false
	}
	delete(s.conns, c)
	close(c.gone)
	c.c.Close()
	return true
}

// Close stops the server and waits for its goroutines.
func (s *Server) Close() {
	s.cancel()
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		s.dropLocked(c)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
