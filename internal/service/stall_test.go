package service_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/e2etest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/service"
)

// tlsService starts the service on b's topic with TLS (a certificate from
// a fresh CA) and more settings from env, and waits until it is ready over
// https. It returns the service and the dial option for its clients.
func tlsService(t *testing.T, b *e2etest.Broker, env e2etest.Env) (*e2etest.Service, *e2etest.CA, e2etest.DialOption) {
	t.Helper()
	ca := e2etest.NewCA(t)
	certFile, keyFile := ca.WritePair(t, t.TempDir(), "srv")
	s := e2etest.StartService(t, e2etest.BrokerEnv(b).With(env).With(e2etest.Env{
		config.EnvTLSCertFile: certFile, config.EnvTLSKeyFile: keyFile,
	}))
	e2etest.Eventually(t, "ready over https", func() bool {
		st, _, _ := httpsGet(t, "https://"+s.Addr()+"/readyz", ca.Pool())
		return st == 200
	})
	return s, ca, e2etest.WithTLS(&tls.Config{RootCAs: ca.Pool()})
}

// httpsStats fetches /stats over https.
func httpsStats(t *testing.T, s *e2etest.Service, ca *e2etest.CA) service.Stats {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: e2etest.Wait}).Get("https://" + s.Addr() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st service.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// jsonValue returns a JSON record value of about n bytes.
func jsonValue(n int) []byte {
	return []byte(`{"v":"` + strings.Repeat("x", n) + `"}`)
}

// TestTLSStalledClientStallsNobody: with TLS, a client that stops reading
// is closed after WRITE_TIMEOUT without holding up anyone else: records
// produced every 50 ms for 10 s reach a healthy TLS client with no gap
// of a second or more. (Closing a *tls.Conn writes its close_notify, for
// up to 5 s into the stalled client's full socket; done under the lock
// that Publish takes, it would stop every client's stream that long.)
func TestTLSStalledClientStallsNobody(t *testing.T) {
	b := e2etest.StartBroker(t, "t", 1)
	s, ca, tlsOpt := tlsService(t, b, e2etest.Env{
		config.EnvWriteTimeout: "2s", config.EnvPingInterval: "1h", config.EnvSocketSendBuffer: "16384",
	})
	url := "wss://" + s.Addr() + "/ws"
	e2etest.Connect(t, url, tlsOpt, e2etest.WithReadBuffer(4096)) // stalled: never reads
	healthy := e2etest.Connect(t, url, tlsOpt)
	p := e2etest.NewProducer(t, b)

	const every, run = 50 * time.Millisecond, 10 * time.Second
	n := int(run / every)
	value := jsonValue(4096)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range n {
			<-tick.C
			p.Produce([]byte("k"), value)
		}
	}()
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	var maxGap time.Duration
	last := time.Time{}
	for i := range n {
		if _, err := healthy.NextText(ctx); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		now := time.Now()
		if !last.IsZero() {
			maxGap = max(maxGap, now.Sub(last))
		}
		last = now
	}
	t.Logf("largest gap between records at the healthy client: %v", maxGap)
	if maxGap >= time.Second {
		t.Errorf("the healthy client waited %v for a record (records every %v)", maxGap, every)
	}
	e2etest.Eventually(t, "the stalled client closed for its write timeout", func() bool {
		return httpsStats(t, s, ca).Hub.Closes[hub.ReasonWriteTimeout] == 1
	})
}

// TestMalformedTLSRecordBlocksNobody: a client whose TLS record does not
// decrypt while the server is writing to it (it reads nothing, so the
// write waits for WRITE_TIMEOUT) does not hold up the reading of anyone
// else: an idle TLS client's ping is answered within a second.
func TestMalformedTLSRecordBlocksNobody(t *testing.T) {
	b := e2etest.StartBroker(t, "t", 1)
	s, _, tlsOpt := tlsService(t, b, e2etest.Env{
		config.EnvPingInterval: "1h", config.EnvSocketSendBuffer: "16384",
	})
	base := "wss://" + s.Addr()
	var raw net.Conn
	e2etest.Connect(t, base+"/ws/k", tlsOpt, e2etest.WithReadBuffer(4096),
		e2etest.WithConnWrapper(func(c net.Conn) net.Conn { raw = c; return c }))
	reader := e2etest.Connect(t, base+"/ws/k", tlsOpt)
	idle := e2etest.Connect(t, base+"/ws/other", tlsOpt)

	// Enough for the bad client's socket and buffers many times over: the
	// server's write to it waits.
	p := e2etest.NewProducer(t, b)
	value := jsonValue(64 << 10)
	const records = 16
	for range records {
		p.Produce([]byte("k"), value)
	}
	reader.NextN(t, records)

	// A TLS record of application data that does not decrypt.
	junk := append([]byte{0x17, 0x03, 0x03, 0x00, 0x40}, bytes.Repeat([]byte{0xa5}, 0x40)...)
	if _, err := raw.Write(junk); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	for i := range 5 {
		start := time.Now()
		payload := []byte{'p', byte('0' + i)}
		if err := idle.WriteFrame(ws.OpPing, payload); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := idle.ReadFrame(ctx)
			if err != nil {
				t.Fatalf("ping %d: %v", i, err)
			}
			if f.Op == ws.OpPong && bytes.Equal(f.Payload, payload) {
				break
			}
		}
		rtt := time.Since(start)
		t.Logf("ping %d after the malformed record: round trip %v", i, rtt)
		if rtt >= time.Second {
			t.Errorf("ping %d after the malformed record: round trip %v", i, rtt)
		}
		time.Sleep(100 * time.Millisecond) // spread the pings over the write's wait
	}
}
