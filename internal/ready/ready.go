// Package ready names the conditions the service waits for before it can
// deliver records: what /readyz, the wsdest_not_ready metric and the
// clients' "unavailable" notices report. The parts that know a condition
// (the Kafka source, the history) return the ones that do not hold yet;
// the service joins them. A new condition is a new Reason here, in
// Reasons, and a part that reports it.
package ready

// Reason names one condition, in snake case: the reason label of
// wsdest_not_ready, the "reason" of /readyz's JSON and of an
// "unavailable" notice.
type Reason string

// The conditions, in the order they are usually met.
const (
	// BrokerUnreachable: no Kafka broker answers (never yet, or not
	// since an outage began).
	BrokerUnreachable Reason = "broker_unreachable"
	// TopicMissing: the broker answers but does not have the topic.
	TopicMissing Reason = "topic_missing"
	// PartitionsUnassigned: the topic's partitions are not yet assigned
	// and positioned (a record produced now might not be delivered).
	PartitionsUnassigned Reason = "partitions_unassigned"
	// TopicIdentityUnknown: the topic's identity, which every cursor
	// carries, is not known yet.
	TopicIdentityUnknown Reason = "topic_identity_unknown"
	// SnapshotSeeding: the table of latest values (snapshot=true) is
	// still being read from Kafka (SNAPSHOT_LOOKBACK).
	SnapshotSeeding Reason = "snapshot_seeding"
)

// Reasons lists every reason, in a stable order (every one has a
// wsdest_not_ready series from the start).
var Reasons = [...]Reason{BrokerUnreachable, TopicMissing, PartitionsUnassigned, TopicIdentityUnknown, SnapshotSeeding}

// Condition is a condition that does not hold: its reason and one line for
// the operator saying what is wrong (the broker address tried, the topic's
// name). Detail never holds a secret.
type Condition struct {
	Reason Reason `json:"reason"`
	Detail string `json:"detail"`
}

// Unavailable reports whether the condition means the data cannot flow
// (the broker or the topic is gone), as opposed to a start-up step still
// under way: what clients are told with an "unavailable" notice.
func (c Condition) Unavailable() bool {
	return c.Reason == BrokerUnreachable || c.Reason == TopicMissing
}
