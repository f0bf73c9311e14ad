package wsframe

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
)

// Deflater compresses text frames for permessage-deflate (RFC 7692) with
// no context takeover: each message is compressed on its own, so the
// compressed frame can be shared by every client that negotiated the
// extension, whatever it received before. The zero value is not ready:
// use NewDeflater. A Deflater is not safe for concurrent use; keep one per
// goroutine or pool them.
type Deflater struct {
	w   *flate.Writer
	buf bytes.Buffer
}

// NewDeflater returns a Deflater compressing at level (flate.BestSpeed to
// flate.BestCompression).
func NewDeflater(level int) (*Deflater, error) {
	d := &Deflater{}
	w, err := flate.NewWriter(&d.buf, level)
	if err != nil {
		return nil, err
	}
	d.w = w
	return d, nil
}

// payloadOf returns the payload of an unmasked frame built by this
// package.
func payloadOf(frame []byte) []byte {
	switch frame[1] & 0x7F {
	case 126:
		return frame[4:]
	case 127:
		return frame[10:]
	}
	return frame[2:]
}

// Deflate returns the compressed form of text frame f, a new slice: RSV1
// set, the payload deflated and without the final empty block's 4 bytes
// (RFC 7692 section 7.2.1). It returns nil when compression does not make
// the frame smaller.
func (d *Deflater) Deflate(f []byte) []byte {
	p := payloadOf(f)
	d.buf.Reset()
	d.w.Reset(&d.buf)
	if _, err := d.w.Write(p); err != nil {
		return nil
	}
	if err := d.w.Flush(); err != nil {
		return nil
	}
	z := d.buf.Bytes()
	if len(z) < 4 || !bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff}) {
		return nil
	}
	z = z[:len(z)-4]
	if HeaderLen(len(z))+len(z) >= len(f) {
		return nil
	}
	out := make([]byte, 0, HeaderLen(len(z))+len(z))
	out = AppendHeader(out, OpText, len(z))
	out[0] |= 0x40 // RSV1: compressed
	out = append(out, z...)
	if d.buf.Cap() > 1<<20 {
		d.buf = bytes.Buffer{} // do not keep a large record's buffer
	}
	return out
}

// Inflater decompresses permessage-deflate payloads (no context
// takeover), reusing its flate reader and input buffer from one message to
// the next. The zero value is ready; an Inflater is not safe for
// concurrent use.
type Inflater struct {
	r  io.ReadCloser
	in []byte
}

// deflateTail ends a message's deflate stream: the 4 bytes RFC 7692 has
// the sender strip, then a final empty stored block.
var deflateTail = [...]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

// Inflate appends the decompressed payload of a compressed frame (RSV1
// set) to dst and returns it.
func (f *Inflater) Inflate(dst, payload []byte) ([]byte, error) {
	f.in = append(append(f.in[:0], payload...), deflateTail[:]...)
	src := bytes.NewReader(f.in)
	if f.r == nil {
		f.r = flate.NewReader(src)
	} else if err := f.r.(flate.Resetter).Reset(src, nil); err != nil {
		return dst, err
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := f.r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, fmt.Errorf("wsframe: inflate: %w", err)
		}
	}
	if cap(f.in) > 1<<20 {
		f.in = nil
	}
	return dst, nil
}
