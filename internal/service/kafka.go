package service

import (
	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/kafka"
)

// kafkaSettings maps the configuration into the kafka package's settings:
// the dev broker's address (once it listens), a broker address with its
// SASL and TLS, or Quix Cloud. Errors name the environment variables.
func kafkaSettings(cfg config.Config) kafka.Settings {
	k := cfg.Kafka
	s := kafka.Settings{
		Topic:       cfg.Topic,
		Group:       k.ConsumerGroup,
		ResetLatest: k.AutoOffsetReset != config.OffsetEarliest,
		Names: kafka.SettingNames{
			CAFile:      config.EnvTLSCAFile,
			PortalAPI:   config.EnvPortalAPI,
			SDKToken:    config.EnvSDKToken,
			WorkspaceID: config.EnvWorkspaceID,
		},
	}
	switch {
	case cfg.DevBroker.Enabled:
		s.Brokers = []string{cfg.DevBroker.Addr}
	case k.QuixCloud():
		s.Quix = &kafka.QuixSettings{SDKToken: k.Quix.SDKToken, PortalAPI: k.Quix.PortalAPI, WorkspaceID: k.Quix.WorkspaceID}
	default:
		s.Brokers = k.Brokers
		if k.SASL.Mechanism != "" {
			s.SASL = &kafka.SASL{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: k.SASL.Password}
		}
		if k.TLS.Enabled {
			s.TLS = &kafka.TLSSettings{CAFile: k.TLS.CAFile, InsecureSkipVerify: k.TLS.InsecureSkipVerify}
		}
	}
	return s
}
