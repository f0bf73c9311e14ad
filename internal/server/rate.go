package server

import (
	"fmt"
	"math"
	"strconv"
)

// Bounds of the max_rate= parameter, in messages per key per second.
const (
	MinMaxRate = 0.1
	MaxMaxRate = 1000
)

// parseMaxRate returns the max_rate= parameter of query (the last one
// given), 0 when there is none: at most that many messages a second for
// each key, latest wins (hub.Subscription.MaxRate). A value that is not a
// number from MinMaxRate to MaxMaxRate is an error naming the bounds.
func parseMaxRate(query map[string][]string) (float64, error) {
	v := query["max_rate"]
	if len(v) == 0 {
		return 0, nil
	}
	s := v[len(v)-1]
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(r) || r < MinMaxRate || r > MaxMaxRate {
		return 0, fmt.Errorf("max_rate=%q is not a number from %g to %g (messages per key per second)", s, MinMaxRate, float64(MaxMaxRate))
	}
	return r, nil
}
