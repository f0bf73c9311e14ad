package devbroker

import (
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const numSensors = 4

var sensorLocations = [numSensors]string{"lab", "office", "warehouse", "roof"}

// sensor is one simulated device; its readings wander around a set point.
type sensor struct {
	key                    string
	location               string
	baseTemp, baseHumidity float64
	temp, humidity         float64
}

// demo generates the demo readings. It is owned by the producer goroutine.
type demo struct {
	rng     *rand.Rand
	sensors [numSensors]sensor
}

func newDemo(seed uint64) *demo {
	d := &demo{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range d.sensors {
		s := &d.sensors[i]
		s.key = "sensor-" + strconv.Itoa(i+1)
		s.location = sensorLocations[i]
		s.baseTemp = 19 + 2*float64(i) + d.rng.Float64()
		s.baseHumidity = 35 + 5*float64(i) + 5*d.rng.Float64()
		s.temp, s.humidity = s.baseTemp, s.baseHumidity
	}
	return d
}

// round advances every sensor one step and returns one record per sensor,
// keyed by sensor id, with a Quix Streams 2.x style JSON row as value.
func (d *demo) round(now time.Time) []*kgo.Record {
	ts := now.UnixNano()
	recs := make([]*kgo.Record, numSensors)
	for i := range d.sensors {
		s := &d.sensors[i]
		// A mean-reverting random walk: smooth, but never drifts away.
		s.temp += 0.1*(s.baseTemp-s.temp) + 0.15*d.rng.NormFloat64()
		s.humidity += 0.1*(s.baseHumidity-s.humidity) + 0.3*d.rng.NormFloat64()
		s.humidity = math.Min(100, math.Max(0, s.humidity))
		recs[i] = &kgo.Record{
			Key:       []byte(s.key),
			Value:     s.appendJSON(make([]byte, 0, 112), ts),
			Timestamp: now,
		}
	}
	return recs
}

func (s *sensor) appendJSON(b []byte, ts int64) []byte {
	b = append(b, `{"Timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"temperature":`...)
	b = strconv.AppendFloat(b, s.temp, 'f', 2, 64)
	b = append(b, `,"humidity":`...)
	b = strconv.AppendFloat(b, s.humidity, 'f', 1, 64)
	b = append(b, `,"Tags":{"location":"`...)
	b = append(b, s.location...) // plain ASCII, no escaping needed
	return append(b, `"}}`...)
}

// runDemo produces one round per interval until ctx is done. A failed round
// is logged once per run of failures, so a broker hiccup does not flood the
// log.
func runDemo(ctx context.Context, client *kgo.Client, d *demo, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		err := client.ProduceSync(ctx, d.round(time.Now())...).FirstErr()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			logger.Warn("dev broker: demo producer failing", "err", err)
		case err == nil && failing:
			failing = false
			logger.Info("dev broker: demo producer recovered")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
