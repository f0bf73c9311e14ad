package kafka

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConnOpts returns the franz-go options that connect to c's cluster the way
// the Source does (brokers, client id, SASL, TLS, idle timeout, metadata
// ages) and nothing about consuming, for other clients of the same cluster
// such as the history's catch-up reader. Each call returns fresh options
// (its own copy of the TLS configuration).
func (c Config) ConnOpts() ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("kafka: no broker address")
	}
	clientID := c.ClientID
	if clientID == "" {
		clientID = DefaultClientID
	}
	maxAge, minAge := orDefault(c.metadataMaxAge, metadataMaxAge), orDefault(c.metadataMinAge, metadataMinAge)
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(clientID),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.MetadataMaxAge(maxAge),
		kgo.MetadataMinAge(min(minAge, maxAge)),
	}
	if c.SASL != nil {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	if c.LongIdle {
		opts = append(opts, kgo.ConnIdleTimeout(longIdleTimeout))
	}
	return opts, nil
}
