package kafka

import (
	"context"
	"time"
)

// Broker health. franz-go notices a broker that keeps its connections open
// but answers nothing (a process under SIGSTOP, a hung JVM, a network that
// drops packets) only when its request timeouts expire, 20 s or more later.
// The watchdog closes that gap: when no broker has answered anything for
// probeEvery, it pings them (a brokers-only metadata request to each known
// broker in turn, kgo.Client.Ping); if nothing at all is heard within
// probeTimeout, the brokers are declared unreachable (Ready turns false)
// with the outage dated from the last answer. So a frozen broker turns
// /readyz 503 within probeEvery + probeTimeout of its last answer, plus at
// most probeEvery of tick granularity: 4 s with the defaults. While the
// outage lasts, a reminder is logged every remindEvery, so a broker address
// with a typo never leaves a silent service.
const (
	probeEvery   = time.Second
	probeTimeout = 2 * time.Second
	remindEvery  = time.Minute
)

// health runs beside Run until ctx is done.
func (s *Source) health(ctx context.Context) {
	every := orDefault(s.cfg.probeEvery, probeEvery)
	timeout := orDefault(s.cfg.probeTimeout, probeTimeout)
	remind := orDefault(s.cfg.remindEvery, remindEvery)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var noticed, reminded time.Time // of the current outage
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		if down, since, why := s.reach.outage(); down {
			switch {
			case noticed.IsZero():
				noticed, reminded = now, now
			case now.Sub(reminded) >= remind:
				reminded = now
				s.logger.Warn("kafka broker still unreachable; retrying", "brokers", s.cfg.Brokers,
					"outage_so_far", now.Sub(since).Round(time.Second).String(), "last_error", why,
					"note", "repeated every "+remind.String()+" while the outage lasts")
			}
			continue
		}
		noticed = time.Time{}
		if !s.reach.up.Load() {
			continue // never connected yet: franz-go's connection attempts report
		}
		last := s.reach.lastHeard.Load()
		if now.Sub(time.Unix(0, last)) < every {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := s.client.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && s.reach.lastHeard.Load() == last {
			s.reach.silent(s.cfg.Brokers, time.Since(time.Unix(0, last)))
		}
	}
}
