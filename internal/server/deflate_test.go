package server_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/server"
)

// TestDeflateNegotiation sends permessage-deflate offers in a raw
// handshake and reads the extension the server answers with (RFC 7692
// §7.1): a limit on the server's window is accepted when it is the 15 bits
// the server compresses with and declined when smaller; the client's
// window needs no answer; an invalid offer is declined (§5), and the next
// one tried.
func TestDeflateNegotiation(t *testing.T) {
	f := newServer(t, server.Config{Compression: true})
	const both = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"
	tests := []struct {
		name, offer string
		status      int
		answer      string // Sec-WebSocket-Extensions; "" = declined
	}{
		{"plain", "permessage-deflate", 101, both},
		{"server window 15", "permessage-deflate; server_max_window_bits=15", 101, both + ";server_max_window_bits=15"},
		{"server window 15 and everything", "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15; server_no_context_takeover; client_no_context_takeover", 101, both + ";server_max_window_bits=15"},
		{"server window 10", "permessage-deflate; server_max_window_bits=10", 101, ""},
		{"server window 8", "permessage-deflate; server_max_window_bits=8", 101, ""},
		{"server window 10, then none", "permessage-deflate; server_max_window_bits=10, permessage-deflate", 101, both},
		{"server window 10, then 15", "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=15", 101, both + ";server_max_window_bits=15"},
		{"client window without value", "permessage-deflate; client_max_window_bits", 101, both},
		{"client window 9", "permessage-deflate; client_max_window_bits=9", 101, both},
		{"another extension", "x-webkit-deflate-frame", 101, ""},
		{"server window 16", "permessage-deflate; server_max_window_bits=16", 101, ""},
		{"server window without value", "permessage-deflate; server_max_window_bits", 101, ""},
		{"unknown parameter", "permessage-deflate; foo=1", 101, ""},
		{"unknown parameter, then plain", "permessage-deflate; foo=1, permessage-deflate", 101, both},
	}
	addr := strings.TrimPrefix(f.url, "ws://")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := handshake(t, addr, tt.offer)
			if status != tt.status || answer != tt.answer {
				t.Errorf("answer %d %q, want %d %q", status, answer, tt.status, tt.answer)
			}
		})
	}
}

// handshake sends a WebSocket upgrade offering extensions over a raw TCP
// connection and returns the answer's status and Sec-WebSocket-Extensions.
func handshake(t *testing.T, addr, extensions string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(e2etest.Wait))
	req, _ := http.NewRequest("GET", "http://"+addr+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Extensions", extensions)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Sec-WebSocket-Extensions")
}
