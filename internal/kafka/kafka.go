// Package kafka consumes the input topic with franz-go and hands its records
// to the rest of the service, and resolves how to connect (Resolve, from
// Settings of its own: the service maps its configuration into them): a
// plain broker address, the dev broker, or Quix Cloud (broker settings
// fetched from the Quix Portal API).
//
// The consumer is built to keep running through broker outages: it never
// returns an error for a lost connection, logs one warning when the broker
// becomes unreachable, a reminder every minute while it stays so, and one
// line when it is back (with the outage's length from the broker's last
// answer), and reports readiness through Source.Ready. A broker that keeps
// its connections open but answers nothing is noticed by a watchdog that
// pings it (see health.go). Source.Stats reports what was consumed, for
// the metrics.
package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// DefaultClientID is the Kafka client id used when Config.ClientID is empty.
const DefaultClientID = "wsdest"

// SASL mechanisms supported by Config.SASL.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Tuning shared by every consumer. Fetches return as soon as one byte is
// available, so fetchMaxWait only bounds how long an idle poll is held by
// the broker; it costs no latency.
const (
	fetchMaxWait = 250 * time.Millisecond
	// Partitions added to the topic are discovered on the metadata refresh;
	// a minute bounds how late their first records can arrive (none are
	// lost: they are read from their start). It also keeps within the
	// three minutes Quix Cloud wants, so that connections stay in use
	// behind Azure load balancers.
	metadataMaxAge = time.Minute
	// A missing topic or an unknown leader triggers a metadata refresh no
	// sooner than this; low so that a newly created topic is seen quickly.
	metadataMinAge = time.Second
	// Quix Cloud: connections idle longer than this are closed by the
	// client, before Azure load balancers cut them after four minutes.
	longIdleTimeout = 3 * time.Minute
)

// Config is a resolved Kafka connection and consumption setup. Build it with
// Resolve from Settings, or directly in tests.
type Config struct {
	// Brokers are the bootstrap servers, host:port each.
	Brokers []string
	// Topic is the topic to consume (already workspace-prefixed on Quix
	// Cloud).
	Topic string
	// Group is the consumer group. "" = no consumer group: every partition
	// of the topic is consumed directly (every wsdest replica sees every
	// record) and partitions added later are picked up.
	Group string
	// ResetLatest says where to start when there is no committed offset
	// (always, without a group): true = the end of the topic (default,
	// like the original's auto_offset_reset=latest), false = earliest.
	ResetLatest bool
	// SASL is nil for no SASL.
	SASL *SASL
	// TLS is nil for plaintext.
	TLS *tls.Config
	// ClientID is the Kafka client id; "" = DefaultClientID.
	ClientID string
	// LongIdle is set for Quix Cloud: idle connections are kept for three
	// minutes (Azure load balancers cut idle TCP after four).
	LongIdle bool

	// Test hooks: zero means the package defaults above.
	metadataMaxAge time.Duration
	metadataMinAge time.Duration
	errorLogEvery  time.Duration
	watchEvery     time.Duration
	probeEvery     time.Duration
	probeTimeout   time.Duration
	remindEvery    time.Duration
}

// SASL holds SASL credentials. Mechanism is one of MechanismPlain,
// MechanismScramSHA256 or MechanismScramSHA512.
type SASL struct {
	Mechanism string
	Username  string
	Password  string
}

// String hides the password, so a SASL value can never leak it through a
// log line or a %v.
func (s SASL) String() string {
	return fmt.Sprintf("{%s user=%s password=<redacted>}", s.Mechanism, s.Username)
}

// clientOpts returns the franz-go options for c: the connection (ConnOpts)
// and the consumption, with start the time the consumer was created.
func (c Config) clientOpts(start time.Time) ([]kgo.Opt, error) {
	if c.Topic == "" {
		return nil, errors.New("kafka: no topic")
	}
	opts, err := c.ConnOpts()
	if err != nil {
		return nil, err
	}
	switch {
	case c.pinned():
		// The Source pins the partitions that exist at start-up at exact
		// offsets and adds later partitions from their start (see
		// pinner). The topic is only named here so that franz-go loads
		// its metadata. If the topic is handed over whole (it did not
		// exist at start-up, or was recreated), all of it is new: the
		// start offset reads it from its first record.
		opts = append(opts,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.Topic: {}}),
			kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		)
	case c.ResetLatest:
		// A group member starts partitions that have no committed offset
		// at the records stamped after start-up: the end of a partition
		// that existed then, the beginning of one created later. The
		// Source's groupStart replaces this start offset with exact
		// offsets listed the way the pinner lists them.
		opts = append(opts,
			kgo.ConsumeTopics(c.Topic),
			kgo.ConsumeStartOffset(sinceStart(start)),
		)
	default:
		opts = append(opts,
			kgo.ConsumeTopics(c.Topic),
			kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		)
	}
	if c.ResetLatest {
		// When the broker lost data and the client cannot tell where (a
		// broker restarted empty), resume just before the last record
		// consumed: a second of possible repeats, never a skip of what
		// was produced since.
		opts = append(opts, kgo.ConsumeResetOffset(kgo.RewindOffset(time.Second)))
	} else {
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	if c.Group != "" {
		opts = append(opts, kgo.ConsumerGroup(c.Group))
	}
	return opts, nil
}

// pinned reports whether the Source assigns partitions itself: without a
// group, starting at the end of the topic.
func (c Config) pinned() bool { return c.Group == "" && c.ResetLatest }

// groupLatest reports whether the Source positions a group member's
// partitions that have no commit itself (see groupStart).
func (c Config) groupLatest() bool { return c.Group != "" && c.ResetLatest }

func (s *SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka: SASL mechanism %q is not supported (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
