package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/boolval"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// Resumer fills clients that start from a position (history.Resumer).
type Resumer interface {
	Resume(ctx context.Context, c *hub.Client, st wsdest.Start, match func(key []byte) bool) error
	Identity() wsdest.TopicIdentity
}

// parseStart reads a request's start position: from=, last= and
// snapshot= on every stream path, and for SSE (sse set) the Last-Event-ID header or the
// last_event_id / lastEventId query parameters, which win over both (an
// EventSource reconnecting sends the header with its original URL). The
// error is one line for a 400 answer.
func (s *Server) parseStart(r *http.Request, sse bool) (wsdest.Start, error) {
	q := r.URL.Query()
	from, last := lastValue(q["from"]), lastValue(q["last"])
	if sse {
		id := r.Header.Get("Last-Event-ID")
		name := "Last-Event-ID"
		for _, k := range []string{"last_event_id", "lastEventId"} {
			if v := lastValue(q[k]); id == "" && v != "" {
				id, name = v, k
			}
		}
		if id = strings.TrimSpace(id); id != "" {
			st, err := wsdest.ParseStart(id, "", time.Now())
			if err == nil && st.Kind != wsdest.StartCursor {
				err = errors.New("is not a cursor")
			}
			if err != nil {
				return wsdest.Start{}, fmt.Errorf("%s: %w", name, err)
			}
			return s.checkStart(st)
		}
	}
	snap, err := s.parseSnapshot(q, from, last)
	if err != nil || snap {
		return wsdest.Start{Kind: wsdest.StartSnapshot}, err
	}
	st, err := wsdest.ParseStart(from, last, time.Now())
	if err != nil {
		return wsdest.Start{}, err
	}
	return s.checkStart(st)
}

// parseSnapshot reads snapshot=: true asks for the latest record of every
// key the subscription matches before live ones, which neither from= nor
// last= can come with (a client that resumes does not need one).
func (s *Server) parseSnapshot(q map[string][]string, from, last string) (bool, error) {
	v := lastValue(q["snapshot"])
	if v == "" {
		return false, nil
	}
	on, err := boolval.Parse(v)
	switch {
	case err != nil:
		return false, fmt.Errorf("snapshot=%w", err)
	case !on:
		return false, nil
	case from != "" || last != "":
		return false, errors.New("snapshot=true cannot be combined with from= or last= (resume from the cursor alone: it continues after the snapshot)")
	case !s.cfg.Snapshot || s.cfg.Resumer == nil:
		return false, errors.New("snapshot=true: snapshots are off on this server (SNAPSHOT=false)")
	}
	return true, nil
}

func (s *Server) checkStart(st wsdest.Start) (wsdest.Start, error) {
	if st.Kind == wsdest.StartLatest {
		return st, nil
	}
	if s.cfg.Resumer == nil {
		return wsdest.Start{}, errors.New("start positions (from=, last=) are not enabled on this server")
	}
	if st.Kind == wsdest.StartCursor {
		if err := wsdest.CheckCursor(&st.Cursor, s.cfg.Resumer.Identity()); err != nil {
			return wsdest.Start{}, fmt.Errorf("from: %w", err)
		}
	}
	return st, nil
}

func lastValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// startResume runs the catch-up of a client added parked, closing it if
// Kafka cannot serve it. ctx ends when the client is closed.
func (s *Server) startResume(ctx context.Context, c *hub.Client, st wsdest.Start) {
	go func() {
		err := s.cfg.Resumer.Resume(ctx, c, st, c.Matches)
		if err == nil || ctx.Err() != nil {
			return
		}
		if n, ok := s.resumeLog.Allow(""); ok {
			s.log.Warn("client closed: catch-up from Kafka failed", "id", c.ID(), "err", err, "suppressed", n)
		}
		c.Close(wsframe.CloseInternalError, wsframe.ReasonCatchUpFailed, hub.ReasonCatchUp)
	}()
}
