package service

import (
	"context"
	"time"

	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/ready"
)

// availabilityEvery is how often announceAvailability looks at the
// source's conditions: what it adds to the delay after which /readyz
// reports an outage.
const availabilityEvery = 250 * time.Millisecond

// announceAvailability tells envelope and SSE clients when the data stops
// and starts again: when a condition that means the data cannot flow (the
// broker unreachable, the topic missing; ready.Condition.Unavailable)
// begins or changes, {"notice":"unavailable","reason":...}, standing for
// clients that connect meanwhile; when none is left,
// {"notice":"available"}. Start-up steps (partitions being assigned) are
// not announced, and nothing is announced while the data flows. It runs
// until ctx is done.
func (s *Service) announceAvailability(ctx context.Context) error {
	tick := time.NewTicker(availabilityEvery)
	defer tick.Stop()
	var current ready.Reason // "" while available
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var now ready.Reason
		for _, c := range s.source.Conditions() {
			if c.Unavailable() {
				now = c.Reason
				break
			}
		}
		switch {
		case now == current:
		case now != "":
			s.hub.Announce(encode.NoticeAll(encode.UnavailableNotice(string(now))), true)
		default:
			s.hub.Announce(encode.NoticeAll(encode.AvailableNotice()), false)
		}
		current = now
	}
}
