package service

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest/internal/config"
)

// TestPartDefaults: the settings config leaves at zero when unset get the
// documented defaults of the parts that apply them, a set value is kept,
// and the start-up line shows the values in force.
func TestPartDefaults(t *testing.T) {
	settings := func(c config.Config) string {
		return fmt.Sprint(c.Decode.MaxRecordRows, c.Decode.MaxDecodedBytes, c.Clients.MaxQueueBytes, c.Clients.WriteTimeout,
			c.Clients.PingInterval, c.Clients.MaxMessageBytes, c.Edge.MaxSubscriptionKeys, c.Edge.MaxKeyLength, c.History.CatchUpReaders)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    string   // settings(c)
		summary []string // "key=value" pairs expected in the summary
	}{
		{"unset", nil,
			fmt.Sprint(250_000, 16<<20, 4<<20, 10*time.Second, 30*time.Second, 4096, 64, 256, 4),
			[]string{"max_record_rows=250000", "max_decoded_bytes=16777216", "max_queue_bytes=4194304", "write_timeout=10s",
				"ping_interval=30s", "max_client_message=4096", "catchup_readers=4", "format=auto"}},
		{"set", map[string]string{
			"MAX_RECORD_ROWS": "7", "MAX_DECODED_BYTES": "8", "MAX_QUEUE_BYTES": "9", "WRITE_TIMEOUT": "1s", "PING_INTERVAL": "2s",
			"MAX_CLIENT_MESSAGE": "10", "MAX_SUBSCRIPTION_KEYS": "11", "MAX_KEY_LENGTH": "12", "CATCHUP_READERS": "13", "FORMAT": "raw"},
			fmt.Sprint(7, 8, 9, time.Second, 2*time.Second, 10, 11, 12, 13),
			[]string{"max_record_rows=7", "max_decoded_bytes=8", "max_queue_bytes=9", "write_timeout=1s",
				"ping_interval=2s", "max_client_message=10", "catchup_readers=13", "format=raw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			c := withDefaults(cfg)
			if got := settings(c); got != tt.want {
				t.Errorf("settings %s, want %s", got, tt.want)
			}
			attrs := (&Service{cfg: c}).Summary()
			var pairs []string
			for i := 0; i+1 < len(attrs); i += 2 {
				pairs = append(pairs, fmt.Sprintf("%v=%v", attrs[i], attrs[i+1]))
			}
			line := " " + strings.Join(pairs, " ") + " "
			for _, w := range tt.summary {
				if !strings.Contains(line, " "+w+" ") {
					t.Errorf("summary %q lacks %q", line, w)
				}
			}
		})
	}
}
