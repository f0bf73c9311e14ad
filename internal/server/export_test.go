package server

import "time"

// FreezeRejectClock stops the rejection log's clock at t, so that its rate
// limits can be checked without depending on how fast the test runs.
func FreezeRejectClock(s *Server, t time.Time) { s.rejects.now = func() time.Time { return t } }
