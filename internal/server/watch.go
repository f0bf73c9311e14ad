package server

import (
	"sync"

	"github.com/wsdest/wsdest/internal/netpoll"
)

// watchSlot holds a client connection's poller registration, which is
// made after the client joined the hub: whichever of setWatch and closed
// comes second forgets the registration.
type watchSlot struct {
	mu    sync.Mutex
	watch netpoll.Watch // guarded by mu
	gone  bool          // the client is torn down; guarded by mu
}

func (s *watchSlot) setWatch(w netpoll.Watch) {
	s.mu.Lock()
	gone := s.gone
	if !gone {
		s.watch = w
	}
	s.mu.Unlock()
	if gone {
		w.Forget()
	}
}

// closed is the hub's callback once the connection is closed.
func (s *watchSlot) closed() {
	s.mu.Lock()
	s.gone = true
	w := s.watch
	s.mu.Unlock()
	w.Forget()
}
