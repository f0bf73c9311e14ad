// Package config reads the service configuration from environment variables
// (and, through LoadDotEnv and Lookup, from a .env file beneath them).
//
// Every field documents the variable it comes from and its default. A
// variable that is set to an empty (or all-blank) value counts as unset, so a
// deployment template that declares a variable without a value gets the
// default. Every bad value is reported as one line naming the variable, what
// is wrong and what is allowed; secrets (passwords, tokens, API keys) are
// never echoed.
//
// The package imports none of the parts it configures. A setting whose
// default belongs to the part that applies it (the hub's queue bound, the
// decoder's limits, ...) is left at zero when unset, and the service
// package applies that part's default when it maps a Config into the part's
// own; settings whose default is the service's own hold the value itself.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Names of the environment variables read by FromEnv. Other packages use them
// to name the variable to fix in their own error messages.
const (
	EnvTopic = "input"

	EnvHost            = "HOST"
	EnvPort            = "PORT"
	EnvShutdownTimeout = "SHUTDOWN_TIMEOUT"

	EnvAuthEnabled = "AUTH_ENABLED"
	EnvAPIKeys     = "AUTH_API_KEYS"
	EnvWSUsername  = "WS_USERNAME"
	EnvWSPassword  = "WS_PASSWORD"

	EnvBrokerAddress         = "Quix__Broker__Address"
	EnvKafkaBrokers          = "KAFKA_BROKERS"
	EnvSASLMechanism         = "KAFKA_SASL_MECHANISM"
	EnvSASLUsername          = "KAFKA_SASL_USERNAME"
	EnvSASLPassword          = "KAFKA_SASL_PASSWORD"
	EnvTLS                   = "KAFKA_TLS"
	EnvTLSCAFile             = "KAFKA_TLS_CA_FILE"
	EnvTLSInsecureSkipVerify = "KAFKA_TLS_INSECURE_SKIP_VERIFY"
	EnvSDKToken              = "Quix__Sdk__Token"
	EnvPortalAPI             = "Quix__Portal__Api"
	EnvWorkspaceID           = "Quix__Workspace__Id"
	EnvQuixConsumerGroup     = "Quix__Consumer_Group"
	EnvConsumerGroup         = "CONSUMER_GROUP"
	EnvAutoOffsetReset       = "AUTO_OFFSET_RESET"

	EnvDevBrokerAddr = "DEV_BROKER_ADDR"
	EnvDemoData      = "DEMO_DATA"
	EnvDemoInterval  = "DEMO_INTERVAL"

	EnvFormat   = "FORMAT"
	EnvEnvelope = "ENVELOPE"

	EnvMaxQueueBytes    = "MAX_QUEUE_BYTES"
	EnvWriteTimeout     = "WRITE_TIMEOUT"
	EnvPingInterval     = "PING_INTERVAL"
	EnvMaxClientMessage = "MAX_CLIENT_MESSAGE"
	EnvSocketSendBuffer = "SOCKET_SEND_BUFFER"

	EnvPprofAddr = "PPROF_ADDR"

	EnvLogLevel  = "LOG_LEVEL"
	EnvLogFormat = "LOG_FORMAT"

	EnvViewer    = "VIEWER"
	EnvPublicURL = "Quix__Deployment__Network__PublicUrl"

	EnvTLSCertFile         = "TLS_CERT_FILE"
	EnvTLSKeyFile          = "TLS_KEY_FILE"
	EnvAllowedOrigins      = "ALLOWED_ORIGINS"
	EnvMaxConnections      = "MAX_CONNECTIONS"
	EnvMaxConnectionsPerIP = "MAX_CONNECTIONS_PER_IP"
	EnvTrustedProxies      = "TRUSTED_PROXIES"
	EnvMaxSubscriptionKeys = "MAX_SUBSCRIPTION_KEYS"
	EnvMaxKeyLength        = "MAX_KEY_LENGTH"
	EnvMaxViews            = "MAX_VIEWS"
	EnvMaxViewsPerIP       = "MAX_VIEWS_PER_IP"
	EnvMetricsAddr         = "METRICS_ADDR"

	EnvMaxRecordRows   = "MAX_RECORD_ROWS"
	EnvMaxDecodedBytes = "MAX_DECODED_BYTES"
	EnvCompression     = "COMPRESSION"
	EnvSlowClients     = "SLOW_CLIENTS"

	EnvHistoryBytes   = "HISTORY_BYTES"
	EnvHistoryMaxAge  = "HISTORY_MAX_AGE"
	EnvCatchUpReaders = "CATCHUP_READERS"
	EnvSSEHeartbeat   = "SSE_HEARTBEAT"
)

// Defaults of the resume and SSE settings that are the service's own.
const (
	DefaultHistoryBytes = 64 << 20
	DefaultSSEHeartbeat = 15 * time.Second
)

// Defaults of the settings that are the service's own. The defaults of
// the settings left at zero are those of the parts that apply them.
const (
	DefaultPort             = 8000
	DefaultDevTopic         = "input"
	DefaultDemoInterval     = 250 * time.Millisecond
	DefaultShutdownTimeout  = 5 * time.Second
	DefaultSocketSendBuffer = 128 << 10
)

// The values of FORMAT.
const (
	FormatAuto = "auto"
	FormatRaw  = "raw"
)

// Config is the whole service configuration. FromEnv fills it; the zero
// value is not meaningful.
type Config struct {
	// Topic is the input topic (env `input`). It is required when a broker
	// address or an SDK token is set; with the dev broker it defaults to
	// "input". On Quix Cloud the kafka package adds the workspace prefix.
	Topic string

	Server    Server
	Auth      Auth
	Kafka     Kafka
	DevBroker DevBroker
	Decode    Decode
	Clients   Clients
	Log       Log

	// PprofAddr is PPROF_ADDR: a host:port on which to serve Go's
	// net/http/pprof profiles, for performance work. Default "" = off.
	// Bind it to a loopback address: profiles reveal internals.
	PprofAddr string

	// Edge holds what protects the public listener: TLS, origins,
	// connection and subscription limits.
	Edge Edge
	// MetricsAddr is METRICS_ADDR: a host:port on which to serve
	// /metrics too (besides PORT), e.g. for a scraper on an internal
	// network. Default "" = only on PORT.
	MetricsAddr string
	// Viewer is VIEWER: serve the live viewer page to browsers on /, /{key},
	// /ws and /ws/{key}, and its assets under /_wsdest/. Default true.
	Viewer bool
	// PublicURL is Quix__Deployment__Network__PublicUrl, the URL Quix
	// Cloud gives a deployment with public access; the start-up line shows
	// it as the address to open. Default "" (the local address is shown).
	PublicURL string

	// Warnings lists settings that were accepted but are probably not what
	// the operator meant (for instance credentials set while AUTH_ENABLED
	// is false). The caller logs each one at start-up.
	Warnings []string

	// History holds the settings of resumable streams and SSE.
	History History
	// Snapshot holds the settings of snapshot=true.
	Snapshot Snapshot
}

// History holds the settings of the in-memory history, the catch-up
// reader and Server-Sent Events.
type History struct {
	// MaxBytes is HISTORY_BYTES: the memory the recent messages of every
	// partition may hold, every frame of each counted. Default 64 MiB;
	// 0 keeps no history (every resume reads Kafka).
	MaxBytes int
	// MaxAge is HISTORY_MAX_AGE: messages older than this leave the
	// history. Default 0: no age bound.
	MaxAge time.Duration
	// CatchUpReaders is CATCHUP_READERS: how many partitions the shared
	// catch-up reader reads from Kafka at once. Unset: 0, the history
	// package's default (4).
	CatchUpReaders int
	// SSEHeartbeat is SSE_HEARTBEAT: the interval of the comment line sent
	// to idle SSE clients. Default 15 s.
	SSEHeartbeat time.Duration
}

// Server holds the HTTP listener settings.
type Server struct {
	// Host is the interface to listen on (HOST); default "" = all.
	Host string
	// Port is the TCP port (PORT); default 8000. 0 picks a free port.
	Port int
	// ShutdownTimeout bounds the graceful shutdown (SHUTDOWN_TIMEOUT,
	// a Go duration > 0); default 5s.
	ShutdownTimeout time.Duration
}

// Addr returns Host and Port as a listen address for net.Listen.
func (s Server) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// Auth holds client authentication settings.
type Auth struct {
	// Enabled is true when AUTH_ENABLED=true, or when AUTH_ENABLED is unset
	// and any credential below is configured. AUTH_ENABLED=false turns it
	// off even with credentials (with a warning).
	Enabled bool
	// APIKeys come from AUTH_API_KEYS: comma-separated, blanks around keys
	// trimmed, empty entries ignored. Default none.
	APIKeys []string
	// Username and Password are the HTTP Basic credentials (WS_USERNAME,
	// WS_PASSWORD); both or neither. Default none. The password is taken
	// verbatim (not trimmed).
	Username string
	Password string
	// Scoped are the credentials that carry a grant (authz.go).
	Scoped Scoped
}

// HasCredentials reports whether any API key, Basic credential, keys file
// or JWT key is set.
func (a Auth) HasCredentials() bool {
	return len(a.APIKeys) > 0 || a.Username != "" || a.Scoped.On()
}

// OffsetReset says where consumption starts when there is no committed
// offset.
type OffsetReset string

// The values of AUTO_OFFSET_RESET.
const (
	OffsetLatest   OffsetReset = "latest"
	OffsetEarliest OffsetReset = "earliest"
)

// Kafka holds the broker connection settings. Exactly one of three modes
// applies: a plain broker address (Brokers set), Quix Cloud (Quix.SDKToken
// set and Brokers empty; see QuixCloud), or the dev broker (neither).
type Kafka struct {
	// Brokers are the bootstrap servers from Quix__Broker__Address, or
	// from its alias KAFKA_BROKERS: comma-separated host:port. Default
	// none. When both are set Quix__Broker__Address wins.
	Brokers []string
	SASL    SASL
	TLS     TLS
	Quix    Quix
	// ConsumerGroup comes from Quix__Consumer_Group, or CONSUMER_GROUP.
	// Default "" = no group: every partition is read directly, so every
	// replica of the service sees every record.
	ConsumerGroup string
	// AutoOffsetReset is AUTO_OFFSET_RESET: latest (default) or earliest.
	AutoOffsetReset OffsetReset
}

// QuixCloud reports whether the broker settings come from the Quix Portal
// API: an SDK token is set and no broker address is.
func (k Kafka) QuixCloud() bool {
	return k.Quix.SDKToken != "" && len(k.Brokers) == 0
}

// SASL holds SASL credentials; Mechanism "" means no SASL.
type SASL struct {
	// Mechanism is KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or
	// SCRAM-SHA-512 (case-insensitive, stored upper case). Default none.
	Mechanism string
	// Username and Password are KAFKA_SASL_USERNAME and
	// KAFKA_SASL_PASSWORD, both required with a mechanism. The password is
	// taken verbatim.
	Username string
	Password string
}

// TLS holds the broker TLS settings.
type TLS struct {
	// Enabled is KAFKA_TLS (boolean, default false); a CA file implies it.
	Enabled bool
	// CAFile is KAFKA_TLS_CA_FILE, a PEM file of CA certificates trusted in
	// addition to the system roots. Default none.
	CAFile string
	// InsecureSkipVerify is KAFKA_TLS_INSECURE_SKIP_VERIFY (boolean,
	// default false; requires TLS). It disables certificate checks.
	InsecureSkipVerify bool
}

// Quix holds the Quix Cloud settings.
type Quix struct {
	// SDKToken is Quix__Sdk__Token. Default none.
	SDKToken string
	// PortalAPI is Quix__Portal__Api, an http or https URL; required with
	// a token (unless a broker address is also set).
	PortalAPI string
	// WorkspaceID is Quix__Workspace__Id; required with a token (unless a
	// broker address is also set). It prefixes topic and group names.
	WorkspaceID string
}

// DevBroker holds the settings of the embedded development broker, which is
// used when neither a broker address nor an SDK token is set.
type DevBroker struct {
	// Enabled is derived, not read: true when no broker address and no
	// SDK token is set.
	Enabled bool
	// Addr is DEV_BROKER_ADDR (host:port, port 0 picks a free one);
	// default "" = the devbroker package's default, 127.0.0.1:9092.
	Addr string
	// DemoData is DEMO_DATA (boolean, default true): produce demo records.
	DemoData bool
	// DemoInterval is DEMO_INTERVAL (Go duration > 0, default 250ms): the
	// time between demo records.
	DemoInterval time.Duration
}

// Decode holds the record decoding settings.
type Decode struct {
	// Format is FORMAT: FormatAuto (default) or FormatRaw, the names of
	// the encode package's formats.
	Format string
	// Envelope is ENVELOPE (boolean, default false): wrap each value with
	// its topic, partition, offset, key, timestamp and headers unless the
	// client asks otherwise.
	Envelope bool
	// MaxRecordRows is MAX_RECORD_ROWS (whole number > 0; unset: 0, the
	// encode package's default of 250,000): a Quix record that decodes
	// into more rows is skipped with a rate-limited warning.
	MaxRecordRows int
	// MaxDecodedBytes is MAX_DECODED_BYTES (byte size > 0; unset: 0, the
	// encode package's default of 16 MiB): the most a Quix record may
	// decompress to, and its rows may take; a record over it is skipped
	// with a rate-limited warning.
	MaxDecodedBytes int
}

// Clients holds the per-client limits applied by the hub and the server.
type Clients struct {
	// MaxQueueBytes is MAX_QUEUE_BYTES, the bound of each client's send
	// queue in bytes (integer with optional KiB/MiB/GiB/KB/MB/GB suffix,
	// > 0); unset: 0, the hub's default of 4 MiB.
	MaxQueueBytes int
	// WriteTimeout is WRITE_TIMEOUT (Go duration > 0; unset: 0, the hub's
	// default of 10s): a client whose pending writes do not finish within
	// it is closed.
	WriteTimeout time.Duration
	// PingInterval is PING_INTERVAL (Go duration > 0; unset: 0, the hub's
	// default of 30s); a peer silent for twice this long is dropped.
	PingInterval time.Duration
	// MaxMessageBytes is MAX_CLIENT_MESSAGE (byte size > 0; unset: 0, the
	// server's default of 4096): a larger client message closes the
	// connection with status 1009.
	MaxMessageBytes int
	// SocketSendBuffer is SOCKET_SEND_BUFFER (byte size, default 128 KiB;
	// 0 = the kernel's autotuned default, up to 4 MiB): SO_SNDBUF for
	// client sockets. It bounds the kernel memory a client that stops
	// reading can hold, and how soon such a client meets WRITE_TIMEOUT.
	// Linux doubles the value for its own bookkeeping.
	SocketSendBuffer int
	// Compression is COMPRESSION (boolean, default false): offer
	// permessage-deflate to clients that ask for it.
	Compression bool
	// SlowClients is SLOW_CLIENTS: SlowClose (default), a client over
	// MaxQueueBytes is closed with 1008 "too slow"; SlowConflate, it is
	// kept and gets each key's latest message until it catches up.
	SlowClients string
}

// The values of SLOW_CLIENTS.
const (
	SlowClose    = "close"
	SlowConflate = "conflate"
)

// LogFormat is the log output format.
type LogFormat string

// The values of LOG_FORMAT.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Log holds the logging settings.
type Log struct {
	// Level is LOG_LEVEL: debug, info (default), warn or error.
	Level slog.Level
	// Format is LOG_FORMAT: text (default) or json.
	Format LogFormat
}

// FromEnv reads the configuration through lookup (os.LookupEnv, or Lookup
// to layer a .env file beneath the environment). It reports every bad value
// at once, joined with "; " into a single line.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	p := &parser{lookup: lookup}
	var c Config

	c.Server = Server{
		Host:            p.str(EnvHost),
		Port:            p.port(EnvPort, DefaultPort),
		ShutdownTimeout: p.duration(EnvShutdownTimeout, DefaultShutdownTimeout),
	}
	c.Auth = p.auth()
	c.Kafka = p.kafka()
	c.DevBroker = DevBroker{
		Enabled:      len(c.Kafka.Brokers) == 0 && c.Kafka.Quix.SDKToken == "",
		Addr:         p.hostPort(EnvDevBrokerAddr, "127.0.0.1:9092", true),
		DemoData:     p.boolean(EnvDemoData, true),
		DemoInterval: p.duration(EnvDemoInterval, DefaultDemoInterval),
	}
	c.Topic = p.topic(c.DevBroker.Enabled)
	c.Decode = Decode{
		Format:   p.enum(EnvFormat, FormatAuto, "a format", FormatAuto, FormatRaw),
		Envelope: p.boolean(EnvEnvelope, false),
	}
	// Zero where unset: the parts' defaults (package doc).
	c.Decode.MaxRecordRows = p.integer(EnvMaxRecordRows, 0, 1)
	c.Decode.MaxDecodedBytes = p.byteSize(EnvMaxDecodedBytes, 0, 1)
	c.Clients = Clients{
		MaxQueueBytes:    p.byteSize(EnvMaxQueueBytes, 0, 1),
		WriteTimeout:     p.durationOr0(EnvWriteTimeout, 10*time.Second),
		PingInterval:     p.durationOr0(EnvPingInterval, 30*time.Second),
		MaxMessageBytes:  p.byteSize(EnvMaxClientMessage, 0, 1),
		SocketSendBuffer: p.byteSize(EnvSocketSendBuffer, DefaultSocketSendBuffer, 0),
	}
	c.Clients.Compression = p.boolean(EnvCompression, false)
	c.Clients.SlowClients = p.enum(EnvSlowClients, SlowClose, "a slow-client policy", SlowClose, SlowConflate)
	c.PprofAddr = p.hostPort(EnvPprofAddr, "127.0.0.1:6060", true)
	c.Log = Log{
		Level:  p.logLevel(),
		Format: LogFormat(p.enum(EnvLogFormat, string(LogText), "a log format", string(LogText), string(LogJSON))),
	}
	c.Edge = p.edge()
	c.MetricsAddr = p.hostPort(EnvMetricsAddr, "127.0.0.1:9100", true)
	c.History = History{
		MaxBytes:       p.byteSize(EnvHistoryBytes, DefaultHistoryBytes, 0),
		CatchUpReaders: p.integer(EnvCatchUpReaders, 0, 1),
		SSEHeartbeat:   p.duration(EnvSSEHeartbeat, DefaultSSEHeartbeat),
	}
	c.History.MaxAge = p.durationOr0(EnvHistoryMaxAge, time.Hour)
	c.Snapshot = p.snapshot()
	c.Viewer = p.boolean(EnvViewer, true)
	c.PublicURL = p.str(EnvPublicURL)
	c.Warnings = p.warnings

	if len(p.problems) > 0 {
		return Config{}, errors.New(strings.Join(p.problems, "; "))
	}
	return c, nil
}

func (p *parser) topic(dev bool) string {
	v, ok := p.get(EnvTopic)
	if !ok {
		if dev {
			return DefaultDevTopic
		}
		p.fail("%s: topic name is empty (want the name of the topic to stream)", EnvTopic)
		return ""
	}
	if !validTopic(v) {
		p.fail("%s: %s is not a valid topic name (want 1-249 letters, digits, '.', '_' or '-')", EnvTopic, quote(v))
	}
	return v
}

func validTopic(s string) bool {
	if len(s) == 0 || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (p *parser) auth() Auth {
	var a Auth
	if v, ok := p.get(EnvAPIKeys); ok {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				a.APIKeys = append(a.APIKeys, k)
			}
		}
		if len(a.APIKeys) == 0 {
			p.fail("%s is set but holds no key (want a comma-separated list of keys)", EnvAPIKeys)
		}
	}
	user, _ := p.get(EnvWSUsername)
	pass, _ := p.secret(EnvWSPassword)
	switch {
	case user != "" && pass == "":
		p.fail("%s is set but %s is empty (set both or neither)", EnvWSUsername, EnvWSPassword)
	case user == "" && pass != "":
		p.fail("%s is set but %s is empty (set both or neither)", EnvWSPassword, EnvWSUsername)
	default:
		a.Username, a.Password = user, pass
	}
	a.Scoped = p.scoped()

	enabled, set := p.optBoolean(EnvAuthEnabled)
	switch {
	case !set:
		a.Enabled = a.HasCredentials()
	case enabled:
		a.Enabled = true
		if !a.HasCredentials() && !p.failedAny(EnvAPIKeys, EnvWSUsername, EnvWSPassword, EnvJWTSecret, EnvJWKSURL) {
			p.fail("%s=true but no credential is configured (set %s, %s and %s, %s, or a JWT key)", EnvAuthEnabled, EnvAPIKeys, EnvWSUsername, EnvWSPassword, EnvAPIKeysFile)
		}
	default:
		if a.HasCredentials() {
			p.warn("auth disabled by AUTH_ENABLED=false although credentials are set")
		}
	}
	return a
}

func (p *parser) kafka() Kafka {
	var k Kafka

	brokerVar := EnvBrokerAddress
	primary, hasPrimary := p.get(EnvBrokerAddress)
	alias, hasAlias := p.get(EnvKafkaBrokers)
	switch {
	case hasPrimary:
		if hasAlias && alias != primary {
			p.warn(EnvKafkaBrokers + " is ignored because " + EnvBrokerAddress + " is set")
		}
		k.Brokers = p.brokerList(brokerVar, primary)
	case hasAlias:
		brokerVar = EnvKafkaBrokers
		k.Brokers = p.brokerList(brokerVar, alias)
	}
	hasBroker := hasPrimary || hasAlias

	k.Quix.SDKToken, _ = p.get(EnvSDKToken)
	hasToken := k.Quix.SDKToken != ""
	portal, hasPortal := p.get(EnvPortalAPI)
	k.Quix.WorkspaceID, _ = p.get(EnvWorkspaceID)
	if hasPortal {
		if u, err := url.Parse(portal); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("%s: %s is not an http or https URL (want e.g. https://portal-api.platform.quix.io)", EnvPortalAPI, quote(portal))
		}
		k.Quix.PortalAPI = portal
	}
	switch {
	case hasToken && hasBroker:
		p.warn(brokerVar + " and " + EnvSDKToken + " are both set; using the broker address and ignoring the token")
	case hasToken:
		if !hasPortal {
			p.fail("%s is empty but %s is set (want the Portal API URL, e.g. https://portal-api.platform.quix.io)", EnvPortalAPI, EnvSDKToken)
		}
		if k.Quix.WorkspaceID == "" {
			p.fail("%s is empty but %s is set (want the workspace id)", EnvWorkspaceID, EnvSDKToken)
		}
	}

	k.SASL = p.sasl()
	k.TLS = p.tls()
	if !hasBroker {
		var ignored []string
		if k.SASL.Mechanism != "" {
			ignored = append(ignored, EnvSASLMechanism)
		}
		if k.TLS.Enabled {
			ignored = append(ignored, EnvTLS)
		}
		if len(ignored) > 0 {
			why := "no broker address is set, so the dev broker is used"
			if hasToken {
				why = "on Quix Cloud the Portal API supplies the connection settings"
			}
			p.warn(strings.Join(ignored, " and ") + " ignored: " + why)
		}
	}

	group, hasGroup := p.get(EnvQuixConsumerGroup)
	if alias, ok := p.get(EnvConsumerGroup); ok {
		if !hasGroup {
			group = alias
		} else if alias != group {
			p.warn(EnvConsumerGroup + " is ignored because " + EnvQuixConsumerGroup + " is set")
		}
	}
	k.ConsumerGroup = group

	k.AutoOffsetReset = OffsetReset(p.enum(EnvAutoOffsetReset, string(OffsetLatest), "supported", string(OffsetLatest), string(OffsetEarliest)))
	return k
}

func (p *parser) sasl() SASL {
	var s SASL
	mech, hasMech := p.get(EnvSASLMechanism)
	s.Username, _ = p.get(EnvSASLUsername)
	s.Password, _ = p.secret(EnvSASLPassword)
	if hasMech {
		switch m := strings.ToUpper(mech); m {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			s.Mechanism = m
		default:
			p.fail("%s: %s is not supported (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", EnvSASLMechanism, quote(mech))
			return SASL{}
		}
		if s.Username == "" {
			p.fail("%s is set but %s is empty", EnvSASLMechanism, EnvSASLUsername)
		}
		if s.Password == "" {
			p.fail("%s is set but %s is empty", EnvSASLMechanism, EnvSASLPassword)
		}
		return s
	}
	switch {
	case s.Username != "":
		p.fail("%s is set but %s is empty (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", EnvSASLUsername, EnvSASLMechanism)
	case s.Password != "":
		p.fail("%s is set but %s is empty (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", EnvSASLPassword, EnvSASLMechanism)
	}
	return SASL{}
}

func (p *parser) tls() TLS {
	var t TLS
	enabled, set := p.optBoolean(EnvTLS)
	t.CAFile, _ = p.get(EnvTLSCAFile)
	t.InsecureSkipVerify = p.boolean(EnvTLSInsecureSkipVerify, false)
	t.Enabled = enabled || (!set && t.CAFile != "")
	if set && !enabled {
		if t.CAFile != "" {
			p.fail("%s is set but %s=false (remove one of them)", EnvTLSCAFile, EnvTLS)
		}
	}
	if t.InsecureSkipVerify && !t.Enabled {
		p.fail("%s=true but TLS is off (set %s=true)", EnvTLSInsecureSkipVerify, EnvTLS)
	}
	return t
}

func (p *parser) brokerList(name, v string) []string {
	var out []string
	for b := range strings.SplitSeq(v, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if !validHostPort(b, false) {
			p.fail("%s: %s is not host:port (want host:port[,host:port...] with a port 1-65535)", name, quote(b))
			return nil
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		p.fail("%s: %s holds no address (want host:port[,host:port...])", name, quote(v))
	}
	return out
}

// hostPort parses an optional host:port; "" when unset. example goes into
// the error message.
func (p *parser) hostPort(name, example string, allowZero bool) string {
	v, ok := p.get(name)
	if !ok {
		return ""
	}
	if !validHostPort(v, allowZero) {
		p.fail("%s: %s is not host:port (want e.g. %s)", name, quote(v), example)
	}
	return v
}

func validHostPort(s string, allowZeroPort bool) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || strings.ContainsAny(host, " /") {
		return false
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowZeroPort) {
		return false
	}
	return true
}

func (p *parser) logLevel() slog.Level {
	v, ok := p.get(EnvLogLevel)
	if !ok {
		return slog.LevelInfo
	}
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	p.fail("%s: %s is not a log level (want debug, info, warn or error)", EnvLogLevel, quote(v))
	return slog.LevelInfo
}

// quote renders a (non-secret) bad value for an error message: quoted, so
// control characters cannot break the line, and cut short when long.
func quote(v string) string {
	const max = 64
	if len(v) > max {
		return fmt.Sprintf("%q...", v[:max])
	}
	return strconv.Quote(v)
}
