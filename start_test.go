package wsdest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseStart(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cur := Cursor{Topic: NewTopicIdentity("t", [16]byte{1}), Offsets: []int64{4}}
	tests := []struct {
		name, from, last string
		want             Start
		err              string
	}{
		{"default", "", "", Start{Kind: StartLatest}, ""},
		{"latest", "latest", "", Start{Kind: StartLatest}, ""},
		{"earliest", "earliest", "", Start{Kind: StartEarliest}, ""},
		{"duration", "-5m", "", Start{Kind: StartTime, Time: now.Add(-5 * time.Minute)}, ""},
		{"time", "2026-12-01T09:00:00Z", "", Start{Kind: StartTime, Time: now.Add(-time.Hour)}, ""},
		{"time with offset", "2026-12-01T11:00:00+02:00", "", Start{Kind: StartTime, Time: now.Add(-time.Hour)}, ""},
		{"cursor", cur.String(), "", Start{Kind: StartCursor, Cursor: cur}, ""},
		{"last", "", "10", Start{Kind: StartLast, Last: 10}, ""},
		{"last with latest", "latest", "3", Start{Kind: StartLast, Last: 3}, ""},
		{"positive duration", "5m", "", Start{}, "cursor"},
		{"bad duration", "-5x", "", Start{}, "negative duration"},
		{"bad time", "2026-13-01T00:00:00Z", "", Start{}, "RFC 3339"},
		{"garbage", "hello", "", Start{}, "cursor"},
		{"last zero", "", "0", Start{}, "count"},
		{"last huge", "", "1000000", Start{}, "count"},
		{"last and from", "earliest", "5", Start{}, "combined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStart(tt.from, tt.last, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.want.Kind || !got.Time.Equal(tt.want.Time) || got.Last != tt.want.Last || got.Cursor.String() != tt.want.Cursor.String() {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckCursor(t *testing.T) {
	id := NewTopicIdentity("input", [16]byte{1})
	same := Cursor{Topic: id}
	recreated := Cursor{Topic: NewTopicIdentity("input", [16]byte{2})}
	other := Cursor{Topic: NewTopicIdentity("other", [16]byte{1})}
	if CheckCursor(&same, id) != nil || CheckCursor(&recreated, id) != nil {
		t.Fatal("cursor of the same topic refused")
	}
	if err := CheckCursor(&other, id); !errors.Is(err, ErrOtherTopic) {
		t.Fatalf("other topic: %v", err)
	}
}
