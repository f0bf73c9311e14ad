package service_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// deflateClient dials with a permessage-deflate offer (or none) and
// returns the connection, its reader and the extensions the server
// accepted.
func deflateClient(t *testing.T, url string, offer bool) (net.Conn, *bufio.Reader, []httphead.Option) {
	t.Helper()
	d := ws.Dialer{Timeout: e2etest.Wait}
	if offer {
		d.Extensions = []httphead.Option{wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}.Option()}
	}
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	conn, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if br == nil {
		br = bufio.NewReader(conn)
	}
	return conn, br, hs.Extensions
}

// readData returns the next data frame's header and payload, skipping
// pings.
func readData(t *testing.T, conn net.Conn, r io.Reader) (ws.Header, []byte) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(e2etest.Wait))
	for {
		h, err := ws.ReadHeader(r)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(r, p); err != nil {
			t.Fatal(err)
		}
		if h.OpCode.IsData() {
			return h, p
		}
	}
}

// TestCompression: with COMPRESSION=true a client that offers
// permessage-deflate gets it (no context takeover), its large frames
// compressed with RSV1 set and small ones plain; a client that does not
// offer it gets plain frames; each frame is compressed once, however many
// clients get it.
func TestCompression(t *testing.T) {
	t.Parallel()
	_, p, s := start(t, 1, e2etest.Env{"COMPRESSION": "true"})
	type client struct {
		conn net.Conn
		r    *bufio.Reader
		z    bool
	}
	var clients []client
	for _, offer := range []bool{true, true, false} {
		conn, r, ext := deflateClient(t, s.URL("/ws"), offer)
		if accepted := len(ext) == 1 && string(ext[0].Name) == "permessage-deflate"; accepted != offer {
			t.Fatalf("offer %v: accepted extensions %v", offer, ext)
		}
		clients = append(clients, client{conn, r, offer})
	}
	big := fmt.Sprintf(`{"Timestamp":1795770742528612163,"temperature":21.12,"humidity":42.9,"Tags":{"location":"office"},"pad":%q}`, strings.Repeat("ab", 200))
	small := `{"n":1}`
	p.Produce([]byte("k"), []byte(big))
	p.Produce([]byte("k"), []byte(small))
	for i, c := range clients {
		h, got := readData(t, c.conn, c.r)
		if compressed := h.Rsv1(); compressed != c.z {
			t.Fatalf("client %d: big frame RSV1 %v, want %v", i, compressed, c.z)
		}
		if c.z {
			var err error
			if got, err = new(wsframe.Inflater).Inflate(nil, got); err != nil {
				t.Fatalf("client %d: inflate: %v", i, err)
			}
		}
		if string(got) != big {
			t.Fatalf("client %d: got %.60s", i, got)
		}
		h, got = readData(t, c.conn, c.r)
		if h.Rsv1() || !bytes.Equal(got, []byte(small)) {
			t.Fatalf("client %d: small frame RSV1 %v, %s", i, h.Rsv1(), got)
		}
	}
	if st := s.Stats(t); st.Hub.Deflated != 1 || st.Hub.DeflateSaved == 0 {
		t.Fatalf("deflated %d frames saving %d bytes, want 1 frame", st.Hub.Deflated, st.Hub.DeflateSaved)
	}
	// A compressed message from the client (RSV1) is read and discarded,
	// not a protocol error.
	msg := e2etest.MaskedFrame(true, ws.OpText, []byte{0x4a, 0x04, 0x00})
	msg[0] |= 0x40
	if _, err := clients[0].conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	p.Produce([]byte("k"), []byte(small))
	if h, got := readData(t, clients[0].conn, clients[0].r); h.Rsv1() || string(got) != small {
		t.Fatalf("after a compressed client message: %v %s", h.Rsv1(), got)
	}
}
