package wsframe_test

import (
	"bytes"
	"compress/flate"
	"fmt"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/wsframe"
)

func TestDeflate(t *testing.T) {
	d, err := wsframe.NewDeflater(flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		payload string
		smaller bool
	}{
		{"telemetry", `{"Timestamp":1795770742528612163,"temperature":21.12,"humidity":42.9,"pressure":1013.2,"Tags":{"location":"office","sensor":"sensor-2"}}` + strings.Repeat(`,"x":1`, 20), true},
		{"large", strings.Repeat(`{"a":1,"b":"two"}`, 5000), true},
		{"tiny", `{"a":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := wsframe.Text([]byte(tt.payload))
			z := d.Deflate(f)
			if !tt.smaller {
				if z != nil {
					t.Fatalf("compressed %d bytes into %d", len(f), len(z))
				}
				return
			}
			if z == nil || len(z) >= len(f) {
				t.Fatalf("frame of %d bytes not made smaller", len(f))
			}
			if z[0] != 0x80|0x40|wsframe.OpText {
				t.Fatalf("first byte %#x, want FIN|RSV1|text", z[0])
			}
			got, err := new(wsframe.Inflater).Inflate(nil, payload(z))
			if err != nil || !bytes.Equal(got, []byte(tt.payload)) {
				t.Fatalf("inflate: %v, %d bytes, want %d", err, len(got), len(tt.payload))
			}
			// No context takeover: the same frame compresses the same way
			// the second time.
			if again := d.Deflate(f); !bytes.Equal(again, z) {
				t.Fatal("second compression differs: context taken over")
			}
		})
	}
}

func TestParserDeflateBit(t *testing.T) {
	compressed := frame(0x80|0x40|wsframe.OpText, []byte("x"))
	var e events
	p := wsframe.Parser{}
	if err := p.Feed(compressed, &e); err == nil {
		t.Fatal("RSV1 accepted without Deflate")
	}
	p = wsframe.Parser{Deflate: true}
	if err := p.Feed(compressed, &e); err != nil {
		t.Fatalf("RSV1 with Deflate: %v", err)
	}
	p = wsframe.Parser{Deflate: true}
	if err := p.Feed(frame(0x80|0x40|wsframe.OpPing, nil), &e); err == nil {
		t.Fatal("RSV1 on a control frame accepted")
	}
}

// payload returns the payload of an unmasked server frame.
func payload(f []byte) []byte {
	switch f[1] & 0x7F {
	case 126:
		return f[4:]
	case 127:
		return f[10:]
	}
	return f[2:]
}

// BenchmarkDeflate compresses one telemetry record's frame (the demo's
// shape, 300 bytes) at several levels; saved% is the share of the frame's
// bytes saved.
func BenchmarkDeflate(b *testing.B) {
	p := []byte(`{"Timestamp":1795770742528612163,"sensor":"sensor-2","temperature":21.12,"humidity":42.9,"pressure":1013.25,"battery":87.5,"rssi":-67,"location":{"lat":52.5200,"lon":13.4050},"Tags":{"location":"office","building":"north","floor":"3","model":"TH-220"},"status":"ok","seq":123456}`)
	f := wsframe.Text(p)
	for _, level := range []int{flate.BestSpeed, 3, flate.DefaultCompression, flate.BestCompression} {
		b.Run(fmt.Sprintf("level=%d/bytes=%d", level, len(f)), func(b *testing.B) {
			d, err := wsframe.NewDeflater(level)
			if err != nil {
				b.Fatal(err)
			}
			var z []byte
			for b.Loop() {
				z = d.Deflate(f)
			}
			b.ReportMetric(100*float64(len(f)-len(z))/float64(len(f)), "saved%")
		})
	}
}
