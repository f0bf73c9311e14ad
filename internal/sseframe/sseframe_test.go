package sseframe

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// parse is a minimal reader following the WHATWG event stream
// interpretation: it returns each dispatched event's id and data.
func parse(t *testing.T, stream []byte) (ids, datas []string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		}
		if data[i] == '\r' {
			if i+1 == len(data) && !atEOF {
				return 0, nil, nil
			}
			if i+1 < len(data) && data[i+1] == '\n' {
				return i + 2, data[:i], nil
			}
		}
		return i + 1, data[:i], nil
	})
	var id string
	var data []string
	have := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if have {
				ids = append(ids, id)
				datas = append(datas, strings.Join(data, "\n"))
			}
			data, have = nil, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			id = value
		case "data":
			data = append(data, value)
			have = true
		}
	}
	return ids, datas
}

func TestEvent(t *testing.T) {
	tests := []struct {
		name, id, data, want, seen string
	}{
		{"simple", "c1", `{"a":1}`, "id: c1\ndata: {\"a\":1}\n\n", `{"a":1}`},
		{"no id", "", `1`, "data: 1\n\n", `1`},
		{"newlines", "c", "{\n\"a\":1\n}", "id: c\ndata: {\ndata: \"a\":1\ndata: }\n\n", "{\n\"a\":1\n}"},
		{"crlf", "c", "[1,\r\n2]", "id: c\ndata: [1,\ndata: 2]\n\n", "[1,\n2]"},
		{"cr", "c", "[1,\r2]", "id: c\ndata: [1,\ndata: 2]\n\n", "[1,\n2]"},
		{"trailing newline", "c", "1\n", "id: c\ndata: 1\ndata: \n\n", "1\n"},
		{"empty", "c", "", "id: c\ndata: \n\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Event(tt.id, []byte(tt.data))
			if string(got) != tt.want {
				t.Fatalf("Event = %q, want %q", got, tt.want)
			}
			if n := Len(tt.id, []byte(tt.data)); n != len(got) {
				t.Fatalf("Len = %d, the event has %d bytes", n, len(got))
			}
			ids, datas := parse(t, append(append([]byte(nil), Heartbeat...), got...))
			if len(datas) != 1 || datas[0] != tt.seen || ids[0] != tt.id {
				t.Fatalf("a reader sees ids %q data %q, want %q %q", ids, datas, tt.id, tt.seen)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	if got := string(Retry(2000)); got != "retry: 2000\n\n" {
		t.Fatalf("Retry = %q", got)
	}
}

func FuzzEvent(f *testing.F) {
	f.Add("id", []byte("{\"a\":\r\n1}"))
	f.Fuzz(func(t *testing.T, id string, data []byte) {
		if strings.ContainsAny(id, "\r\n\x00") {
			return
		}
		ev := Event(id, data)
		if Len(id, data) != len(ev) {
			t.Fatalf("Len %d != %d", Len(id, data), len(ev))
		}
		_, datas := parse(t, ev)
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		if len(datas) != 1 || datas[0] != want {
			t.Fatalf("data %q, want %q", datas, want)
		}
	})
}
