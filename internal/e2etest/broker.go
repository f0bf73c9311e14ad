package e2etest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxRecordBytes is the largest record batch the test broker and producer
// accept (Kafka's default is 1 MiB), so that tests can send big records.
const MaxRecordBytes = 16 << 20

// Broker is a kfake cluster of one broker listening on 127.0.0.1, with one
// topic. It can be stopped and restarted on the same port, empty, the way a
// development broker or a test cluster comes back after a restart. Its
// methods are safe for concurrent use.
type Broker struct {
	topic      string
	partitions int32
	opts       []kfake.Opt

	mu      sync.Mutex
	cluster *kfake.Cluster // nil while stopped
	addr    string
	port    int
}

// StartBroker starts a broker on a free port with topic created with the
// given number of partitions; opts are added to kfake's. The broker is
// closed when the test ends.
func StartBroker(t testing.TB, topic string, partitions int32, opts ...kfake.Opt) *Broker {
	t.Helper()
	b := &Broker{topic: topic, partitions: partitions, opts: opts}
	c, err := kfake.NewCluster(b.clusterOpts(0)...)
	if err != nil {
		t.Fatalf("e2etest: start kfake: %v", err)
	}
	addr := c.ListenAddrs()[0]
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		c.Close()
		t.Fatalf("e2etest: kfake address %q: %v", addr, err)
	}
	b.port, _ = strconv.Atoi(p)
	b.cluster, b.addr = c, addr
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) clusterOpts(port int) []kfake.Opt {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.SeedTopics(b.partitions, b.topic),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(MaxRecordBytes)}),
	}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	return append(opts, b.opts...)
}

// Addr returns the broker's host:port, the same across restarts.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// Topic returns the topic's name.
func (b *Broker) Topic() string { return b.topic }

// Partitions returns the topic's partition count.
func (b *Broker) Partitions() int32 { return b.partitions }

// Cluster returns the running kfake cluster, or nil while stopped. Tests
// use it for kfake's control hooks.
func (b *Broker) Cluster() *kfake.Cluster {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cluster
}

// Stop shuts the broker down, dropping its data and connections. Stopping
// a stopped broker does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	c := b.cluster
	b.cluster = nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Restart stops the broker if it runs and starts an empty one on the same
// port, with the topic created again (under a new topic id). Producers
// made before the restart hold the old topic id; make a new one.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	b.Stop()
	c, err := kfake.NewCluster(b.clusterOpts(b.port)...)
	if err != nil {
		t.Fatalf("e2etest: restart kfake on port %d: %v", b.port, err)
	}
	b.mu.Lock()
	b.cluster = c
	b.mu.Unlock()
}

// Producer is a franz-go producer for a Broker's topic whose every call
// waits for the broker's acks. Records go to the partition chosen by their
// key's hash (Kafka's default partitioner); pass
// kgo.RecordPartitioner(kgo.ManualPartitioner()) to NewProducer to choose
// partitions with kgo.Record.Partition instead.
type Producer struct {
	t     testing.TB
	cl    *kgo.Client
	topic string
}

// NewProducer returns a producer bootstrapped from b; opts are added to
// the defaults. It is closed when the test ends. Use it from the test's
// goroutine only: its methods fail the test on error.
func NewProducer(t testing.TB, b *Broker, opts ...kgo.Opt) *Producer {
	t.Helper()
	return newProducer(t, b.Addr(), b.topic, opts...)
}

// NewProducerTo is NewProducer for the broker at addr, producing to topic
// "t" (a testbroker.Process's).
func NewProducerTo(t testing.TB, addr string, opts ...kgo.Opt) *Producer {
	t.Helper()
	return newProducer(t, addr, "t", opts...)
}

func newProducer(t testing.TB, addr, topic string, opts ...kgo.Opt) *Producer {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(MaxRecordBytes),
		// Learn a restarted broker's topic quickly.
		kgo.MetadataMinAge(50 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatalf("e2etest: producer: %v", err)
	}
	t.Cleanup(cl.Close)
	return &Producer{t: t, cl: cl, topic: topic}
}

// Client returns the underlying franz-go client.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Header returns a record header.
func Header(key, value string) kgo.RecordHeader {
	return kgo.RecordHeader{Key: key, Value: []byte(value)}
}

// Record returns a record for the producer's topic. A nil key is a null
// key, a nil value a tombstone.
func Record(key, value []byte, headers ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Key: key, Value: value, Headers: headers}
}

// Produce produces one record and waits for its ack; it returns the
// record with its partition and offset filled in.
func (p *Producer) Produce(key, value []byte, headers ...kgo.RecordHeader) *kgo.Record {
	p.t.Helper()
	r := Record(key, value, headers...)
	p.ProduceRecords(r)
	return r
}

// ProduceRecords produces recs in order and waits for all acks. Records
// of one partition are stored in the order given.
func (p *Producer) ProduceRecords(recs ...*kgo.Record) {
	p.t.Helper()
	ctx, cancel := Context(p.t)
	defer cancel()
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		p.t.Fatalf("e2etest: produce: %v", err)
	}
}
