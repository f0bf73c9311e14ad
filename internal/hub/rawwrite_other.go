//go:build !linux

package hub

import (
	"errors"
	"net"
	"syscall"
)

// writeScratch is empty: non-blocking writes are used on Linux only.
type writeScratch struct{}

// rawConnOf returns nil: every write goes through the connection's own
// (blocking) Write from a goroutine of the client's.
func rawConnOf(Conn) syscall.RawConn { return nil }

// limitNotSent does nothing: no raw socket is written.
func limitNotSent(syscall.RawConn, int) {}

func writevNonblock(syscall.RawConn, [][]byte, *writeScratch) (int, net.Buffers, error) {
	return 0, nil, errors.ErrUnsupported
}
