package service

import (
	"fmt"
	"time"

	"github.com/wsdest/wsdest/internal/history"
	"github.com/wsdest/wsdest/internal/kafka"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/server"
)

// The server resumes clients through its own small interface, so that it
// imports neither the history nor Kafka.
var _ server.Resumer = (*history.Resumer)(nil)

// newHistory creates the history store (unless HISTORY_BYTES is 0), the
// shared catch-up reader, the publisher's tap and the resumer. since is a
// moment at or before the source's start.
func (s *Service) newHistory(kcfg kafka.Config, since time.Time) error {
	opts, err := kcfg.ConnOpts()
	if err != nil {
		return err
	}
	s.reader, err = history.NewReader(history.ReaderConfig{
		Topic:       kcfg.Topic,
		Opts:        opts,
		Concurrency: s.cfg.History.CatchUpReaders,
		Logger:      s.log,
	})
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if s.cfg.History.MaxBytes > 0 {
		s.store = history.NewStore(history.StoreConfig{
			MaxBytes: int64(s.cfg.History.MaxBytes),
			MaxAge:   s.cfg.History.MaxAge,
		})
	}
	s.newTable()
	s.tap = history.NewTap(history.TapConfig{
		Encoder: s.enc,
		Store:   s.store,
		Table:   s.table,
		Reader:  s.reader,
		Since:   since,
		Logger:  s.log,
	})
	s.resumer = history.NewResumer(history.ResumerConfig{
		Tap:     s.tap,
		Store:   s.store,
		Reader:  s.reader,
		Encoder: s.enc,
		Table:   s.table,
		Logger:  s.log,
	})
	return nil
}

// wants returns the shapes somebody receives, and always the WebSocket
// frame beside each SSE one (history.Resumer re-frames the other shapes
// from them). With a history, the messages are built for keeping
// (encode.EncodeKept: the plain frame, and the envelope's head instead of
// envelope frames nobody receives now, from which the Resumer builds them
// for a client that asks).
func (s *Service) wants() [message.NumShapes]bool {
	want := s.hub.Wants()
	want[message.ShapePlain] = want[message.ShapePlain] || want[message.ShapeSSEPlain]
	want[message.ShapeEnvelope] = want[message.ShapeEnvelope] || want[message.ShapeSSEEnvelope] ||
		s.store == nil && s.views.NeedsHead() // filters read headers in the envelope's head
	return want
}
