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

// Queue is the number of frames a client may fall behind before the server
// closes it.
const Queue = 512

// Server is a stand-in for wsdest: it consumes a topic from the start and
// sends every record value, as a text frame, to every client whose "key"
// query parameter is empty or equal to the record key. Each client has a
// queue of Queue frames and a small socket send buffer; a client whose
// queue overflows is closed, as wsdest closes slow clients. Every client is
// pinged once on connect. Its methods are safe for concurrent use.
type Server struct {
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pongs  atomic.Int64
	slow   atomic.Int64

	mu    sync.Mutex
	conns map[*conn]struct{}
}

type conn struct {
	c   net.Conn
	key string
	q   chan []byte // closed by dropLocked
}

// Start listens on a free loopback port and consumes topic from brokers.
func Start(brokers, topic string) (*Server, error) {
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
	s := &Server{ln: ln, cancel: cancel, conns: map[*conn]struct{}{}}
	s.wg.Go(s.accept)
	s.wg.Go(func() {
		defer cl.Close()
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
	c := &conn{c: nc, q: make(chan []byte, Queue)}
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
				s.pongs.Add(1)
			}
			if _, err := io.CopyN(io.Discard, nc, h.Length); err != nil {
				return
			}
		}
	})
	defer nc.Close()
	for f := range c.q {
		if _, err := nc.Write(f); err != nil {
			s.drop(c)
		}
	}
}

func (s *Server) broadcast(key string, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.key != "" && c.key != key {
			continue
		}
		select {
		case c.q <- frame:
		default:
			s.slow.Add(1)
			s.dropLocked(c)
		}
	}
}

func (s *Server) drop(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(c)
}

func (s *Server) dropLocked(c *conn) {
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	close(c.q)
	c.c.Close()
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
