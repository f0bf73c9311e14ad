package service

import "time"

// IdleTimeouts returns the idle timeouts of the servers on METRICS_ADDR
// and PPROF_ADDR (zero for one that is off).
func IdleTimeouts(s *Service) (metrics, pprof time.Duration) {
	if s.metricsHTTP != nil {
		metrics = s.metricsHTTP.IdleTimeout
	}
	if s.pprofHTTP != nil {
		pprof = s.pprofHTTP.IdleTimeout
	}
	return metrics, pprof
}
