// Package boolval is wsdest's one parser of boolean settings, shared by the
// environment (internal/config: AUTH_ENABLED, ENVELOPE, ...) and the URL
// query (internal/server: ?envelope=), so that a value accepted in one place
// is accepted in the other.
package boolval

import (
	"fmt"
	"strings"
)

// Want names the accepted spellings, for error messages.
const Want = "true/false, yes/no or 1/0"

// Parse reads s as a boolean: true, yes and 1 are true; false, no and 0
// are false; case and surrounding blanks are ignored. Anything else is an
// error that quotes s (callers must not pass secrets). It is a pure
// function, safe for concurrent use.
func Parse(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "1":
		return true, nil
	case "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want %s)", s, Want)
}
