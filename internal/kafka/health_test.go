package kafka

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest/internal/testbroker"
)

// TestHelperBrokerProcess is not a test: see testbroker.Start.
func TestHelperBrokerProcess(t *testing.T) { testbroker.Serve(t) }

// TestFrozenBroker freezes the broker process with SIGSTOP (its sockets
// stay open, nothing answers): Ready turns false without waiting for
// franz-go's request timeouts, a reminder is logged while it stays frozen,
// the outage logged at the end is at least as long as the freeze, and the
// records produced around it all arrive.
func TestFrozenBroker(t *testing.T) {
	bp := testbroker.Start(t, "TestHelperBrokerProcess", 1)
	addr := bp.Addr
	r := startSource(t, Config{Brokers: []string{addr}, Topic: "t", ResetLatest: true, remindEvery: 300 * time.Millisecond})
	eventually(t, "ready", r.src.Ready)
	p := newProducer(t, []string{addr})
	produce(t, p, &kgo.Record{Topic: "t", Value: []byte("before")})
	if got := r.next(t); string(got.Value) != "before" {
		t.Fatalf("got %q", got.Value)
	}

	bp.Freeze(t)
	stopped := time.Now()
	eventually(t, "not ready while frozen", func() bool { return !r.src.Ready() })
	t.Logf("not ready %v after SIGSTOP (at most %v with the defaults)", time.Since(stopped).Round(time.Millisecond), 2*probeEvery+probeTimeout)
	eventually(t, "a reminder", func() bool { return len(r.log.Lines("still unreachable")) > 0 })
	frozen := time.Since(stopped)
	bp.Thaw(t)
	eventually(t, "ready again", r.src.Ready)
	produce(t, p, &kgo.Record{Topic: "t", Value: []byte("after")})
	if got := r.next(t); string(got.Value) != "after" {
		t.Fatalf("got %q", got.Value)
	}

	if st := r.src.Stats(); st.Records != 2 || st.Lag[0] != 0 || !st.BrokerUp {
		t.Errorf("stats %+v, want 2 records, lag 0, broker up", st)
	}
	r.stop()
	if l := r.log.Lines("not answering"); len(l) != 1 || !strings.Contains(l[0], "level=WARN") {
		t.Errorf("not-answering lines: %q, want one warning", l)
	}
	again := r.log.Lines("reachable again")
	if len(again) != 1 {
		t.Fatalf("reachable-again lines: %q, want 1:\n%s", again, r.log)
	}
	m := regexp.MustCompile(`outage=(\S+)`).FindStringSubmatch(again[0])
	if m == nil {
		t.Fatalf("no outage in %q", again[0])
	}
	outage, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatal(err)
	}
	// The log rounds to the millisecond, and an answer written just before
	// the stop may be read a few milliseconds after it; the bug this guards
	// against was off by whole seconds.
	if outage+20*time.Millisecond < frozen {
		t.Errorf("outage logged as %v, but the broker was frozen for %v", outage, frozen)
	}
}

// TestTypoBrokerReminds: a broker address nobody listens on is reported
// at once and then reminded of while it lasts.
func TestTypoBrokerReminds(t *testing.T) {
	c := newCluster(t)
	addrs := c.ListenAddrs()
	c.Close()
	r := startSource(t, Config{Brokers: addrs, Topic: "t", ResetLatest: true, remindEvery: 200 * time.Millisecond})
	eventually(t, "two reminders", func() bool { return len(r.log.Lines("still unreachable")) >= 2 })
	r.stop()
	if l := r.log.Lines("still unreachable"); !strings.Contains(l[0], "outage_so_far=") || !strings.Contains(l[0], "last_error=") {
		t.Errorf("reminder lacks details: %s", l[0])
	}
}
