package service

import (
	"context"
	"time"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/devbroker"
	"github.com/wsdest/wsdest/internal/kafka"
)

// newSource starts the development broker if the configuration asks for
// it, resolves the Kafka connection and creates the source. It returns the
// connection, which the history's reader shares, and a moment at or
// before the source's start (see history.TapConfig.Since).
func (s *Service) newSource(ctx context.Context) (kafka.Config, time.Time, error) {
	cfg := s.cfg
	if cfg.DevBroker.Enabled {
		addr, err := s.startDevBroker(ctx)
		if err != nil {
			return kafka.Config{}, time.Time{}, err
		}
		cfg.DevBroker.Addr = addr
	}
	kcfg, err := kafka.Resolve(ctx, kafkaSettings(cfg), nil)
	if err != nil {
		return kafka.Config{}, time.Time{}, err
	}
	since := time.Now()
	if s.source, err = kafka.NewSource(kcfg, s.log); err != nil {
		return kafka.Config{}, time.Time{}, err
	}
	return kcfg, since, nil
}

// startDevBroker starts the embedded development broker and returns the
// address it listens on.
func (s *Service) startDevBroker(ctx context.Context) (addr string, err error) {
	d := s.cfg.DevBroker
	s.dev, err = devbroker.Start(ctx, devbroker.Config{
		Addr:         d.Addr,
		Topic:        s.cfg.Topic,
		Demo:         d.DemoData,
		DemoInterval: d.DemoInterval,
	}, s.log)
	if err != nil {
		return "", err
	}
	return s.dev.Addr(), nil
}

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
