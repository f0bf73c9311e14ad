package boolval_test

import (
	"testing"

	"github.com/wsdest/wsdest/internal/boolval"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr string
	}{
		{in: "true", want: true},
		{in: "TRUE", want: true},
		{in: " Yes ", want: true},
		{in: "1", want: true},
		{in: "false"},
		{in: "No"},
		{in: "0"},
		{in: "", wantErr: `"" is not a boolean (want true/false, yes/no or 1/0)`},
		{in: "on", wantErr: `"on" is not a boolean (want true/false, yes/no or 1/0)`},
		{in: "t", wantErr: `"t" is not a boolean (want true/false, yes/no or 1/0)`},
		{in: "2", wantErr: `"2" is not a boolean (want true/false, yes/no or 1/0)`},
	}
	for _, tt := range tests {
		got, err := boolval.Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Parse(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}
