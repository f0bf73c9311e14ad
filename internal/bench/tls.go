package bench

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// CheckCAFile reports whether caFile ("" = none) holds a PEM certificate;
// wsbench checks it before a run, since tlsConfig cannot fail.
func CheckCAFile(caFile string) error {
	if caFile == "" {
		return nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return nil
}

// tlsConfig returns the client TLS settings for wss:// URLs: the system
// roots, or only the CA in caFile when it is set (checked by CheckCAFile).
func tlsConfig(caFile string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return cfg
	}
	pool := x509.NewCertPool()
	if pool.AppendCertsFromPEM(pem) {
		cfg.RootCAs = pool
	}
	return cfg
}
