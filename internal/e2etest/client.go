package e2etest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// Frame is one WebSocket frame received from the server.
type Frame struct {
	Op      ws.OpCode
	Fin     bool
	Payload []byte
}

// CloseStatus returns the status code and reason of a close frame; the
// code is 1005 when the frame carries none.
func (f Frame) CloseStatus() (uint16, string) {
	if len(f.Payload) < 2 {
		return 1005, ""
	}
	return binary.BigEndian.Uint16(f.Payload), string(f.Payload[2:])
}

func (f Frame) String() string {
	switch f.Op {
	case ws.OpClose:
		code, reason := f.CloseStatus()
		return fmt.Sprintf("close %d %q", code, reason)
	case ws.OpText:
		const max = 200
		if len(f.Payload) > max {
			return fmt.Sprintf("text %q... (%d bytes)", f.Payload[:max], len(f.Payload))
		}
		return fmt.Sprintf("text %q", f.Payload)
	}
	return fmt.Sprintf("opcode %d fin=%v payload %d bytes", f.Op, f.Fin, len(f.Payload))
}

// DialError is returned by Dial when the server answers the handshake with
// a status other than 101.
type DialError struct {
	Status int
	Body   string
}

func (e *DialError) Error() string {
	return fmt.Sprintf("websocket handshake: status %d: %s", e.Status, e.Body)
}

// DialOption configures Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	header     http.Header
	noSync     bool
	readBuffer int
	localIP    net.IP      // source address; nil = the system's choice
	tlsConfig  *tls.Config // non-nil: TLS over the TCP connection (wss://)
	wrap       func(net.Conn) net.Conn
}

// WithHeader adds handshake request headers.
func WithHeader(h http.Header) DialOption {
	return func(c *dialConfig) {
		for k, vs := range h {
			for _, v := range vs {
				c.header.Add(k, v)
			}
		}
	}
}

// WithBearer sends "Authorization: Bearer token".
func WithBearer(token string) DialOption {
	return WithHeader(http.Header{"Authorization": {"Bearer " + token}})
}

// WithBasic sends HTTP Basic credentials.
func WithBasic(user, pass string) DialOption {
	return func(c *dialConfig) {
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, pass)
		c.header.Set("Authorization", r.Header.Get("Authorization"))
	}
}

// NoSync makes Dial return right after the handshake. By default Dial
// pings the server and waits for the pong, which the server can only send
// once the client is subscribed: without that, a record produced right
// after Dial could be published before the subscription exists.
func NoSync() DialOption { return func(c *dialConfig) { c.noSync = true } }

// WithReadBuffer sets the client socket's receive buffer (SO_RCVBUF) to n
// bytes before the handshake. A small buffer makes a client that stops
// reading hold back the server quickly.
func WithReadBuffer(n int) DialOption { return func(c *dialConfig) { c.readBuffer = n } }

// Client is a WebSocket client over TCP. Reads must come from one goroutine
// at a time; writes are safe from any goroutine. Pings from the server are
// answered while reading.
type Client struct {
	conn net.Conn
	r    *bufio.Reader

	wmu sync.Mutex // serialises frame writes

	pending []Frame // data frames read while syncing, returned first
	syncs   int     // pings sent by sync, for unique payloads
}

// Dial connects to url (ws://host/path?query) and completes the handshake;
// unless NoSync is given, it then waits until the server has subscribed
// the client (see NoSync). A non-101 answer is a *DialError.
func Dial(ctx context.Context, url string, opts ...DialOption) (*Client, error) {
	cfg := dialConfig{header: http.Header{}}
	for _, o := range opts {
		o(&cfg)
	}
	var statusErr *DialError
	d := ws.Dialer{
		Header: ws.HandshakeHeaderHTTP(cfg.header),
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			if cfg.localIP != nil {
				nd.LocalAddr = &net.TCPAddr{IP: cfg.localIP}
			}
			conn, err := nd.DialContext(ctx, network, addr)
			if err == nil && cfg.wrap != nil {
				conn = cfg.wrap(conn)
			}
			if err != nil || cfg.readBuffer <= 0 {
				return conn, err
			}
			if err := conn.(*net.TCPConn).SetReadBuffer(cfg.readBuffer); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		},
		OnStatusError: func(status int, _ []byte, resp io.Reader) {
			statusErr = &DialError{Status: status}
			r, err := http.ReadResponse(bufio.NewReader(resp), nil)
			if err != nil {
				return
			}
			defer r.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			statusErr.Body = string(body)
		},
	}
	d.TLSConfig = cfg.tlsConfig
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		if statusErr != nil {
			return nil, statusErr
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if br == nil {
		br = bufio.NewReader(conn)
	}
	c := &Client{conn: conn, r: br}
	if !cfg.noSync {
		if err := c.sync(ctx, true); err != nil {
			conn.Close()
			return nil, fmt.Errorf("dial %s: sync: %w", url, err)
		}
	}
	return c, nil
}

// Connect is Dial for the test's goroutine: it fails the test on error
// and closes the client when the test ends.
func Connect(t testing.TB, url string, opts ...DialOption) *Client {
	t.Helper()
	ctx, cancel := Context(t)
	defer cancel()
	c, err := Dial(ctx, url, opts...)
	if err != nil {
		t.Fatalf("e2etest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Conn returns the underlying connection.
func (c *Client) Conn() net.Conn { return c.conn }

// LocalAddr returns the client's address, as the server sees it.
func (c *Client) LocalAddr() string { return c.conn.LocalAddr().String() }

// Close closes the connection without a close handshake.
func (c *Client) Close() error { return c.conn.Close() }

// readDeadline makes reads give up when ctx ends: at its deadline, or at
// once when it is cancelled, until the returned function is called.
func (c *Client) readDeadline(ctx context.Context) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetReadDeadline(dl)
	} else {
		_ = c.conn.SetReadDeadline(time.Time{})
	}
	return context.AfterFunc(ctx, func() { _ = c.conn.SetReadDeadline(time.Now()) })
}

// ReadFrame returns the next frame of any kind, answering pings on the
// way (and returning them too). It gives up when ctx ends.
func (c *Client) ReadFrame(ctx context.Context) (Frame, error) {
	defer c.readDeadline(ctx)()

	h, err := ws.ReadHeader(c.r)
	if err != nil {
		return Frame{}, err
	}
	if h.Masked {
		return Frame{}, errors.New("server frame is masked")
	}
	if h.Length > MaxRecordBytes*2 {
		return Frame{}, fmt.Errorf("frame of %d bytes is beyond any test's records", h.Length)
	}
	f := Frame{Op: h.OpCode, Fin: h.Fin, Payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(c.r, f.Payload); err != nil {
		return Frame{}, err
	}
	if f.Op == ws.OpPing {
		if err := c.WriteFrame(ws.OpPong, f.Payload); err != nil {
			return Frame{}, err
		}
	}
	return f, nil
}

// Discard reads the next n data messages and drops them, answering pings
// on the way: a client for benchmarks, which costs no memory per frame. It
// sets one read deadline (ctx's) for all of them, reads each header in
// place in the client's buffer and skips payloads without copying them
// (frames held back by a sync count first). It returns how many messages
// it read; a close frame, a masked frame, a control frame over 125 bytes
// or a frame over MaxRecordBytes*2 ends it with an error. It checks
// nothing more (not opcodes, not reserved bits):
// tests that look at what they receive use NextText.
func (c *Client) Discard(ctx context.Context, n int) (int, error) {
	done := 0
	for ; done < n && len(c.pending) > 0; done++ {
		f := c.pending[0]
		c.pending = c.pending[1:]
		if f.Op == ws.OpClose {
			return done, fmt.Errorf("got %v", f)
		}
	}
	if done == n {
		return done, nil
	}
	defer c.readDeadline(ctx)()
	var ctl [125]byte // a control frame's payload
	for done < n {
		fin, op, length, err := c.peekHeader()
		if err != nil {
			return done, err
		}
		switch {
		case op == ws.OpPing || op == ws.OpClose:
			if length > int64(len(ctl)) {
				return done, fmt.Errorf("control frame of %d bytes", length)
			}
			p := ctl[:length]
			if _, err := io.ReadFull(c.r, p); err != nil {
				return done, err
			}
			if op == ws.OpClose {
				return done, fmt.Errorf("got %v", Frame{Op: op, Fin: fin, Payload: p})
			}
			if err := c.WriteFrame(ws.OpPong, p); err != nil {
				return done, err
			}
		default:
			if length > MaxRecordBytes*2 {
				return done, fmt.Errorf("frame of %d bytes is beyond any test's records", length)
			}
			if _, err := c.r.Discard(int(length)); err != nil {
				return done, err
			}
			if fin && op != ws.OpPong {
				done++
			}
		}
	}
	return done, nil
}

// peekHeader reads a frame header without allocating: it is looked at in
// the client's read buffer, then skipped.
func (c *Client) peekHeader() (fin bool, op ws.OpCode, length int64, err error) {
	b, err := c.r.Peek(2)
	if err != nil {
		return false, 0, 0, err
	}
	fin, op = b[0]&0x80 != 0, ws.OpCode(b[0]&0x0f)
	if b[1]&0x80 != 0 {
		return false, 0, 0, errors.New("server frame is masked")
	}
	n := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		n = 4
	case 127:
		n = 10
	default:
		length = int64(l)
	}
	if n > 2 {
		if b, err = c.r.Peek(n); err != nil {
			return false, 0, 0, err
		}
		if n == 4 {
			length = int64(binary.BigEndian.Uint16(b[2:4]))
		} else {
			length = int64(binary.BigEndian.Uint64(b[2:10]))
		}
		if length < 0 {
			return false, 0, 0, errors.New("frame length has its top bit set")
		}
	}
	_, err = c.r.Discard(n)
	return fin, op, length, err
}

// NextFrame returns the next data or close frame: frames held back by a
// sync first, then frames read from the connection. Pings and pongs are
// skipped.
func (c *Client) NextFrame(ctx context.Context) (Frame, error) {
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f, nil
	}
	for {
		f, err := c.ReadFrame(ctx)
		if err != nil {
			return f, err
		}
		if f.Op != ws.OpPing && f.Op != ws.OpPong {
			return f, nil
		}
	}
}

// NextText returns the payload of the next data frame, which must be a
// final text frame.
func (c *Client) NextText(ctx context.Context) ([]byte, error) {
	f, err := c.NextFrame(ctx)
	if err != nil {
		return nil, err
	}
	if f.Op != ws.OpText || !f.Fin {
		return nil, fmt.Errorf("got %v, want a text frame", f)
	}
	return f.Payload, nil
}

// Next returns the payload of the next text frame, failing the test if
// none comes within Wait or something else comes.
func (c *Client) Next(t testing.TB) []byte {
	t.Helper()
	ctx, cancel := Context(t)
	defer cancel()
	p, err := c.NextText(ctx)
	if err != nil {
		t.Fatalf("e2etest: client %s: %v", c.LocalAddr(), err)
	}
	return p
}

// NextN returns the payloads of the next n text frames.
func (c *Client) NextN(t testing.TB, n int) [][]byte {
	t.Helper()
	ctx, cancel := Context(t)
	defer cancel()
	out := make([][]byte, 0, n)
	for len(out) < n {
		p, err := c.NextText(ctx)
		if err != nil {
			t.Fatalf("e2etest: client %s: after %d of %d frames: %v", c.LocalAddr(), len(out), n, err)
		}
		out = append(out, p)
	}
	return out
}

// ExpectQuiet pings the server and fails the test if any data or close
// frame arrives before the pong (or was held back by an earlier sync).
// After the last record a client should get has arrived, it shows the
// client gets nothing more, as far as the server has queued.
func (c *Client) ExpectQuiet(t testing.TB) {
	t.Helper()
	ctx, cancel := Context(t)
	defer cancel()
	if len(c.pending) > 0 {
		t.Fatalf("e2etest: client %s: unexpected %v", c.LocalAddr(), c.pending[0])
	}
	if err := c.sync(ctx, false); err != nil {
		t.Fatalf("e2etest: client %s: %v", c.LocalAddr(), err)
	}
}

func (c *Client) sync(ctx context.Context, keep bool) error {
	c.syncs++
	payload := []byte("e2etest-sync-" + strconv.Itoa(c.syncs))
	if err := c.WriteFrame(ws.OpPing, payload); err != nil {
		return err
	}
	for {
		f, err := c.ReadFrame(ctx)
		if err != nil {
			return err
		}
		switch {
		case f.Op == ws.OpPong && bytes.Equal(f.Payload, payload):
			return nil
		case f.Op == ws.OpPing || f.Op == ws.OpPong:
		case f.Op == ws.OpClose || !keep:
			return fmt.Errorf("got %v while waiting for the pong", f)
		default:
			c.pending = append(c.pending, f)
		}
	}
}

// ReadUntilClose reads until the server's close frame and returns its
// status and the number of data frames before it. It answers the close
// frame and closes the connection, as a client should. A connection
// that ends without a close frame gives an error.
func (c *Client) ReadUntilClose(ctx context.Context) (code uint16, reason string, data int, err error) {
	defer c.conn.Close()
	for {
		f, err := c.NextFrame(ctx)
		if err != nil {
			return 0, "", data, err
		}
		if f.Op == ws.OpClose {
			code, reason = f.CloseStatus()
			_ = c.WriteFrame(ws.OpClose, f.Payload[:min(2, len(f.Payload))])
			return code, reason, data, nil
		}
		data++
	}
}

// ExpectClose fails the test unless the next frame (after pings) is a
// close frame with code and reason; no data frame may come first.
func (c *Client) ExpectClose(t testing.TB, code uint16, reason string) {
	t.Helper()
	if data := c.expectClose(t, code, reason); data > 0 {
		t.Errorf("e2etest: client %s: %d data frames before the close", c.LocalAddr(), data)
	}
}

// ExpectCloseAfterData is ExpectClose for a client that may receive data
// first, such as records published while it was connecting. It returns
// the number of data frames before the close.
func (c *Client) ExpectCloseAfterData(t testing.TB, code uint16, reason string) int {
	t.Helper()
	return c.expectClose(t, code, reason)
}

func (c *Client) expectClose(t testing.TB, code uint16, reason string) int {
	t.Helper()
	ctx, cancel := Context(t)
	defer cancel()
	gotCode, gotReason, data, err := c.ReadUntilClose(ctx)
	if err != nil {
		t.Fatalf("e2etest: client %s: want close %d %q: %v (after %d data frames)", c.LocalAddr(), code, reason, err, data)
	}
	if gotCode != code || gotReason != reason {
		t.Errorf("e2etest: client %s: close %d %q, want %d %q", c.LocalAddr(), gotCode, gotReason, code, reason)
	}
	return data
}

// WriteFrame sends a final, masked frame.
func (c *Client) WriteFrame(op ws.OpCode, payload []byte) error {
	return c.WriteRaw(MaskedFrame(true, op, payload))
}

// WriteRaw sends bytes as they are.
func (c *Client) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(Wait))
	_, err := c.conn.Write(b)
	return err
}

// MaskedFrame encodes a client frame with a fixed mask; payload is not
// modified.
func MaskedFrame(fin bool, op ws.OpCode, payload []byte) []byte {
	p := append([]byte(nil), payload...)
	f := ws.NewFrame(op, fin, p)
	f = ws.MaskFrameInPlaceWith(f, [4]byte{0x12, 0x34, 0x56, 0x78})
	b, err := ws.CompileFrame(f)
	if err != nil {
		panic(err) // only for a payload of more than 2^63 bytes
	}
	return b
}

// FromIP makes the client connect from the local address ip (such as
// "127.0.0.2", which Linux serves on loopback without configuration).
func FromIP(ip string) DialOption {
	return func(c *dialConfig) { c.localIP = net.ParseIP(ip) }
}

// WithTLS sets the TLS settings of a wss:// dial (roots, server name).
func WithTLS(cfg *tls.Config) DialOption {
	return func(c *dialConfig) { c.tlsConfig = cfg }
}

// WithConnWrapper wraps the TCP connection (beneath TLS for wss://), for
// instance to cut what the client sends into small pieces.
func WithConnWrapper(wrap func(net.Conn) net.Conn) DialOption {
	return func(c *dialConfig) { c.wrap = wrap }
}
