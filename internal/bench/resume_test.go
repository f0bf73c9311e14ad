package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/e2etest"
)

// The resume mode against the real service: the clients that drop and
// come back with their cursors, over WebSocket and SSE, see every record
// once.
func TestRunResume(t *testing.T) {
	for _, sse := range []bool{false, true} {
		name := "websocket"
		if sse {
			name = "sse"
		}
		t.Run(name, func(t *testing.T) {
			b := e2etest.StartBroker(t, "bench-resume", 2)
			svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
			svc.WaitReady(t)
			res, err := RunResume(t.Context(), ResumeConfig{
				URL: svc.URL("/ws"), SSE: sse, Clients: 20, Resume: 10,
				DropAfter: 500 * time.Millisecond, Away: 300 * time.Millisecond,
				Brokers: []string{b.Addr()}, Topic: b.Topic(), Rate: 100, Duration: 2 * time.Second, Size: 100,
			}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Transport != name || res.Connected != 20 || res.Reconnected != 10 || res.RecordsProduced != 200 {
				t.Fatalf("result %+v", res)
			}
			if res.Lost != 0 || res.Duplicates != 0 || res.Deliveries != 20*200 {
				t.Fatalf("lost %d, duplicates %d, deliveries %d (want 0, 0, 4000)", res.Lost, res.Duplicates, res.Deliveries)
			}
			if res.BehindRecords <= 0 || res.CatchUpMs.Max <= 0 || res.StayLatencyBaseMs.Max <= 0 {
				t.Fatalf("figures missing: %+v", res)
			}
		})
	}
}

// The resume mode with -snapshot: the clients that drop come back with
// snapshot=true, get one record per key, then every record from the
// snapshot point, none twice; what they missed while away is not counted
// lost.
func TestRunResumeSnapshot(t *testing.T) {
	for _, sse := range []bool{false, true} {
		name := "websocket"
		if sse {
			name = "sse"
		}
		t.Run(name, func(t *testing.T) {
			b := e2etest.StartBroker(t, "bench-snapshot", 2)
			svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
			svc.WaitReady(t)
			res, err := RunResume(t.Context(), ResumeConfig{
				URL: svc.URL("/ws"), SSE: sse, Clients: 20, Resume: 10, Snapshot: true, Keys: 7,
				DropAfter: 500 * time.Millisecond, Away: 300 * time.Millisecond,
				Brokers: []string{b.Addr()}, Topic: b.Topic(), Rate: 100, Duration: 2 * time.Second, Size: 100,
			}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if res.Connected != 20 || res.Reconnected != 10 || res.RecordsProduced != 200 {
				t.Fatalf("result %+v", res)
			}
			if res.Lost != 0 || res.Duplicates != 0 || res.SnapshotKeys != 7 || res.SnapshotMs.Max <= 0 {
				t.Fatalf("lost %d, duplicates %d, snapshot keys %v, snapshot ms %+v (want 0, 0, 7, > 0)", res.Lost, res.Duplicates, res.SnapshotKeys, res.SnapshotMs)
			}
		})
	}
}

func TestRunResumeConfigErrors(t *testing.T) {
	_, err := RunResume(t.Context(), ResumeConfig{URL: "ws://127.0.0.1:1/ws", Clients: 2, Resume: 3, Rate: 1, Duration: time.Second}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "-resume") {
		t.Fatalf("err %v", err)
	}
}
