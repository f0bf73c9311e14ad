//go:build linux

package hub

import (
	"net"
	"syscall"
	"unsafe"
)

// writeScratch is a pool worker's reusable iovec array.
type writeScratch struct{ iov []syscall.Iovec }

// rawConnOf returns the socket of a TCP connection, for non-blocking
// writes, or nil.
func rawConnOf(conn Conn) syscall.RawConn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (linux/tcp.h), which package
// syscall does not name.
const tcpNotSentLowat = 0x19

// limitNotSent makes the socket take no more once about n bytes of what
// it holds are not yet sent (TCP_NOTSENT_LOWAT): what it holds beyond
// that is then what the network and the peer's receive buffer hold. A
// socket that refuses it is left as it is.
func limitNotSent(rc syscall.RawConn, n int) {
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, n)
	})
}

// writevNonblock writes bufs to the socket without waiting. It returns the
// bytes written and, when the socket took only part, what is left (the
// first element may be a tail of a frame).
func writevNonblock(rc syscall.RawConn, bufs [][]byte, ws *writeScratch) (int, net.Buffers, error) {
	total := 0
	var werr error
	rest := bufs
	err := rc.Write(func(fd uintptr) bool {
		for len(rest) > 0 {
			chunk := rest[:min(len(rest), 1024)]
			iov := ws.iov[:0]
			want := 0
			for _, b := range chunk {
				if len(b) == 0 {
					continue
				}
				v := syscall.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				iov = append(iov, v)
				want += len(b)
			}
			ws.iov = iov
			if len(iov) == 0 {
				rest = rest[len(chunk):]
				continue
			}
			r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			clear(iov) // drop the references to the frames
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				werr = e
				return true
			}
			total += int(r)
			left := int(r)
			for left > 0 && len(rest) > 0 {
				if left >= len(rest[0]) {
					left -= len(rest[0])
					rest = rest[1:]
					continue
				}
				// A partial frame: rest aliases the caller's batch, which
				// is cleared once written, so its element may be cut.
				rest[0] = rest[0][left:]
				left = 0
			}
			if int(r) < want {
				return true // the socket is full
			}
		}
		return true
	})
	if err != nil {
		return total, nil, err
	}
	if len(rest) > 0 && (werr == nil || werr == syscall.EAGAIN) {
		return total, net.Buffers(rest), nil
	}
	return total, nil, werr
}
