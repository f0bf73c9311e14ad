package config

import (
	"strings"
	"testing"
)

func TestScopedAuth(t *testing.T) {
	secret := strings.Repeat("s", 32)
	tests := []struct {
		name string
		env  map[string]string
		want Scoped
	}{
		{"keys file", with(broker, "AUTH_API_KEYS_FILE", "/etc/wsdest/keys"), Scoped{KeysFile: "/etc/wsdest/keys"}},
		{"secret", with(broker, "AUTH_JWT_SECRET", secret), Scoped{JWT: JWT{Secret: secret}}},
		{"public key", with(broker, "AUTH_JWT_PUBLIC_KEY_FILE", "/k.pem", "AUTH_JWT_ISSUER", "iss", "AUTH_JWT_AUDIENCE", "aud"),
			Scoped{JWT: JWT{PublicKeyFile: "/k.pem", Issuer: "iss", Audience: "aud"}}},
		{"jwks and claim", with(broker, "AUTH_JWKS_URL", "https://id.example.com/jwks.json", "AUTH_JWT_KEYS_CLAIM", "devices"),
			Scoped{JWT: JWT{JWKSURL: "https://id.example.com/jwks.json", KeysClaim: "devices"}}},
		{"jwks on loopback over http", with(broker, "AUTH_JWKS_URL", "http://127.0.0.1:8080/jwks.json"), Scoped{JWT: JWT{JWKSURL: "http://127.0.0.1:8080/jwks.json"}}},
		{"jwks on localhost over http", with(broker, "AUTH_JWKS_URL", "http://localhost/jwks.json"), Scoped{JWT: JWT{JWKSURL: "http://localhost/jwks.json"}}},
		{"jwks on ::1 over http", with(broker, "AUTH_JWKS_URL", "http://[::1]:80/jwks"), Scoped{JWT: JWT{JWKSURL: "http://[::1]:80/jwks"}}},
		{"exp optional", with(broker, "AUTH_JWT_SECRET", secret, "AUTH_JWT_REQUIRE_EXP", "false"), Scoped{JWT: JWT{Secret: secret, AllowNoExp: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Auth.Scoped != tt.want {
				t.Errorf("Scoped = %+v, want %+v", c.Auth.Scoped, tt.want)
			}
			if !c.Auth.Enabled {
				t.Error("auth not enabled by a scoped credential")
			}
		})
	}
}

func TestScopedAuthBadValues(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{with(broker, "AUTH_JWT_SECRET", "short-secret"), `AUTH_JWT_SECRET: 12 bytes, too short for HMAC (want at least 32 random bytes)`},
		{with(broker, "AUTH_JWKS_URL", "ftp://x/jwks"), `AUTH_JWKS_URL: "ftp://x/jwks" is not an https URL (want e.g. https://issuer.example.com/.well-known/jwks.json)`},
		// Anyone on the path could hand out the keys that sign tokens.
		{with(broker, "AUTH_JWKS_URL", "http://id.example.com/jwks"), `AUTH_JWKS_URL: "http://id.example.com/jwks" is not an https URL (want e.g. https://issuer.example.com/.well-known/jwks.json; plain http only to a loopback host)`},
		// The URL's user information and query may hold a secret.
		{with(broker, "AUTH_JWKS_URL", "http://user:hunter2@id.example.com/jwks?sig=s3cret"), `AUTH_JWKS_URL: "http://id.example.com/jwks" is not an https URL (want e.g. https://issuer.example.com/.well-known/jwks.json; plain http only to a loopback host)`},
		{with(broker, "AUTH_JWT_SECRET", strings.Repeat("s", 32), "AUTH_JWT_REQUIRE_EXP", "maybe"), `AUTH_JWT_REQUIRE_EXP: "maybe" is not a boolean (want true/false, yes/no or 1/0)`},
		{with(broker, "AUTH_JWT_ISSUER", "iss"), `AUTH_JWT_ISSUER/AUTH_JWT_AUDIENCE set but no JWT key is configured (set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY_FILE or AUTH_JWKS_URL)`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := FromEnv(envOf(tt.env))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
			if v := tt.env["AUTH_JWT_SECRET"]; v != "" && strings.Contains(err.Error(), v) {
				t.Errorf("error %q echoes the secret", err)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q echoes the URL's secrets", err)
			}
		})
	}
}
