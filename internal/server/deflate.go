package server

import (
	"bytes"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
)

// deflateWindowBits is the LZ77 window the server compresses with:
// compress/flate always uses 32 KiB, so 15 bits, and cannot use less.
const deflateWindowBits = 15

// newDeflate returns the permessage-deflate extension offered to one
// client (RFC 7692, no context takeover either way) and its negotiation
// function for the upgrader. An offer that limits the server's window to
// 15 bits is accepted, and the answer says server_max_window_bits=15; one
// that limits it to less is declined, since the server cannot compress
// with a smaller window, and the client's next offer, if any, is tried.
// An offer with an unknown parameter or an invalid value is declined too
// (RFC 7692 §5), not answered with an error.
// client_max_window_bits needs no answer: the server never inflates a
// client's message (the parser discards it), so any window the client
// uses will do.
func newDeflate() (*wsflate.Extension, func(httphead.Option) (httphead.Option, error)) {
	flate := &wsflate.Extension{Parameters: wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}}
	return flate, func(opt httphead.Option) (httphead.Option, error) {
		var offer wsflate.Parameters
		if bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) && offer.Parse(opt) != nil {
			return httphead.Option{}, nil // RFC 7692 §5: decline, do not fail
		}
		flate.Parameters.ServerMaxWindowBits = 0
		if offer.ServerMaxWindowBits == deflateWindowBits {
			flate.Parameters.ServerMaxWindowBits = deflateWindowBits
		}
		return flate.Negotiate(opt)
	}
}
