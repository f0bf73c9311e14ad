package kafka

import (
	"fmt"
	"strings"

	"github.com/wsdest/wsdest/internal/ready"
)

// Conditions returns the conditions of Ready that do not hold, the first
// that fails first, each with a line for the operator: no broker answers
// (the address tried and the last error), the topic does not exist (its
// name), its partitions are not yet assigned and positioned. It is empty
// exactly when Ready is true. Safe to call from any goroutine.
func (s *Source) Conditions() []ready.Condition {
	if !s.reach.up.Load() {
		return []ready.Condition{{Reason: ready.BrokerUnreachable, Detail: s.unreachable()}}
	}
	known := s.partitionsKnown()
	if !known && s.topicMissing.Load() {
		return []ready.Condition{{Reason: ready.TopicMissing,
			Detail: fmt.Sprintf("topic %q does not exist on the broker (waiting for it to be created)", s.cfg.Topic)}}
	}
	if !known || (s.pins != nil && !s.pins.ready.Load()) || (s.group != nil && !s.group.ready.Load()) ||
		(s.assigned != nil && !s.assigned.joined.Load()) {
		what := "the topic's partitions are not yet assigned and positioned"
		if s.cfg.Group != "" {
			what = fmt.Sprintf("consumer group %q has not yet assigned and positioned the topic's partitions", s.cfg.Group)
		}
		return []ready.Condition{{Reason: ready.PartitionsUnassigned, Detail: what}}
	}
	return nil
}

// unreachable describes an unreachable broker: the address tried and why.
func (s *Source) unreachable() string {
	seeds := strings.Join(s.cfg.Brokers, ",")
	address, why := s.reach.lastFailure()
	switch {
	case why == "":
		return "connecting to the Kafka broker at " + seeds + " (no answer yet)"
	case address == "":
		return "no Kafka broker answers at " + seeds + ": " + why
	}
	return "no Kafka broker answers: tried " + address + ": " + why
}
