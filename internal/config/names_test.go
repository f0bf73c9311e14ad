package config

import (
	"slices"
	"strings"
	"testing"
)

// TestKnownNamesAreRead checks that knownNames is exactly the set of
// variables FromEnv reads, so that a new setting cannot be refused as a
// misspelling of itself, nor a misspelling of it slip through.
func TestKnownNamesAreRead(t *testing.T) {
	read := map[string]bool{}
	for _, env := range []map[string]string{nil, broker, with(broker, "Quix__Sdk__Token", "x")} {
		lookup := envOf(env)
		_, _ = FromEnv(func(name string) (string, bool) {
			read[name] = true
			return lookup(name)
		})
	}
	for name := range read {
		if !slices.Contains(knownNames, name) {
			t.Errorf("FromEnv reads %s, which knownNames lacks", name)
		}
	}
	for _, name := range knownNames {
		if !read[name] {
			t.Errorf("knownNames has %s, which FromEnv does not read", name)
		}
	}
}

func TestCheckNames(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // substring of the error; "" = no error
	}{
		{"nothing set", nil, ""},
		{"right spellings", broker, ""},
		{"broker address in upper case", map[string]string{"QUIX__BROKER__ADDRESS": "kafka:9092"},
			"QUIX__BROKER__ADDRESS is not a setting wsdest reads: did you mean Quix__Broker__Address? (names are case-sensitive)"},
		{"topic in upper case", with(broker, "input", "", "INPUT", "t"), ""}, // input is present (empty): INPUT is left alone
		{"topic in upper case, input absent", map[string]string{"Quix__Broker__Address": "k:1", "INPUT": "t"},
			"INPUT is not a setting wsdest reads: did you mean input?"},
		{"lower-case port", map[string]string{"port": "80"}, "did you mean PORT?"},
		{"case mismatch left alone when the right one is set", map[string]string{"PORT": "80", "port": "81"}, ""},
		{"Quix__ typo: letter dropped", map[string]string{"Quix__Broker__Adress": "k:1"},
			"Quix__Broker__Adress is not a setting wsdest reads: did you mean Quix__Broker__Address? (one letter differs)"},
		{"Quix__ typo: letter added", map[string]string{"Quix__Consumer__Group": "g"}, "did you mean Quix__Consumer_Group?"},
		{"Quix__ typo: letter changed, other case", map[string]string{"QUIX__SDK__TOKEM": "x"}, "did you mean Quix__Sdk__Token?"},
		{"Quix__ typo of a set name left alone", map[string]string{"Quix__Broker__Address": "k:1", "Quix__Broker__Adress": "k:2"}, ""},
		{"Quix Cloud's own variables", map[string]string{
			"Quix__Deployment__Id": "d", "Quix__Deployment__Name": "n", "Quix__Workspace__Id": "w",
			"Quix__Deployment__Network__PrivateUrl": "u", "Quix__Project__Id": "p", "Quix__Environment__Id": "e",
			"Quix__Deployment__ReplicaName": "r", "Quix__Organisation__Id": "o", "Quix__Workspace__Name": "wn",
		}, ""},
		{"two edits away", map[string]string{"Quix__Brokr__Adress": "k:1"}, ""},
		{"other variables", map[string]string{"PATH": "/bin", "HOME": "/root", "KAFKA_BROKER": "k:1", "input_topic": "t"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := make([]string, 0, len(tt.env))
			for k := range tt.env {
				names = append(names, k)
			}
			err := CheckNames(names, envOf(tt.env))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %q, want none", err)
			case tt.want != "" && err == nil:
				t.Errorf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestOneEdit(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"abc", "abc", false}, {"abc", "abd", true}, {"abc", "ab", true}, {"abc", "xabc", true},
		{"abc", "acb", false}, {"abc", "a", false}, {"", "a", true}, {"", "", false},
	} {
		if got := oneEdit(tt.a, tt.b); got != tt.want {
			t.Errorf("oneEdit(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
