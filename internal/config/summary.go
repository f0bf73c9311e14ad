package config

import (
	"cmp"
	"strings"
)

// Summary returns the configuration as slog key-value pairs for the
// start-up log line: on a Config whose zero settings hold the parts'
// defaults (service.Service.Summary), the effective configuration. Secrets
// are never included: credentials appear as counts or as "set".
func (c Config) Summary() []any {
	attrs := []any{
		"topic", c.Topic,
	}

	k := c.Kafka
	switch {
	case c.DevBroker.Enabled:
		attrs = append(attrs,
			"kafka", "dev broker",
			"brokers", cmp.Or(c.DevBroker.Addr, "default"),
			"demo_data", c.DevBroker.DemoData,
		)
		if c.DevBroker.DemoData {
			attrs = append(attrs, "demo_interval", c.DevBroker.DemoInterval.String())
		}
	case k.QuixCloud():
		attrs = append(attrs,
			"kafka", "quix cloud",
			"portal_api", k.Quix.PortalAPI,
			"workspace", k.Quix.WorkspaceID,
			"sdk_token", "set",
		)
	default:
		attrs = append(attrs,
			"kafka", "brokers",
			"brokers", strings.Join(k.Brokers, ","),
		)
		if k.SASL.Mechanism != "" {
			attrs = append(attrs, "sasl", k.SASL.Mechanism, "sasl_user", "set")
		} else {
			attrs = append(attrs, "sasl", "none")
		}
		attrs = append(attrs, "tls", k.TLS.Enabled)
		if k.TLS.CAFile != "" {
			attrs = append(attrs, "tls_ca_file", k.TLS.CAFile)
		}
		if k.TLS.InsecureSkipVerify {
			attrs = append(attrs, "tls_insecure_skip_verify", true)
		}
	}
	group := k.ConsumerGroup
	if group == "" {
		group = "none"
	}
	attrs = append(attrs,
		"consumer_group", group,
		"auto_offset_reset", string(k.AutoOffsetReset),
		"auth", c.Auth.Enabled,
		"api_keys", len(c.Auth.APIKeys),
		"basic_auth", c.Auth.Username != "",
		"api_keys_file", c.Auth.Scoped.KeysFile != "",
		"jwt", c.Auth.Scoped.JWT.On(),
		"format", c.Decode.Format,
		"envelope", c.Decode.Envelope,
		"max_record_rows", c.Decode.MaxRecordRows,
		"compression", c.Clients.Compression,
		"slow_clients", c.Clients.SlowClients,
		"max_decoded_bytes", c.Decode.MaxDecodedBytes,
		"max_queue_bytes", c.Clients.MaxQueueBytes,
		"write_timeout", c.Clients.WriteTimeout.String(),
		"ping_interval", c.Clients.PingInterval.String(),
		"max_client_message", c.Clients.MaxMessageBytes,
		"socket_send_buffer", c.Clients.SocketSendBuffer,
		"shutdown_timeout", c.Server.ShutdownTimeout.String(),
		"tls", c.Edge.TLS(),
		"allowed_origins", cmp.Or(strings.Join(c.Edge.AllowedOrigins, ","), "any (ALLOWED_ORIGINS unset)"),
		"log_level", c.Log.Level.String(),
		"log_format", string(c.Log.Format),
	)
	attrs = append(attrs,
		"history_bytes", c.History.MaxBytes,
		"history_max_age", c.History.MaxAge.String(),
		"catchup_readers", c.History.CatchUpReaders,
		"sse_heartbeat", c.History.SSEHeartbeat.String(),
	)
	lookback := c.Snapshot.Lookback.String()
	if c.Snapshot.Earliest {
		lookback = SnapshotEarliest
	}
	attrs = append(attrs, "snapshot", c.Snapshot.On, "snapshot_max_keys", c.Snapshot.MaxKeys, "snapshot_lookback", lookback, "snapshot_seed_timeout", c.Snapshot.SeedTimeout.String())
	return attrs
}
