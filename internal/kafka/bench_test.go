package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkToRecords converts one poll of 3 partitions × 100 records with
// two headers each, as the Run loop does for every fetch.
func BenchmarkToRecords(b *testing.B) {
	var topic kgo.FetchTopic
	topic.Topic = "t"
	for p := range int32(3) {
		fp := kgo.FetchPartition{Partition: 2 - p}
		for o := range int64(100) {
			fp.Records = append(fp.Records, &kgo.Record{
				Topic: "t", Partition: 2 - p, Offset: o, Timestamp: time.Unix(0, o),
				Key: []byte("key"), Value: []byte(`{"v":1}`),
				Headers: []kgo.RecordHeader{{Key: "__Q_ModelKey", Value: []byte("TimeseriesData")}, {Key: "__Q_CodecId", Value: []byte("JT")}},
			})
		}
		topic.Partitions = append(topic.Partitions, fp)
	}
	fetches := kgo.Fetches{{Topics: []kgo.FetchTopic{topic}}}
	b.ReportAllocs()
	for b.Loop() {
		if len(toRecords(fetches)) != 300 {
			b.Fatal("wrong count")
		}
	}
}
