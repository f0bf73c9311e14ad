package kafka

import "cmp"

// Settings are the Kafka connection settings as the operator gave them;
// Resolve turns them into a Config. Exactly one of two modes applies: a
// broker address (Brokers set; the dev broker's address too), or Quix Cloud
// (Quix set and Brokers empty).
type Settings struct {
	// Topic is the topic to consume, before any Quix workspace prefix.
	Topic string
	// Group is the consumer group; "" = none (see Config.Group).
	Group string
	// ResetLatest starts at the end of the topic (see Config.ResetLatest).
	ResetLatest bool
	// Brokers are the bootstrap servers, host:port each.
	Brokers []string
	// SASL, with Brokers, is nil for no SASL.
	SASL *SASL
	// TLS, with Brokers, is nil for plaintext.
	TLS *TLSSettings
	// Quix holds the Quix Cloud settings; used when Brokers is empty.
	Quix *QuixSettings
	// Names are what the operator calls the settings that errors name;
	// zero fields mean generic names.
	Names SettingNames
}

// TLSSettings are the broker TLS settings.
type TLSSettings struct {
	// CAFile is a PEM file of CA certificates trusted besides the system
	// roots; "" = the system roots only.
	CAFile string
	// InsecureSkipVerify turns certificate checks off (testing only).
	InsecureSkipVerify bool
}

// QuixSettings are the Quix Cloud settings: the broker connection comes
// from the Portal API.
type QuixSettings struct {
	SDKToken    string
	PortalAPI   string // base URL
	WorkspaceID string // prefixes topic and group names
}

// SettingNames name the settings in error messages, so that an error says
// which variable to fix (the service passes its environment variable
// names).
type SettingNames struct {
	CAFile      string // default "CA file"
	PortalAPI   string // default "Portal API"
	SDKToken    string // default "SDK token"
	WorkspaceID string // default "workspace id"
}

func (n SettingNames) orDefaults() SettingNames {
	return SettingNames{
		CAFile:      cmp.Or(n.CAFile, "CA file"),
		PortalAPI:   cmp.Or(n.PortalAPI, "Portal API"),
		SDKToken:    cmp.Or(n.SDKToken, "SDK token"),
		WorkspaceID: cmp.Or(n.WorkspaceID, "workspace id"),
	}
}
