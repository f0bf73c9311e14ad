package config

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// TestDefaults: an empty environment gives the service's own defaults, and
// zero for the settings whose defaults are the parts' (service applies
// them; see its TestPartDefaults).
func TestDefaults(t *testing.T) {
	c, err := FromEnv(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Topic:  "input",
		Server: Server{Host: "", Port: 8000, ShutdownTimeout: 5 * time.Second},
		Kafka:  Kafka{AutoOffsetReset: OffsetLatest},
		DevBroker: DevBroker{
			Enabled:      true,
			DemoData:     true,
			DemoInterval: 250 * time.Millisecond,
		},
		Decode:   Decode{Format: FormatAuto},
		Clients:  Clients{SocketSendBuffer: 128 << 10, SlowClients: SlowClose},
		Log:      Log{Level: slog.LevelInfo, Format: LogText},
		Viewer:   true,
		History:  History{MaxBytes: 64 << 20, SSEHeartbeat: 15 * time.Second},
		Snapshot: Snapshot{On: true, Lookback: 24 * time.Hour, SeedTimeout: 5 * time.Minute},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if got := c.Server.Addr(); got != ":8000" {
		t.Errorf("Addr() = %q, want :8000", got)
	}
}

// broker is the minimal environment that leaves dev-broker mode.
var broker = map[string]string{"Quix__Broker__Address": "kafka:9092", "input": "t"}

func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestGoodValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(c Config) any // returns the value under test
		want  any
	}{
		// Topic and server.
		{"topic", with(nil, "input", "sensors.v1_x-y"), func(c Config) any { return c.Topic }, "sensors.v1_x-y"},
		{"topic blank is default with dev broker", with(nil, "input", "  "), func(c Config) any { return c.Topic }, "input"},
		{"host", with(nil, "HOST", "127.0.0.1"), func(c Config) any { return c.Server.Addr() }, "127.0.0.1:8000"},
		{"port", with(nil, "PORT", "9000"), func(c Config) any { return c.Server.Port }, 9000},
		{"port zero", with(nil, "PORT", "0"), func(c Config) any { return c.Server.Port }, 0},
		{"port max", with(nil, "PORT", "65535"), func(c Config) any { return c.Server.Port }, 65535},
		{"port spaces", with(nil, "PORT", " 81 "), func(c Config) any { return c.Server.Port }, 81},
		{"ipv6 host", with(nil, "HOST", "::1", "PORT", "1"), func(c Config) any { return c.Server.Addr() }, "[::1]:1"},
		{"shutdown timeout", with(nil, "SHUTDOWN_TIMEOUT", "1m30s"), func(c Config) any { return c.Server.ShutdownTimeout }, 90 * time.Second},

		// Auth.
		{"api keys trimmed, empties dropped", with(nil, "AUTH_API_KEYS", " a, b ,,c,"), func(c Config) any { return c.Auth.APIKeys }, []string{"a", "b", "c"}},
		{"api keys turn auth on", with(nil, "AUTH_API_KEYS", "k"), func(c Config) any { return c.Auth.Enabled }, true},
		{"basic turns auth on", with(nil, "WS_USERNAME", "u", "WS_PASSWORD", "p"), func(c Config) any { return c.Auth.Enabled }, true},
		{"password verbatim", with(nil, "WS_USERNAME", "u", "WS_PASSWORD", " p w "), func(c Config) any { return c.Auth.Password }, " p w "},
		{"auth enabled true", with(nil, "AUTH_ENABLED", "TRUE", "AUTH_API_KEYS", "k"), func(c Config) any { return c.Auth.Enabled }, true},
		{"auth enabled yes", with(nil, "AUTH_ENABLED", "Yes", "AUTH_API_KEYS", "k"), func(c Config) any { return c.Auth.Enabled }, true},
		{"auth enabled 1", with(nil, "AUTH_ENABLED", "1", "WS_USERNAME", "u", "WS_PASSWORD", "p"), func(c Config) any { return c.Auth.Enabled }, true},
		{"auth disabled", with(nil, "AUTH_ENABLED", "false"), func(c Config) any { return c.Auth.Enabled }, false},
		{"auth disabled no", with(nil, "AUTH_ENABLED", "NO", "AUTH_API_KEYS", "k"), func(c Config) any { return c.Auth.Enabled }, false},
		{"auth disabled 0", with(nil, "AUTH_ENABLED", "0"), func(c Config) any { return c.Auth.Enabled }, false},
		{"auth unset without credentials", nil, func(c Config) any { return c.Auth.Enabled }, false},

		// Listener protection.
		{"tls pair", with(nil, "TLS_CERT_FILE", "/c.pem", "TLS_KEY_FILE", "/k.pem"), func(c Config) any { return [2]string{c.Edge.TLSCertFile, c.Edge.TLSKeyFile} }, [2]string{"/c.pem", "/k.pem"}},
		{"origins", with(nil, "ALLOWED_ORIGINS", " https://App.example.com , https://*.example.com,http://localhost:3000,"), func(c Config) any { return c.Edge.AllowedOrigins }, []string{"https://app.example.com", "https://*.example.com", "http://localhost:3000"}},
		{"max connections", with(nil, "MAX_CONNECTIONS", "5000"), func(c Config) any { return c.Edge.MaxConnections }, 5000},
		{"max per ip", with(nil, "MAX_CONNECTIONS_PER_IP", "10"), func(c Config) any { return c.Edge.MaxConnectionsPerIP }, 10},
		{"trusted proxies", with(nil, "TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.5,::1"), func(c Config) any { return fmt.Sprint(c.Edge.TrustedProxies) }, "[10.0.0.0/8 192.168.1.5/32 ::1/128]"},
		{"subscription limits", with(nil, "MAX_SUBSCRIPTION_KEYS", "8", "MAX_KEY_LENGTH", "32"), func(c Config) any { return [2]int{c.Edge.MaxSubscriptionKeys, c.Edge.MaxKeyLength} }, [2]int{8, 32}},
		{"max views", with(nil, "MAX_VIEWS", "5"), func(c Config) any { return c.Edge.MaxViews }, 5},
		{"max views per ip", with(nil, "MAX_VIEWS_PER_IP", "3"), func(c Config) any { return c.Edge.MaxViewsPerIP }, 3},
		{"metrics addr", with(nil, "METRICS_ADDR", "127.0.0.1:9100"), func(c Config) any { return c.MetricsAddr }, "127.0.0.1:9100"},

		// Kafka brokers.
		{"broker address", with(nil, "Quix__Broker__Address", "a:1, b:2 ,", "input", "t"), func(c Config) any { return c.Kafka.Brokers }, []string{"a:1", "b:2"}},
		{"KAFKA_BROKERS alias", with(nil, "KAFKA_BROKERS", "a:1", "input", "t"), func(c Config) any { return c.Kafka.Brokers }, []string{"a:1"}},
		{"Quix__Broker__Address wins over alias", with(nil, "Quix__Broker__Address", "a:1", "KAFKA_BROKERS", "b:2", "input", "t"), func(c Config) any { return c.Kafka.Brokers }, []string{"a:1"}},
		{"ipv6 broker", with(broker, "Quix__Broker__Address", "[::1]:9092"), func(c Config) any { return c.Kafka.Brokers }, []string{"[::1]:9092"}},
		{"broker disables dev broker", broker, func(c Config) any { return c.DevBroker.Enabled }, false},
		{"sasl plain", with(broker, "KAFKA_SASL_MECHANISM", "plain", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p"), func(c Config) any { return c.Kafka.SASL }, SASL{"PLAIN", "u", "p"}},
		{"sasl scram-256", with(broker, "KAFKA_SASL_MECHANISM", "SCRAM-SHA-256", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p"), func(c Config) any { return c.Kafka.SASL.Mechanism }, "SCRAM-SHA-256"},
		{"sasl scram-512", with(broker, "KAFKA_SASL_MECHANISM", "scram-sha-512", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p"), func(c Config) any { return c.Kafka.SASL.Mechanism }, "SCRAM-SHA-512"},
		{"tls", with(broker, "KAFKA_TLS", "true"), func(c Config) any { return c.Kafka.TLS }, TLS{Enabled: true}},
		{"tls off", with(broker, "KAFKA_TLS", "false"), func(c Config) any { return c.Kafka.TLS }, TLS{}},
		{"ca file implies tls", with(broker, "KAFKA_TLS_CA_FILE", "/ca.pem"), func(c Config) any { return c.Kafka.TLS }, TLS{Enabled: true, CAFile: "/ca.pem"}},
		{"insecure", with(broker, "KAFKA_TLS", "yes", "KAFKA_TLS_INSECURE_SKIP_VERIFY", "1"), func(c Config) any { return c.Kafka.TLS }, TLS{Enabled: true, InsecureSkipVerify: true}},
		{"consumer group", with(broker, "Quix__Consumer_Group", "g"), func(c Config) any { return c.Kafka.ConsumerGroup }, "g"},
		{"CONSUMER_GROUP alias", with(broker, "CONSUMER_GROUP", "g2"), func(c Config) any { return c.Kafka.ConsumerGroup }, "g2"},
		{"Quix__Consumer_Group wins", with(broker, "Quix__Consumer_Group", "g", "CONSUMER_GROUP", "g2"), func(c Config) any { return c.Kafka.ConsumerGroup }, "g"},
		{"no group by default", broker, func(c Config) any { return c.Kafka.ConsumerGroup }, ""},
		{"earliest", with(nil, "AUTO_OFFSET_RESET", "Earliest"), func(c Config) any { return c.Kafka.AutoOffsetReset }, OffsetEarliest},
		{"latest", with(nil, "AUTO_OFFSET_RESET", "latest"), func(c Config) any { return c.Kafka.AutoOffsetReset }, OffsetLatest},

		// Quix Cloud.
		{"quix cloud", with(nil, "Quix__Sdk__Token", "tok", "Quix__Portal__Api", "https://portal-api.platform.quix.io/", "Quix__Workspace__Id", "ws", "input", "t"),
			func(c Config) any { return []any{c.Kafka.QuixCloud(), c.DevBroker.Enabled, c.Kafka.Quix} }, []any{true, false, Quix{"tok", "https://portal-api.platform.quix.io/", "ws"}}},
		{"http portal", with(nil, "Quix__Sdk__Token", "tok", "Quix__Portal__Api", "http://127.0.0.1:8080", "Quix__Workspace__Id", "ws", "input", "t"),
			func(c Config) any { return c.Kafka.Quix.PortalAPI }, "http://127.0.0.1:8080"},
		{"broker wins over token", with(broker, "Quix__Sdk__Token", "tok"), func(c Config) any { return c.Kafka.QuixCloud() }, false},

		// Dev broker.
		{"dev broker addr", with(nil, "DEV_BROKER_ADDR", "0.0.0.0:19092"), func(c Config) any { return c.DevBroker.Addr }, "0.0.0.0:19092"},
		{"dev broker port 0", with(nil, "DEV_BROKER_ADDR", "127.0.0.1:0"), func(c Config) any { return c.DevBroker.Addr }, "127.0.0.1:0"},
		{"demo data off", with(nil, "DEMO_DATA", "false"), func(c Config) any { return c.DevBroker.DemoData }, false},
		{"demo interval", with(nil, "DEMO_INTERVAL", "1s"), func(c Config) any { return c.DevBroker.DemoInterval }, time.Second},

		// Decoding.
		{"format raw", with(nil, "FORMAT", "RAW"), func(c Config) any { return c.Decode.Format }, "raw"},
		{"format auto", with(nil, "FORMAT", "auto"), func(c Config) any { return c.Decode.Format }, "auto"},
		{"envelope", with(nil, "ENVELOPE", "true"), func(c Config) any { return c.Decode.Envelope }, true},

		// Client limits.
		{"history bytes", with(nil, "HISTORY_BYTES", "16MiB"), func(c Config) any { return c.History.MaxBytes }, 16 << 20},
		{"history off", with(nil, "HISTORY_BYTES", "0"), func(c Config) any { return c.History.MaxBytes }, 0},
		{"history age", with(nil, "HISTORY_MAX_AGE", "10m"), func(c Config) any { return c.History.MaxAge }, 10 * time.Minute},
		{"catch-up readers", with(nil, "CATCHUP_READERS", "2"), func(c Config) any { return c.History.CatchUpReaders }, 2},
		{"sse heartbeat", with(nil, "SSE_HEARTBEAT", "5s"), func(c Config) any { return c.History.SSEHeartbeat }, 5 * time.Second},
		{"snapshot off", with(nil, "SNAPSHOT", "false"), func(c Config) any { return c.Snapshot.On }, false},
		{"snapshot max keys", with(nil, "SNAPSHOT_MAX_KEYS", "500"), func(c Config) any { return c.Snapshot.MaxKeys }, 500},
		{"snapshot lookback", with(nil, "SNAPSHOT_LOOKBACK", "90m"), func(c Config) any { return c.Snapshot.Lookback }, 90 * time.Minute},
		{"snapshot earliest", with(nil, "SNAPSHOT_LOOKBACK", " Earliest"), func(c Config) any { return c.Snapshot }, Snapshot{On: true, Earliest: true, SeedTimeout: 5 * time.Minute}},
		{"snapshot seed timeout", with(nil, "SNAPSHOT_SEED_TIMEOUT", "90s"), func(c Config) any { return c.Snapshot.SeedTimeout }, 90 * time.Second},
		{"queue bytes plain", with(nil, "MAX_QUEUE_BYTES", "1000"), func(c Config) any { return c.Clients.MaxQueueBytes }, 1000},
		{"queue bytes KiB", with(nil, "MAX_QUEUE_BYTES", "64KiB"), func(c Config) any { return c.Clients.MaxQueueBytes }, 64 << 10},
		{"queue bytes MiB", with(nil, "MAX_QUEUE_BYTES", "8 MiB"), func(c Config) any { return c.Clients.MaxQueueBytes }, 8 << 20},
		{"queue bytes KB", with(nil, "MAX_QUEUE_BYTES", "2KB"), func(c Config) any { return c.Clients.MaxQueueBytes }, 2000},
		{"queue bytes MB", with(nil, "MAX_QUEUE_BYTES", "3mb"), func(c Config) any { return c.Clients.MaxQueueBytes }, 3000000},
		{"queue bytes GiB", with(nil, "MAX_QUEUE_BYTES", "1GiB"), func(c Config) any { return c.Clients.MaxQueueBytes }, 1 << 30},
		{"queue bytes B", with(nil, "MAX_QUEUE_BYTES", "512B"), func(c Config) any { return c.Clients.MaxQueueBytes }, 512},
		{"write timeout", with(nil, "WRITE_TIMEOUT", "500ms"), func(c Config) any { return c.Clients.WriteTimeout }, 500 * time.Millisecond},
		{"ping interval", with(nil, "PING_INTERVAL", "5s"), func(c Config) any { return c.Clients.PingInterval }, 5 * time.Second},
		{"max client message", with(nil, "MAX_CLIENT_MESSAGE", "1KiB"), func(c Config) any { return c.Clients.MaxMessageBytes }, 1024},
		{"socket send buffer", with(nil, "SOCKET_SEND_BUFFER", "256KiB"), func(c Config) any { return c.Clients.SocketSendBuffer }, 256 << 10},
		{"socket send buffer 0", with(nil, "SOCKET_SEND_BUFFER", "0"), func(c Config) any { return c.Clients.SocketSendBuffer }, 0},
		{"pprof addr", with(nil, "PPROF_ADDR", "127.0.0.1:6060"), func(c Config) any { return c.PprofAddr }, "127.0.0.1:6060"},
		{"viewer default", nil, func(c Config) any { return c.Viewer }, true},
		{"viewer off", with(nil, "VIEWER", "no"), func(c Config) any { return c.Viewer }, false},
		{"public url", with(nil, "Quix__Deployment__Network__PublicUrl", "https://ws-x.deployments.quix.io"), func(c Config) any { return c.PublicURL }, "https://ws-x.deployments.quix.io"},
		{"compression", with(nil, "COMPRESSION", "true"), func(c Config) any { return c.Clients.Compression }, true},
		{"slow clients conflate", with(nil, "SLOW_CLIENTS", "conflate"), func(c Config) any { return c.Clients.SlowClients }, SlowConflate},
		{"slow clients close", with(nil, "SLOW_CLIENTS", "Close"), func(c Config) any { return c.Clients.SlowClients }, SlowClose},
		{"max record rows", with(nil, "MAX_RECORD_ROWS", "1000"), func(c Config) any { return c.Decode.MaxRecordRows }, 1000},
		{"max decoded bytes", with(nil, "MAX_DECODED_BYTES", "2MiB"), func(c Config) any { return c.Decode.MaxDecodedBytes }, 2 << 20},

		// Logging.
		{"log debug", with(nil, "LOG_LEVEL", "DEBUG"), func(c Config) any { return c.Log.Level }, slog.LevelDebug},
		{"log warn", with(nil, "LOG_LEVEL", "warn"), func(c Config) any { return c.Log.Level }, slog.LevelWarn},
		{"log warning", with(nil, "LOG_LEVEL", "warning"), func(c Config) any { return c.Log.Level }, slog.LevelWarn},
		{"log error", with(nil, "LOG_LEVEL", "error"), func(c Config) any { return c.Log.Level }, slog.LevelError},
		{"log json", with(nil, "LOG_FORMAT", "JSON"), func(c Config) any { return c.Log.Format }, LogJSON},
		{"log text", with(nil, "LOG_FORMAT", "text"), func(c Config) any { return c.Log.Format }, LogText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(envOf(tt.env))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// secretVars are never to be echoed in an error message.
var secretVars = []string{"AUTH_API_KEYS", "AUTH_JWT_SECRET", "WS_USERNAME", "WS_PASSWORD", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "Quix__Sdk__Token"}

func TestBadValues(t *testing.T) {
	quix := map[string]string{"Quix__Sdk__Token": "s3cr3t-token", "Quix__Portal__Api": "https://p", "Quix__Workspace__Id": "ws", "input": "t"}
	tests := []struct {
		env     map[string]string
		varName string
		want    string
	}{
		{with(nil, "input", "bad topic"), "input", `input: "bad topic" is not a valid topic name (want 1-249 letters, digits, '.', '_' or '-')`},
		{with(nil, "input", strings.Repeat("x", 250)), "input", "input: " + quote(strings.Repeat("x", 250)) + " is not a valid topic name (want 1-249 letters, digits, '.', '_' or '-')"},
		{with(broker, "input", ""), "input", `input: topic name is empty (want the name of the topic to stream)`},
		{with(quix, "input", ""), "input", `input: topic name is empty (want the name of the topic to stream)`},

		{with(nil, "MAX_RECORD_ROWS", "many"), "MAX_RECORD_ROWS", `MAX_RECORD_ROWS: "many" is not a whole number`},
		{with(nil, "MAX_RECORD_ROWS", "0"), "MAX_RECORD_ROWS", `MAX_RECORD_ROWS: "0" is too small (want at least 1)`},
		{with(nil, "MAX_DECODED_BYTES", "0"), "MAX_DECODED_BYTES", `MAX_DECODED_BYTES: "0" is too small (want at least 1)`},
		{with(nil, "PPROF_ADDR", "6060"), "PPROF_ADDR", `PPROF_ADDR: "6060" is not host:port (want e.g. 127.0.0.1:6060)`},
		{with(nil, "PORT", "abc"), "PORT", `PORT: "abc" is not a port number (want 0-65535)`},
		{with(nil, "PORT", "-1"), "PORT", `PORT: "-1" is not a port number (want 0-65535)`},
		{with(nil, "PORT", "65536"), "PORT", `PORT: "65536" is not a port number (want 0-65535)`},
		{with(nil, "PORT", "80\n81"), "PORT", `PORT: "80\n81" is not a port number (want 0-65535)`},
		{with(nil, "SHUTDOWN_TIMEOUT", "5"), "SHUTDOWN_TIMEOUT", `SHUTDOWN_TIMEOUT: "5" is not a duration (want a Go duration such as 5s)`},
		{with(nil, "SHUTDOWN_TIMEOUT", "0s"), "SHUTDOWN_TIMEOUT", `SHUTDOWN_TIMEOUT: "0s" is not positive (want a duration greater than 0, such as 5s)`},
		{with(nil, "WRITE_TIMEOUT", "10"), "WRITE_TIMEOUT", `WRITE_TIMEOUT: "10" is not a duration (want a Go duration such as 10s)`},
		{with(nil, "PING_INTERVAL", "-1s"), "PING_INTERVAL", `PING_INTERVAL: "-1s" is not positive (want a duration greater than 0, such as 30s)`},
		{with(nil, "HISTORY_MAX_AGE", "1 day"), "HISTORY_MAX_AGE", `HISTORY_MAX_AGE: "1 day" is not a duration (want a Go duration such as 1h0m0s)`},
		{with(nil, "FORMAT", "json"), "FORMAT", `FORMAT: "json" is not a format (want auto or raw)`},
		{with(nil, "MAX_QUEUE_BYTES", "0"), "MAX_QUEUE_BYTES", `MAX_QUEUE_BYTES: "0" is too small (want at least 1)`},
		{with(nil, "CATCHUP_READERS", "0"), "CATCHUP_READERS", `CATCHUP_READERS: "0" is too small (want at least 1)`},

		{with(nil, "TLS_CERT_FILE", "/c.pem"), "TLS_CERT_FILE", `TLS_CERT_FILE is set but TLS_KEY_FILE is empty (set both or neither)`},
		{with(nil, "TLS_KEY_FILE", "/k.pem"), "TLS_KEY_FILE", `TLS_KEY_FILE is set but TLS_CERT_FILE is empty (set both or neither)`},
		{with(nil, "ALLOWED_ORIGINS", "example.com"), "ALLOWED_ORIGINS", `ALLOWED_ORIGINS: "example.com" is not an origin (want scheme://host[:port], or https://*.example.com for subdomains)`},
		{with(nil, "ALLOWED_ORIGINS", "https://example.com/app"), "ALLOWED_ORIGINS", `ALLOWED_ORIGINS: "https://example.com/app" is not an origin (want scheme://host[:port], or https://*.example.com for subdomains)`},
		{with(nil, "ALLOWED_ORIGINS", "https://a.*.com"), "ALLOWED_ORIGINS", `ALLOWED_ORIGINS: "https://a.*.com" is not an origin (want scheme://host[:port], or https://*.example.com for subdomains)`},
		{with(nil, "ALLOWED_ORIGINS", ","), "ALLOWED_ORIGINS", `ALLOWED_ORIGINS is set but holds no origin (want a comma-separated list such as https://app.example.com)`},
		{with(nil, "MAX_CONNECTIONS", "0"), "MAX_CONNECTIONS", `MAX_CONNECTIONS: "0" is too small (want at least 1)`},
		{with(nil, "MAX_CONNECTIONS_PER_IP", "x"), "MAX_CONNECTIONS_PER_IP", `MAX_CONNECTIONS_PER_IP: "x" is not a whole number`},
		{with(nil, "TRUSTED_PROXIES", "10.0.0.0/33"), "TRUSTED_PROXIES", `TRUSTED_PROXIES: "10.0.0.0/33" is not a CIDR or an address (want e.g. 10.0.0.0/8,192.168.1.5)`},
		{with(nil, "MAX_KEY_LENGTH", "0"), "MAX_KEY_LENGTH", `MAX_KEY_LENGTH: "0" is too small (want at least 1)`},
		{with(nil, "METRICS_ADDR", "9100"), "METRICS_ADDR", `METRICS_ADDR: "9100" is not host:port (want e.g. 127.0.0.1:9100)`},

		{with(nil, "AUTH_ENABLED", "maybe"), "AUTH_ENABLED", `AUTH_ENABLED: "maybe" is not a boolean (want true/false, yes/no or 1/0)`},
		{with(nil, "AUTH_ENABLED", "true"), "AUTH_ENABLED", `AUTH_ENABLED=true but no credential is configured (set AUTH_API_KEYS, WS_USERNAME and WS_PASSWORD, AUTH_API_KEYS_FILE, or a JWT key)`},
		{with(nil, "AUTH_API_KEYS", " , ,"), "AUTH_API_KEYS", `AUTH_API_KEYS is set but holds no key (want a comma-separated list of keys)`},
		{with(nil, "WS_USERNAME", "alice"), "WS_USERNAME", `WS_USERNAME is set but WS_PASSWORD is empty (set both or neither)`},
		{with(nil, "WS_PASSWORD", "hunter2"), "WS_PASSWORD", `WS_PASSWORD is set but WS_USERNAME is empty (set both or neither)`},
		{with(nil, "AUTH_ENABLED", "true", "WS_PASSWORD", "hunter2"), "WS_PASSWORD", `WS_PASSWORD is set but WS_USERNAME is empty (set both or neither)`},

		{with(nil, "Quix__Broker__Address", "localhost", "input", "t"), "Quix__Broker__Address", `Quix__Broker__Address: "localhost" is not host:port (want host:port[,host:port...] with a port 1-65535)`},
		{with(nil, "Quix__Broker__Address", "a:1,b:x", "input", "t"), "Quix__Broker__Address", `Quix__Broker__Address: "b:x" is not host:port (want host:port[,host:port...] with a port 1-65535)`},
		{with(nil, "Quix__Broker__Address", "a:0", "input", "t"), "Quix__Broker__Address", `Quix__Broker__Address: "a:0" is not host:port (want host:port[,host:port...] with a port 1-65535)`},
		{with(nil, "Quix__Broker__Address", ":9092", "input", "t"), "Quix__Broker__Address", `Quix__Broker__Address: ":9092" is not host:port (want host:port[,host:port...] with a port 1-65535)`},
		{with(nil, "Quix__Broker__Address", ",,", "input", "t"), "Quix__Broker__Address", `Quix__Broker__Address: ",," holds no address (want host:port[,host:port...])`},
		{with(nil, "KAFKA_BROKERS", "kafka", "input", "t"), "KAFKA_BROKERS", `KAFKA_BROKERS: "kafka" is not host:port (want host:port[,host:port...] with a port 1-65535)`},

		{with(broker, "KAFKA_SASL_MECHANISM", "GSSAPI"), "KAFKA_SASL_MECHANISM", `KAFKA_SASL_MECHANISM: "GSSAPI" is not supported (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`},
		{with(broker, "KAFKA_SASL_MECHANISM", "PLAIN", "KAFKA_SASL_PASSWORD", "pw-secret"), "KAFKA_SASL_USERNAME", `KAFKA_SASL_MECHANISM is set but KAFKA_SASL_USERNAME is empty`},
		{with(broker, "KAFKA_SASL_MECHANISM", "PLAIN", "KAFKA_SASL_USERNAME", "bob"), "KAFKA_SASL_PASSWORD", `KAFKA_SASL_MECHANISM is set but KAFKA_SASL_PASSWORD is empty`},
		{with(broker, "KAFKA_SASL_USERNAME", "bob", "KAFKA_SASL_PASSWORD", "pw-secret"), "KAFKA_SASL_MECHANISM", `KAFKA_SASL_USERNAME is set but KAFKA_SASL_MECHANISM is empty (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`},
		{with(broker, "KAFKA_SASL_PASSWORD", "pw-secret"), "KAFKA_SASL_MECHANISM", `KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is empty (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`},
		{with(broker, "KAFKA_TLS", "on"), "KAFKA_TLS", `KAFKA_TLS: "on" is not a boolean (want true/false, yes/no or 1/0)`},
		{with(broker, "KAFKA_TLS", "false", "KAFKA_TLS_CA_FILE", "/ca.pem"), "KAFKA_TLS_CA_FILE", `KAFKA_TLS_CA_FILE is set but KAFKA_TLS=false (remove one of them)`},
		{with(broker, "KAFKA_TLS_INSECURE_SKIP_VERIFY", "true"), "KAFKA_TLS_INSECURE_SKIP_VERIFY", `KAFKA_TLS_INSECURE_SKIP_VERIFY=true but TLS is off (set KAFKA_TLS=true)`},
		{with(broker, "KAFKA_TLS", "1", "KAFKA_TLS_INSECURE_SKIP_VERIFY", "sure"), "KAFKA_TLS_INSECURE_SKIP_VERIFY", `KAFKA_TLS_INSECURE_SKIP_VERIFY: "sure" is not a boolean (want true/false, yes/no or 1/0)`},
		{with(broker, "AUTO_OFFSET_RESET", "none"), "AUTO_OFFSET_RESET", `AUTO_OFFSET_RESET: "none" is not supported (want latest or earliest)`},

		{with(quix, "Quix__Portal__Api", ""), "Quix__Portal__Api", `Quix__Portal__Api is empty but Quix__Sdk__Token is set (want the Portal API URL, e.g. https://portal-api.platform.quix.io)`},
		{with(quix, "Quix__Portal__Api", "ftp://x"), "Quix__Portal__Api", `Quix__Portal__Api: "ftp://x" is not an http or https URL (want e.g. https://portal-api.platform.quix.io)`},
		{with(quix, "Quix__Portal__Api", "portal-api.platform.quix.io"), "Quix__Portal__Api", `Quix__Portal__Api: "portal-api.platform.quix.io" is not an http or https URL (want e.g. https://portal-api.platform.quix.io)`},
		{with(quix, "Quix__Portal__Api", "https://"), "Quix__Portal__Api", `Quix__Portal__Api: "https://" is not an http or https URL (want e.g. https://portal-api.platform.quix.io)`},
		{with(quix, "Quix__Workspace__Id", ""), "Quix__Workspace__Id", `Quix__Workspace__Id is empty but Quix__Sdk__Token is set (want the workspace id)`},

		{with(nil, "DEV_BROKER_ADDR", "9092"), "DEV_BROKER_ADDR", `DEV_BROKER_ADDR: "9092" is not host:port (want e.g. 127.0.0.1:9092)`},
		{with(nil, "DEMO_DATA", "si"), "DEMO_DATA", `DEMO_DATA: "si" is not a boolean (want true/false, yes/no or 1/0)`},
		{with(nil, "DEMO_INTERVAL", "fast"), "DEMO_INTERVAL", `DEMO_INTERVAL: "fast" is not a duration (want a Go duration such as 250ms)`},
		{with(nil, "DEMO_INTERVAL", "-1s"), "DEMO_INTERVAL", `DEMO_INTERVAL: "-1s" is not positive (want a duration greater than 0, such as 250ms)`},

		{with(nil, "FORMAT", "xml"), "FORMAT", `FORMAT: "xml" is not a format (want auto or raw)`},
		{with(nil, "SLOW_CLIENTS", "drop"), "SLOW_CLIENTS", `SLOW_CLIENTS: "drop" is not a slow-client policy (want close or conflate)`},
		{with(nil, "VIEWER", "maybe"), "VIEWER", `VIEWER: "maybe" is not a boolean (want true/false, yes/no or 1/0)`},
		{with(nil, "ENVELOPE", "2"), "ENVELOPE", `ENVELOPE: "2" is not a boolean (want true/false, yes/no or 1/0)`},

		{with(nil, "HISTORY_BYTES", "lots"), "HISTORY_BYTES", `HISTORY_BYTES: "lots" is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)`},
		{with(nil, "HISTORY_MAX_AGE", "-1m"), "HISTORY_MAX_AGE", `HISTORY_MAX_AGE: "-1m" is not positive (want a duration greater than 0, such as 1h0m0s)`},
		{with(nil, "CATCHUP_READERS", "0"), "CATCHUP_READERS", `CATCHUP_READERS: "0" is too small (want at least 1)`},
		{with(nil, "SSE_HEARTBEAT", "soon"), "SSE_HEARTBEAT", `SSE_HEARTBEAT: "soon" is not a duration (want a Go duration such as 15s)`},
		{with(nil, "SNAPSHOT", "sometimes"), "SNAPSHOT", `SNAPSHOT: "sometimes" is not a boolean (want true/false, yes/no or 1/0)`},
		{with(nil, "SNAPSHOT_MAX_KEYS", "0"), "SNAPSHOT_MAX_KEYS", `SNAPSHOT_MAX_KEYS: "0" is too small (want at least 1)`},
		{with(nil, "SNAPSHOT_LOOKBACK", "a day"), "SNAPSHOT_LOOKBACK", `SNAPSHOT_LOOKBACK: "a day" is not a positive duration or earliest (want e.g. 24h, 30m, or earliest for everything Kafka holds)`},
		{with(nil, "SNAPSHOT_SEED_TIMEOUT", "0s"), "SNAPSHOT_SEED_TIMEOUT", `SNAPSHOT_SEED_TIMEOUT: "0s" is not positive (want a duration greater than 0, such as 5m0s)`},
		{with(nil, "SNAPSHOT_LOOKBACK", "-1h"), "SNAPSHOT_LOOKBACK", `SNAPSHOT_LOOKBACK: "-1h" is not a positive duration or earliest (want e.g. 24h, 30m, or earliest for everything Kafka holds)`},
		{with(nil, "MAX_QUEUE_BYTES", "4XB"), "MAX_QUEUE_BYTES", `MAX_QUEUE_BYTES: "4XB" is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)`},
		{with(nil, "MAX_QUEUE_BYTES", "1.5MiB"), "MAX_QUEUE_BYTES", `MAX_QUEUE_BYTES: "1.5MiB" is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)`},
		{with(nil, "MAX_QUEUE_BYTES", "MiB"), "MAX_QUEUE_BYTES", `MAX_QUEUE_BYTES: "MiB" is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)`},
		{with(nil, "MAX_QUEUE_BYTES", "-5"), "MAX_QUEUE_BYTES", `MAX_QUEUE_BYTES: "-5" is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)`},
		{with(nil, "MAX_QUEUE_BYTES", "99999999999GiB"), "MAX_QUEUE_BYTES", `MAX_QUEUE_BYTES: "99999999999GiB" is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)`},
		{with(nil, "MAX_QUEUE_BYTES", "0"), "MAX_QUEUE_BYTES", `MAX_QUEUE_BYTES: "0" is too small (want at least 1)`},
		{with(nil, "WRITE_TIMEOUT", "10"), "WRITE_TIMEOUT", `WRITE_TIMEOUT: "10" is not a duration (want a Go duration such as 10s)`},
		{with(nil, "WRITE_TIMEOUT", "0"), "WRITE_TIMEOUT", `WRITE_TIMEOUT: "0" is not positive (want a duration greater than 0, such as 10s)`},
		{with(nil, "PING_INTERVAL", "soon"), "PING_INTERVAL", `PING_INTERVAL: "soon" is not a duration (want a Go duration such as 30s)`},
		{with(nil, "MAX_CLIENT_MESSAGE", "0KiB"), "MAX_CLIENT_MESSAGE", `MAX_CLIENT_MESSAGE: "0KiB" is too small (want at least 1)`},
		{with(nil, "SOCKET_SEND_BUFFER", "big"), "SOCKET_SEND_BUFFER", `SOCKET_SEND_BUFFER: "big" is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)`},

		{with(nil, "LOG_LEVEL", "verbose"), "LOG_LEVEL", `LOG_LEVEL: "verbose" is not a log level (want debug, info, warn or error)`},
		{with(nil, "LOG_FORMAT", "xml"), "LOG_FORMAT", `LOG_FORMAT: "xml" is not a log format (want text or json)`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := FromEnv(envOf(tt.env))
			if err == nil {
				t.Fatal("FromEnv succeeded, want an error")
			}
			msg := err.Error()
			if msg != tt.want {
				t.Errorf("error:\n got %s\nwant %s", msg, tt.want)
			}
			if !strings.Contains(msg, tt.varName) {
				t.Errorf("error %q does not name %s", msg, tt.varName)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error %q spans lines", msg)
			}
			for _, s := range secretVars {
				if v := tt.env[s]; v != "" && strings.Contains(msg, v) {
					t.Errorf("error %q echoes the value of %s", msg, s)
				}
			}
		})
	}
}

func TestSeveralBadValuesOneLine(t *testing.T) {
	_, err := FromEnv(envOf(map[string]string{"PORT": "x", "LOG_LEVEL": "loud", "WS_PASSWORD": "pw"}))
	if err == nil {
		t.Fatal("want an error")
	}
	want := `PORT: "x" is not a port number (want 0-65535); WS_PASSWORD is set but WS_USERNAME is empty (set both or neither); LOG_LEVEL: "loud" is not a log level (want debug, info, warn or error)`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"none", broker, nil},
		{"auth off with credentials", with(nil, "AUTH_ENABLED", "false", "AUTH_API_KEYS", "k"),
			[]string{"auth disabled by AUTH_ENABLED=false although credentials are set"}},
		{"auth off without credentials", with(nil, "AUTH_ENABLED", "false"), nil},
		// Any issuer's token for any service whose keys the set holds
		// would be accepted.
		{"jwks without audience", with(broker, "AUTH_JWKS_URL", "https://id.example.com/jwks.json"),
			[]string{"AUTH_JWKS_URL without AUTH_JWT_AUDIENCE: a token the key set's issuer signed for any other service is accepted too"}},
		{"jwks with audience", with(broker, "AUTH_JWKS_URL", "https://id.example.com/jwks.json", "AUTH_JWT_AUDIENCE", "wsdest"), nil},
		{"broker and token", with(broker, "Quix__Sdk__Token", "tok"),
			[]string{"Quix__Broker__Address and Quix__Sdk__Token are both set; using the broker address and ignoring the token"}},
		{"alias and token", with(nil, "KAFKA_BROKERS", "a:1", "input", "t", "Quix__Sdk__Token", "tok"),
			[]string{"KAFKA_BROKERS and Quix__Sdk__Token are both set; using the broker address and ignoring the token"}},
		{"both broker vars differ", with(broker, "KAFKA_BROKERS", "other:1"),
			[]string{"KAFKA_BROKERS is ignored because Quix__Broker__Address is set"}},
		{"both broker vars agree", with(broker, "KAFKA_BROKERS", "kafka:9092"), nil},
		{"both group vars", with(broker, "Quix__Consumer_Group", "a", "CONSUMER_GROUP", "b"),
			[]string{"CONSUMER_GROUP is ignored because Quix__Consumer_Group is set"}},
		{"sasl with dev broker", with(nil, "KAFKA_SASL_MECHANISM", "PLAIN", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p", "KAFKA_TLS", "true"),
			[]string{"KAFKA_SASL_MECHANISM and KAFKA_TLS ignored: no broker address is set, so the dev broker is used"}},
		{"tls on quix cloud", with(nil, "Quix__Sdk__Token", "tok", "Quix__Portal__Api", "https://p", "Quix__Workspace__Id", "ws", "input", "t", "KAFKA_TLS", "true"),
			[]string{"KAFKA_TLS ignored: on Quix Cloud the Portal API supplies the connection settings"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Warnings, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", c.Warnings, tt.want)
			}
		})
	}
}

func TestSummaryHasNoSecrets(t *testing.T) {
	secrets := map[string]string{
		"AUTH_API_KEYS":       "key-one,key-two,key-three",
		"WS_USERNAME":         "basic-user",
		"WS_PASSWORD":         "basic-pass",
		"KAFKA_SASL_USERNAME": "sasl-user",
		"KAFKA_SASL_PASSWORD": "sasl-pass",
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string // "key=value" pairs expected in the summary
	}{
		{"brokers", with(secrets, "Quix__Broker__Address", "k:1", "input", "t", "KAFKA_SASL_MECHANISM", "PLAIN"),
			[]string{"kafka=brokers", "brokers=k:1", "sasl=PLAIN", "sasl_user=set", "api_keys=3", "basic_auth=true", "auth=true", "consumer_group=none"}},
		{"quix", with(secrets, "Quix__Sdk__Token", "the-token", "Quix__Portal__Api", "https://p", "Quix__Workspace__Id", "ws", "input", "t", "KAFKA_SASL_MECHANISM", "PLAIN"),
			[]string{"kafka=quix cloud", "sdk_token=set", "workspace=ws"}},
		{"dev", with(nil, "Quix__Consumer_Group", "g"), []string{"kafka=dev broker", "brokers=default", "demo_data=true", "consumer_group=g", "auth=false", "api_keys=0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			attrs := c.Summary()
			if len(attrs)%2 != 0 {
				t.Fatalf("odd number of summary values: %d", len(attrs))
			}
			var pairs []string
			for i := 0; i < len(attrs); i += 2 {
				pairs = append(pairs, fmt.Sprintf("%v=%v", attrs[i], attrs[i+1]))
			}
			line := strings.Join(pairs, " ")
			for _, w := range tt.want {
				if !strings.Contains(" "+line+" ", " "+w+" ") {
					t.Errorf("summary %q lacks %q", line, w)
				}
			}
			for _, v := range []string{"key-one", "key-two", "basic-user", "basic-pass", "sasl-user", "sasl-pass", "the-token"} {
				if strings.Contains(line, v) {
					t.Errorf("summary %q leaks %q", line, v)
				}
			}
		})
	}
}
