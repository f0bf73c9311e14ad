package hub

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/view"
)

// telemetry returns n encoded records of about 300 bytes, as a sensor
// produces them: numeric fields to filter on, nested tags to project.
func telemetry(b *testing.B, n int) []*message.Message {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	enc := encode.New(encode.Options{})
	var want [message.NumShapes]bool
	want[message.ShapePlain] = true
	pos := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("t", [16]byte{1})}
	var msgs []*message.Message
	for i := range n {
		v := fmt.Appendf(nil, `{"Timestamp":%d,"temperature":%.2f,"humidity":%.1f,"pressure":%.1f,"voltage":%.3f,`+
			`"current":%.3f,"rpm":%d,"status":"running","firmware":"4.2.17","Tags":{"location":"hall-%d","line":"L%d","device":"sensor-%04d"}}`,
			time.Now().UnixNano(), rng.Float64()*100, rng.Float64()*100, 950+rng.Float64()*100, 220+rng.Float64()*20,
			rng.Float64()*5, rng.IntN(3000), i%7, i%3, i%1000)
		rec := &wsdest.Record{Topic: "t", Partition: 0, Offset: int64(i), Timestamp: time.Now(),
			Key: fmt.Appendf(nil, "sensor-%04d", i%1000), Value: v}
		msgs = enc.EncodeAt(msgs, rec, want, &pos)
	}
	return msgs
}

// BenchmarkPublishViews compares 10,000 clients without views (plain) with
// 10,000 clients spread over 100 filters (value.temperature > T) and 10
// projections (two members each): 1,000 distinct views of 10 clients
// (filters x projections), or 100 filters alone, or 10 projections
// alone, for Publishes of 10 records of about 300 bytes, until every frame
// is written (to sockets that never block). ns/delivery is the cost per
// frame delivered; ns/record the cost per record published.
func BenchmarkPublishViews(b *testing.B) {
	const clients, batch = 10000, 10
	msgs := telemetry(b, batch)
	projections := []string{"temperature,humidity", "pressure,voltage", "current,rpm", "status,firmware", "Tags.location,temperature",
		"Tags.line,humidity", "Tags.device,rpm", "temperature,Tags", "voltage,current", "humidity,pressure"}
	cases := []struct {
		name    string
		where   func(i int) string
		fields  func(i int) string
		maxView int
	}{
		{name: "plain"},
		{name: "filters=100", where: func(i int) string { return fmt.Sprintf("value.temperature > %d", i%100) }},
		{name: "projections=10", fields: func(i int) string { return projections[i%10] }},
		{name: "filters=100xprojections=10", where: func(i int) string { return fmt.Sprintf("value.temperature > %d", i%100) },
			fields: func(i int) string { return projections[(i/100)%10] }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			reg, err := view.New(view.Config{MaxViews: 1000})
			if err != nil {
				b.Fatal(err)
			}
			h := New(Config{PingInterval: -1})
			deliveries := uint64(0)
			for i := range clients {
				sub := Subscription{All: true}
				if tc.where != nil || tc.fields != nil {
					var where, fields string
					if tc.where != nil {
						where = tc.where(i)
					}
					if tc.fields != nil {
						fields = tc.fields(i)
					}
					v, err := reg.Acquire(where, fields, message.ShapePlain, "")
					if err != nil {
						b.Fatal(err)
					}
					sub.View = v
				}
				add(h, &discardConn{}, sub, nil)
				for _, m := range msgs {
					if sub.View == nil || sub.View.Apply(m) != nil {
						deliveries++
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.Publish(msgs)
				waitWritten(b, h, uint64(i+1)*deliveries)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(uint64(b.N)*deliveries), "ns/delivery")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
			b.ReportMetric(float64(reg.Stats().Alive), "views")
		})
	}
}
