package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Misspelt variables. A setting under a wrong name is not an unset
// setting: it is ignored, and an ignored Quix__Broker__Address starts the
// development broker with demo data and a /readyz of 200, which looks
// healthy and is not. CheckNames refuses to start instead, in two cases
// that are almost always typos:
//
//   - a name that equals a name FromEnv reads except for case, when that
//     spelling is absent (QUIX__BROKER__ADDRESS, INPUT, Port);
//   - a name that starts with "Quix__" (any case) and is one edit (one
//     letter added, dropped or changed, case aside) from a Quix__ name
//     FromEnv reads, when that one is absent (Quix__Broker__Adress,
//     Quix__Consumer__Group).
//
// Every other variable is left alone: Quix Cloud injects Quix__ variables
// of its own (Quix__Deployment__Id, Quix__Workspace__Name, ...) and adds
// more over time, and a service that refused them would not start there.

// knownNames are the variables FromEnv reads (TestKnownNamesAreRead keeps
// the list whole).
var knownNames = []string{
	EnvTopic, EnvHost, EnvPort, EnvShutdownTimeout,
	EnvAuthEnabled, EnvAPIKeys, EnvWSUsername, EnvWSPassword,
	EnvAPIKeysFile, EnvJWTSecret, EnvJWTPublicKeyFile, EnvJWKSURL, EnvJWTIssuer, EnvJWTAudience, EnvJWTKeysClaim, EnvJWTRequireExp,
	EnvBrokerAddress, EnvKafkaBrokers, EnvSASLMechanism, EnvSASLUsername, EnvSASLPassword,
	EnvTLS, EnvTLSCAFile, EnvTLSInsecureSkipVerify,
	EnvSDKToken, EnvPortalAPI, EnvWorkspaceID, EnvQuixConsumerGroup, EnvConsumerGroup, EnvAutoOffsetReset,
	EnvDevBrokerAddr, EnvDemoData, EnvDemoInterval,
	EnvFormat, EnvEnvelope,
	EnvMaxQueueBytes, EnvWriteTimeout, EnvPingInterval, EnvMaxClientMessage, EnvSocketSendBuffer,
	EnvPprofAddr, EnvLogLevel, EnvLogFormat, EnvViewer, EnvPublicURL,
	EnvTLSCertFile, EnvTLSKeyFile, EnvAllowedOrigins, EnvMaxConnections, EnvMaxConnectionsPerIP,
	EnvTrustedProxies, EnvMaxSubscriptionKeys, EnvMaxKeyLength, EnvMaxViews, EnvMaxViewsPerIP, EnvMetricsAddr,
	EnvMaxRecordRows, EnvMaxDecodedBytes, EnvCompression, EnvSlowClients,
	EnvHistoryBytes, EnvHistoryMaxAge, EnvCatchUpReaders, EnvSSEHeartbeat,
	EnvSnapshot, EnvSnapshotMaxKeys, EnvSnapshotLookback, EnvSnapshotSeedTimeout,
}

// quixPrefix starts the names Quix Cloud sets.
const quixPrefix = "quix__"

// CheckNames reports the misspelt variables among names (the names of the
// process's environment and of the .env file), as described above: one
// line, each misspelling naming the right spelling, joined with "; ". A
// name is present when lookup finds it, even empty. It returns nil when
// none is misspelt. Values are never read, so no secret can show.
func CheckNames(names []string, lookup func(string) (string, bool)) error {
	var problems []string
	seen := make(map[string]bool)
	for _, name := range slices.Sorted(slices.Values(names)) {
		if seen[name] {
			continue
		}
		seen[name] = true
		right, why := misspelling(name)
		if right == "" {
			continue
		}
		if _, ok := lookup(right); ok {
			continue // the right spelling is set too; this one is someone else's
		}
		problems = append(problems, fmt.Sprintf("%s is not a setting wsdest reads: did you mean %s? (%s)", name, right, why))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// misspelling returns the known name that name misspells, and how, or ""
// when it misspells none (or is one).
func misspelling(name string) (right, why string) {
	if slices.Contains(knownNames, name) {
		return "", ""
	}
	for _, k := range knownNames {
		if strings.EqualFold(name, k) {
			return k, "names are case-sensitive"
		}
	}
	if !strings.HasPrefix(strings.ToLower(name), quixPrefix) {
		return "", ""
	}
	for _, k := range knownNames {
		if strings.HasPrefix(strings.ToLower(k), quixPrefix) && oneEdit(strings.ToLower(name), strings.ToLower(k)) {
			return k, "one letter differs"
		}
	}
	return "", ""
}

// oneEdit reports whether a becomes b by adding, dropping or changing
// exactly one byte.
func oneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return i < len(a) && a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}
