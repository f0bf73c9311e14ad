// Package sseframe builds the Server-Sent Events stream wsdest writes
// (the WHATWG HTML "text/event-stream" format): events with an id and
// data, comments used as heartbeats, and the retry field.
//
// Like wsframe, every event is one slice of bytes that can be written to any
// number of connections unchanged, so the fan-out path builds each event
// once and shares it.
//
// An event's data may hold line breaks (a JSON value may have newlines
// between its tokens): each line becomes its own "data:" field, which the
// browser's EventSource joins with "\n". A carriage return, alone or
// before a line feed, is a line break too, so the data a client sees has
// "\n" where the value had "\r\n" or "\r"; inside JSON that only happens in
// whitespace between tokens (strings cannot hold raw line breaks), so the
// JSON means the same.
package sseframe

import (
	"bytes"
	"strconv"
)

// Heartbeat is the comment line wsdest sends to keep an idle stream open
// through proxies; EventSource ignores it.
var Heartbeat = []byte(":\n\n")

// Event returns an event with the given id (omitted when empty) and data.
// id must not hold a line break or NUL (a cursor never does).
func Event(id string, data []byte) []byte {
	return AppendEvent(make([]byte, 0, Len(id, data)), id, data)
}

// Len returns the length of the event Event(id, data) builds.
func Len(id string, data []byte) int {
	n := len(data) + len("data: \n\n")
	if id != "" {
		n += len("id: \n") + len(id)
	}
	for i, c := range data {
		switch {
		case c == '\n' && i > 0 && data[i-1] == '\r':
			n-- // the second byte of one "\r\n" line break
		case c == '\n' || c == '\r':
			n += len("\ndata: ") - 1
		}
	}
	return n
}

// AppendEvent appends the event Event(id, data) returns to b.
func AppendEvent(b []byte, id string, data []byte) []byte {
	if id != "" {
		b = append(b, "id: "...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(b, data[:i]...)
		b = append(b, "\ndata: "...)
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++ // "\r\n" is one line break
		}
		data = data[i+1:]
	}
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// Retry returns the "retry:" field telling EventSource how long to wait
// before reconnecting, in milliseconds.
func Retry(ms int) []byte {
	b := append([]byte("retry: "), strconv.Itoa(ms)...)
	return append(b, "\n\n"...)
}
