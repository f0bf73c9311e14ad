package wsdest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StartKind says where a client's stream starts.
type StartKind uint8

const (
	// StartLatest: live records only, from now on (the default).
	StartLatest StartKind = iota
	// StartEarliest: every record Kafka still has, then live.
	StartEarliest
	// StartCursor: just after the record whose cursor was given.
	StartCursor
	// StartTime: the records stamped at or after a time.
	StartTime
	// StartLast: the N most recent records that match, then live.
	StartLast
	// StartSnapshot: the latest record of every key that matches, then
	// live from where that snapshot was taken (snapshot=true).
	StartSnapshot
)

// MaxLast bounds last=N.
const MaxLast = 10000

// Start is a client's requested start position.
type Start struct {
	Kind   StartKind
	Cursor Cursor    // StartCursor
	Time   time.Time // StartTime
	Last   int       // StartLast
}

// ParseStart parses the from= and last= parameters ("" when absent) into a
// Start, relative to now for durations. from is "latest", "earliest", a
// cursor, an RFC 3339 time or a negative duration ("-5m"); last is a
// positive count, at most MaxLast, and excludes from. The error is one line
// fit for a 400 answer.
func ParseStart(from, last string, now time.Time) (Start, error) {
	if last != "" {
		if from != "" && from != "latest" {
			return Start{}, errors.New("last= and from= cannot be combined (last=N starts from the N most recent records)")
		}
		n, err := strconv.Atoi(last)
		if err != nil || n <= 0 || n > MaxLast {
			return Start{}, fmt.Errorf("last=%q is not a count (want 1 to %d)", last, MaxLast)
		}
		return Start{Kind: StartLast, Last: n}, nil
	}
	switch from {
	case "", "latest":
		return Start{Kind: StartLatest}, nil
	case "earliest":
		return Start{Kind: StartEarliest}, nil
	}
	if strings.HasPrefix(from, "-") {
		d, err := time.ParseDuration(from)
		if err != nil || d >= 0 {
			return Start{}, fmt.Errorf("from=%q is not a negative duration (e.g. -5m, -1h30m)", from)
		}
		return Start{Kind: StartTime, Time: now.Add(d)}, nil
	}
	if len(from) >= 10 && from[4] == '-' && from[7] == '-' {
		t, err := time.Parse(time.RFC3339Nano, from)
		if err != nil {
			return Start{}, fmt.Errorf("from=%q is not an RFC 3339 time (e.g. 2026-12-01T10:00:00Z)", from)
		}
		return Start{Kind: StartTime, Time: t}, nil
	}
	c, err := ParseCursor(from)
	if err != nil {
		return Start{}, fmt.Errorf("from=%q: %w (want latest, earliest, a cursor, an RFC 3339 time or a negative duration)", short(from), err)
	}
	return Start{Kind: StartCursor, Cursor: c}, nil
}

// short cuts s for an error line.
func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ErrOtherTopic is returned by CheckCursor for a cursor of another topic.
var ErrOtherTopic = errors.New("cursor belongs to another topic")

// CheckCursor reports whether a cursor can be applied to the topic with
// identity id: ErrOtherTopic when its topic name differs. A cursor of an
// earlier incarnation of the same topic (recreated) is accepted: the client
// is told with a reset notice and starts from the earliest record.
func CheckCursor(c *Cursor, id TopicIdentity) error {
	if c.Topic.NameHash != id.NameHash {
		return ErrOtherTopic
	}
	return nil
}
