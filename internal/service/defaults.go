package service

import (
	"cmp"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/history"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/quix"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/snapshot"
	"github.com/wsdest/wsdest/internal/view"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// withDefaults fills the settings that config leaves at zero when unset
// with the defaults of the parts that apply them, so that the parts get,
// and the start-up line shows, the values in force.
func withDefaults(c config.Config) config.Config {
	c.Decode.MaxRecordRows = cmp.Or(c.Decode.MaxRecordRows, quix.DefaultMaxRows)
	c.Decode.MaxDecodedBytes = cmp.Or(c.Decode.MaxDecodedBytes, quix.DefaultMaxDecoded)
	c.Clients.MaxQueueBytes = cmp.Or(c.Clients.MaxQueueBytes, hub.DefaultMaxQueueBytes)
	c.Clients.WriteTimeout = cmp.Or(c.Clients.WriteTimeout, hub.DefaultWriteTimeout)
	c.Clients.PingInterval = cmp.Or(c.Clients.PingInterval, hub.DefaultPingInterval)
	c.Clients.MaxMessageBytes = cmp.Or(c.Clients.MaxMessageBytes, wsframe.DefaultMaxMessage)
	c.Edge.MaxSubscriptionKeys = cmp.Or(c.Edge.MaxSubscriptionKeys, server.DefaultMaxSubscriptionKeys)
	c.Edge.MaxKeyLength = cmp.Or(c.Edge.MaxKeyLength, server.DefaultMaxKeyLength)
	c.Edge.MaxViews = cmp.Or(c.Edge.MaxViews, view.DefaultMaxViews)
	c.Edge.MaxViewsPerIP = cmp.Or(c.Edge.MaxViewsPerIP, view.DefaultMaxViewsPerOwner)
	c.History.CatchUpReaders = cmp.Or(c.History.CatchUpReaders, history.DefaultReadConcurrency)
	c.Snapshot.MaxKeys = cmp.Or(c.Snapshot.MaxKeys, snapshot.DefaultMaxKeys)
	return c
}

// Summary returns the configuration in force as slog key-value pairs for
// the start-up line (config.Config.Summary, with the parts' defaults).
func (s *Service) Summary() []any { return s.cfg.Summary() }
