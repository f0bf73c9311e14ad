package service

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/wsdest/wsdest/internal/auth"
	"github.com/wsdest/wsdest/internal/config"
)

// newAuth maps the auth settings into the authenticator; a grant's
// patterns are bounded as a subscription's are (MAX_SUBSCRIPTION_KEYS
// globs, MAX_KEY_LENGTH bytes), since they are tested alike. It reads the
// keys file and the public key file: a missing or bad one is an error
// naming the variable.
func newAuth(c config.Auth, e config.Edge, logger *slog.Logger) (*auth.Authenticator, error) {
	j := c.Scoped.JWT
	a, err := auth.New(auth.Config{
		APIKeys:          c.APIKeys,
		Username:         c.Username,
		Password:         c.Password,
		KeysFile:         c.Scoped.KeysFile,
		JWTSecret:        []byte(j.Secret),
		JWTPublicKeyFile: j.PublicKeyFile,
		JWKSURL:          j.JWKSURL,
		JWTIssuer:        j.Issuer,
		JWTAudience:      j.Audience,
		JWTKeysClaim:     j.KeysClaim,
		JWTAllowNoExp:    j.AllowNoExp,
		MaxGrantGlobs:    e.MaxSubscriptionKeys,
		MaxPatternLength: e.MaxKeyLength,
		Logger:           logger,
	})
	var fe *auth.FileError
	if errors.As(err, &fe) {
		name := config.EnvAPIKeysFile
		if fe.Field == "JWTPublicKeyFile" {
			name = config.EnvJWTPublicKeyFile
		}
		return nil, fmt.Errorf("%s: %w", name, fe.Err)
	}
	return a, err
}

// authRefusals returns the authenticator's refusals by reason, every
// reason present (at zero without auth).
func authRefusals(a *auth.Authenticator) map[string]uint64 {
	m := make(map[string]uint64, len(auth.Reasons))
	for _, r := range auth.Reasons {
		m[string(r)] = 0
	}
	if a != nil {
		for r, n := range a.Refusals() {
			m[string(r)] = n
		}
	}
	return m
}
