package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/wsdest/wsdest/internal/wsframe"
)

func TestParseFrame(t *testing.T) {
	long := bytes.Repeat([]byte("a"), 300)
	huge := bytes.Repeat([]byte("b"), 70000)
	tests := []struct {
		name    string
		in      []byte
		want    Frame
		size    int
		wantErr error
	}{
		{"empty", nil, Frame{}, 2, nil},
		{"one byte", []byte{0x81}, Frame{}, 2, nil},
		{"text 7-bit", wsframe.Text([]byte("hello")), Frame{Fin: true, Op: wsframe.OpText, Payload: []byte("hello")}, 7, nil},
		{"empty text", wsframe.Text(nil), Frame{Fin: true, Op: wsframe.OpText, Payload: []byte{}}, 2, nil},
		{"text 16-bit", wsframe.Text(long), Frame{Fin: true, Op: wsframe.OpText, Payload: long}, 4 + 300, nil},
		{"16-bit header cut", wsframe.Text(long)[:3], Frame{}, 4, nil},
		{"16-bit payload cut", wsframe.Text(long)[:100], Frame{}, 304, nil},
		{"text 64-bit", wsframe.Text(huge), Frame{Fin: true, Op: wsframe.OpText, Payload: huge}, 10 + 70000, nil},
		{"64-bit header cut", wsframe.Text(huge)[:9], Frame{}, 10, nil},
		{"ping", wsframe.Control(wsframe.OpPing, []byte("p")), Frame{Fin: true, Op: wsframe.OpPing, Payload: []byte("p")}, 3, nil},
		{"close", wsframe.Close(1001, "bye"), Frame{Fin: true, Op: wsframe.OpClose, Payload: []byte("\x03\xe9bye")}, 7, nil},
		{"fragment", []byte{0x01, 0x02, 'a', 'b'}, Frame{Fin: false, Op: wsframe.OpText, Payload: []byte("ab")}, 4, nil},
		{"continuation", []byte{0x80, 0x01, 'c'}, Frame{Fin: true, Op: wsframe.OpContinuation, Payload: []byte("c")}, 3, nil},
		{"trailing bytes", append(wsframe.Text([]byte("x")), 0x81), Frame{Fin: true, Op: wsframe.OpText, Payload: []byte("x")}, 3, nil},
		{"masked", []byte{0x81, 0x81, 1, 2, 3, 4, 'a'}, Frame{}, 0, ErrMaskedFrame},
		{"reserved bits", []byte{0xA1, 0x00}, Frame{}, 0, ErrReservedBits},
		{"compressed control", []byte{0xC9, 0x00}, Frame{}, 0, ErrReservedBits},
		{"compressed text", []byte{0xC1, 0x01, 'z'}, Frame{Fin: true, Op: wsframe.OpText, Compressed: true, Payload: []byte("z")}, 3, nil},
		{"fragmented ping", []byte{0x09, 0x00}, Frame{}, 0, ErrBadControl},
		{"long ping", []byte{0x89, 126, 0, 200}, Frame{}, 0, ErrBadControl},
		{"bad opcode", []byte{0x83, 0x00}, Frame{}, 0, ErrBadOpcode},
		{"too large", binary.BigEndian.AppendUint64([]byte{0x82, 127}, MaxFrame+1), Frame{}, 0, ErrFrameTooLarge},
		{"length top bit", binary.BigEndian.AppendUint64([]byte{0x82, 127}, 1<<63), Frame{}, 0, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, size, err := ParseFrame(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if size != tt.size {
				t.Errorf("size = %d, want %d", size, tt.size)
			}
			if f.Fin != tt.want.Fin || f.Op != tt.want.Op || !bytes.Equal(f.Payload, tt.want.Payload) || (f.Payload == nil) != (tt.want.Payload == nil) {
				t.Errorf("frame = %+v, want %+v", f, tt.want)
			}
		})
	}
}

// recorder collects what a wsframe.Parser (the server's parser of client
// frames) sees, to check our masked frames from the other side.
type recorder struct {
	pings  [][]byte
	pongs  int
	closes []uint16
}

func (r *recorder) Ping(p []byte)                    { r.pings = append(r.pings, append([]byte(nil), p...)) }
func (r *recorder) Pong()                            { r.pongs++ }
func (r *recorder) CloseFrame(code uint16, _ string) { r.closes = append(r.closes, code) }

func TestAppendClientFrame(t *testing.T) {
	var b []byte
	b = AppendClientFrame(b, wsframe.OpPing, []byte("hello"), [4]byte{1, 2, 3, 4})
	b = AppendClientFrame(b, wsframe.OpPong, nil, [4]byte{9, 9, 9, 9})
	b = AppendClientFrame(b, wsframe.OpClose, []byte{0x03, 0xe8}, [4]byte{0xff, 0, 0xff, 0})
	var p wsframe.Parser
	var rec recorder
	if err := p.Feed(b, &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.pings) != 1 || string(rec.pings[0]) != "hello" || rec.pongs != 1 || len(rec.closes) != 1 || rec.closes[0] != 1000 {
		t.Fatalf("server parser saw %+v", rec)
	}
}

// fakeConn feeds a client's read loop from r and records what it writes.
type fakeConn struct {
	net.Conn
	r io.Reader
	w bytes.Buffer
}

func (c *fakeConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fakeConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }

// stream builds a server byte stream: n values of the given size, with a
// ping after the first and a fragmented message in the middle.
func stream(n, size int, deflate bool) []byte {
	now := time.Now().UnixNano()
	var s []byte
	d, _ := wsframe.NewDeflater(1)
	for i := range n {
		f := wsframe.Text(AppendValue(nil, now, int64(i), size))
		if z := d.Deflate(f); deflate && z != nil {
			f = z
		}
		s = append(s, f...)
		if i == 0 {
			s = append(s, wsframe.Control(wsframe.OpPing, []byte("pp"))...)
		}
		if i == n/2 {
			s = append(s, 0x01, 4, 'a', 'b', 'c', 'd', 0x80, 1, 'e') // "abcde" in two fragments
		}
	}
	return s
}

func TestReadLoop(t *testing.T) {
	const n = 200
	tests := []struct {
		name    string
		size    int
		reader  func(io.Reader) io.Reader
		pending int // bytes handed over from the handshake reader
		end     []byte
		closed  bool
		deflate bool // permessage-deflate frames
	}{
		{"whole", 100, func(r io.Reader) io.Reader { return r }, 0, nil, true, false},
		{"one byte reads", 100, iotest.OneByteReader, 0, nil, true, false},
		{"half reads", 300, iotest.HalfReader, 0, nil, true, false},
		{"16-bit frames", 1000, func(r io.Reader) io.Reader { return r }, 0, nil, true, false},
		{"64-bit frames", 70000, iotest.HalfReader, 0, nil, true, false},
		{"pending bytes", 100, func(r io.Reader) io.Reader { return r }, 37, nil, true, false},
		{"close frame", 100, iotest.HalfReader, 0, wsframe.Close(1001, "going"), true, false},
		{"protocol error", 100, func(r io.Reader) io.Reader { return r }, 0, []byte{0x83, 0}, false, false},
		{"compressed", 300, iotest.HalfReader, 0, nil, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := append(stream(n, tt.size, tt.deflate), tt.end...)
			conn := &fakeConn{r: tt.reader(bytes.NewReader(s[tt.pending:]))}
			c := &client{conn: conn, key: -1, keys: 3, maskKey: 1, pending: s[:tt.pending], stats: newClientStats(-1, 3, false), inflaters: new(sync.Pool)}
			c.readLoop()
			st := c.stats
			if got := st.received.Load(); got != n {
				t.Errorf("received %d, want %d", got, n)
			}
			if st.unparsed != 1 || st.duplicates != 0 || st.outOfOrder != 0 || st.misrouted != 0 {
				t.Errorf("stats %+v", st)
			}
			var ad Dist
			st.hist.AddTo(&ad)
			if ad.Count() != n {
				t.Errorf("histogram holds %d values", ad.Count())
			}
			if c.closedByServer != tt.closed || !c.ended.Load() {
				t.Errorf("closedByServer = %v, ended = %v, err = %v", c.closedByServer, c.ended.Load(), c.err)
			}
			var p wsframe.Parser
			var rec recorder
			if err := p.Feed(conn.w.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if w := conn.w.Bytes(); rec.pongs != 1 || len(w) < 8 || w[0] != 0x8A || w[1] != 0x82 ||
				w[6]^w[2] != 'p' || w[7]^w[3] != 'p' {
				t.Errorf("ping not answered with a masked pong \"pp\": wrote % x", w)
			}
			if tt.end != nil && tt.closed && (len(rec.closes) != 1 || rec.closes[0] != 1001) {
				t.Errorf("close not echoed: server saw %+v", rec)
			}
		})
	}
}

func TestDrainStalled(t *testing.T) {
	tests := []struct {
		name   string
		end    []byte
		closed bool
	}{
		{"eof", nil, true},
		{"close frame", wsframe.Close(1008, "slow"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := append(stream(50, 70000, false), tt.end...)
			c := &client{conn: &fakeConn{r: iotest.HalfReader(bytes.NewReader(s))}, stalled: true}
			c.drainStalled(time.Now().Add(time.Minute))
			if c.closedByServer != tt.closed {
				t.Errorf("closedByServer = %v (%v)", c.closedByServer, c.err)
			}
		})
	}

	// A server that keeps the connection open: the deadline ends the read.
	cli, srv := net.Pipe()
	defer srv.Close()
	c := &client{conn: cli, stalled: true}
	c.drainStalled(time.Now().Add(50 * time.Millisecond))
	if c.closedByServer || !errors.Is(c.err, os.ErrDeadlineExceeded) {
		t.Errorf("closedByServer = %v, err = %v", c.closedByServer, c.err)
	}
}

func TestDeliver(t *testing.T) {
	now := time.Now().UnixNano()
	v := func(seq int64) []byte { return AppendValue(nil, now-int64(time.Millisecond), seq, 0) }
	tests := []struct {
		name          string
		key, keys     int
		seqs          []int64
		dup, ooo, mis int64
	}{
		{"in order", -1, 2, []int64{0, 1, 2, 3, 4}, 0, 0, 0},
		{"interleaved keys", -1, 2, []int64{1, 0, 3, 2, 5, 4}, 0, 0, 0},
		{"gap is not disorder", -1, 1, []int64{0, 5, 9}, 0, 0, 0},
		{"duplicate", -1, 2, []int64{0, 2, 2, 1}, 1, 0, 0},
		{"out of order", -1, 2, []int64{0, 2, 4, 2}, 0, 1, 0},
		{"filtered", 1, 3, []int64{1, 4, 7, 4}, 0, 1, 0},
		{"misrouted", 1, 3, []int64{1, 2, 4}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newClientStats(tt.key, tt.keys, false)
			for _, s := range tt.seqs {
				st.deliver(v(s), now, tt.key, tt.keys)
			}
			if st.received.Load() != int64(len(tt.seqs)) || st.duplicates != tt.dup || st.outOfOrder != tt.ooo || st.misrouted != tt.mis {
				t.Errorf("received %d dup %d ooo %d misrouted %d", st.received.Load(), st.duplicates, st.outOfOrder, st.misrouted)
			}
		})
	}
}

func BenchmarkReadLoop(b *testing.B) {
	s := stream(10000, 200, false)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		c := &client{conn: &fakeConn{r: bytes.NewReader(s)}, key: -1, keys: 10, maskKey: 1, stats: newClientStats(-1, 10, false)}
		c.readLoop()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10000), "ns/frame")
}
