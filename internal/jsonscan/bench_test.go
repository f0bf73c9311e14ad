package jsonscan

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// benchRecord is a plain telemetry record of the size the service carries
// (a few hundred bytes, one string with an escape and one non-ASCII).
const benchRecord = `{"car":"car-1","driver":"Ren\u00e9 Müller","lap":12,"speed":288.5,"rpm":12000,"gear":7,` +
	`"throttle":0.93,"brake":0,"drs":false,"tyres":{"fl":92.1,"fr":93.4,"rl":88.0,"rr":88.7},` +
	`"position":{"x":1024.25,"y":-311.5,"z":2.75},"sector":2,"flags":["green"],"pit":null,` +
	`"ts":1692703362840389000}`

// BenchmarkValid measures the check every plain record goes through, beside
// encoding/json.Valid plus utf8.Valid, which would give the same answer.
func BenchmarkValid(b *testing.B) {
	v := []byte(benchRecord)
	b.Run("jsonscan", func(b *testing.B) {
		b.SetBytes(int64(len(v)))
		b.ReportAllocs()
		for b.Loop() {
			if !Valid(v) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(v)))
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(v) || !utf8.Valid(v) {
				b.Fatal("invalid")
			}
		}
	})
}
