// Package wsdest holds the domain types shared by the packages of the wsdest
// service: the Kafka record as it travels from the consumer, through decoding,
// to the fan-out hub, and the Cursor, a position in the topic that clients
// resume from.
//
// The record keeps its topic, partition and offset all the way through, so
// that every message can carry the position after it (its cursor).
package wsdest

import "time"

// Record is one Kafka record as consumed from the input topic.
//
// A Record is immutable once handed to the pipeline: no package may modify
// Key, Headers or Value after that, because the same slices may be shared by
// several messages and goroutines.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the record's Kafka timestamp (create or log-append time).
	Timestamp time.Time
	// Key is nil for a null key; an empty non-nil slice is an empty key.
	Key     []byte
	Headers []Header
	// Value is nil for a null value (a tombstone).
	Value []byte
}

// Header is one Kafka record header. Values are arbitrary bytes.
type Header struct {
	Key   string
	Value []byte
}
