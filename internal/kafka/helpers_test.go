package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/testlog"
)

// waitFor bounds every wait in these tests. It only fails a broken test;
// passing runs finish far sooner.
const waitFor = 15 * time.Second

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newProducer(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.ProducerLinger(0),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, p *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

type running struct {
	src  *Source
	recs chan *wsdest.Record
	log  *testlog.Buffer
	stop func()
}

// startSource runs a Source on cfg; records arrive on the returned channel
// in the order sink received them.
func startSource(t *testing.T, cfg Config) *running {
	t.Helper()
	lb := &testlog.Buffer{}
	logger := lb.Logger(slog.LevelInfo)
	src, err := NewSource(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *wsdest.Record, 10000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		last := map[int32]int64{}
		done <- src.Run(ctx, func(recs []*wsdest.Record) {
			// Every sink call must be in partition order, and every
			// partition in offset order.
			for i, r := range recs {
				if i > 0 && r.Partition < recs[i-1].Partition {
					t.Errorf("sink call has partition %d after %d", r.Partition, recs[i-1].Partition)
				}
				if prev, ok := last[r.Partition]; ok && r.Offset <= prev && r.Offset != 0 {
					t.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
				}
				last[r.Partition] = r.Offset
				ch <- r
			}
		})
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			src.Close()
		})
	}
	t.Cleanup(stop)
	return &running{src: src, recs: ch, log: lb, stop: stop}
}

func (r *running) next(t *testing.T) *wsdest.Record {
	t.Helper()
	select {
	case rec := <-r.recs:
		return rec
	case <-time.After(waitFor):
		t.Fatalf("no record within %v; log:\n%s", waitFor, r.log)
		return nil
	}
}

// eventually polls cond until it holds; it fails the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func splitHP(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

// testCA is a throw-away certificate authority with one server certificate
// for 127.0.0.1.
type testCA struct {
	pem    []byte // the CA certificate, PEM
	server tls.Certificate
	leaf   *x509.Certificate
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsdest test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		leaf:   leaf,
	}
}

// trustedBy reports whether pool verifies the CA's server certificate.
func (ca *testCA) trustedBy(pool *x509.CertPool) bool {
	_, err := ca.leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"})
	return err == nil
}
