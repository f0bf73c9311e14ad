package wsdest_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestQuixDeployFiles checks library.json and app.yaml against each other
// and against the code: the same variables in both, each one a variable
// internal/config reads, the entry point present, and the deploy settings
// Quix needs for a public service.
func TestQuixDeployFiles(t *testing.T) {
	var lib struct {
		LibraryItemID    string `json:"libraryItemId"`
		Name             string `json:"name"`
		Language         string `json:"language"`
		ShortDescription string `json:"shortDescription"`
		EntryPoint       string
		Variables        []struct {
			Name, Type, InputType, Description string
			DefaultValue                       *string
			Required                           bool
		}
		DeploySettings struct {
			DeploymentType            string
			CpuMillicores, MemoryInMb int
			Replicas                  int
			PublicAccess              bool
			UrlPrefix                 string
		}
	}
	b, err := os.ReadFile("library.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&lib); err != nil {
		t.Fatalf("library.json: %v", err)
	}
	if lib.LibraryItemID == "" || lib.Name == "" || lib.Language == "" || lib.ShortDescription == "" {
		t.Errorf("library.json: libraryItemId, name, language and shortDescription are required: %+v", lib)
	}
	if _, err := os.Stat(lib.EntryPoint); err != nil || lib.EntryPoint != "dockerfile" {
		t.Errorf("library.json EntryPoint %q: want the dockerfile (%v)", lib.EntryPoint, err)
	}
	d := lib.DeploySettings
	if d.DeploymentType != "Service" || !d.PublicAccess || d.UrlPrefix == "" || d.CpuMillicores <= 0 || d.MemoryInMb <= 0 || d.Replicas < 1 {
		t.Errorf("library.json DeploySettings: %+v", d)
	}

	code, err := os.ReadFile("internal/config/config.go")
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string]bool{"AUTH_API_KEYS": true, "WS_USERNAME": true, "WS_PASSWORD": true}
	var libNames []string
	for _, v := range lib.Variables {
		libNames = append(libNames, v.Name)
		if !strings.Contains(string(code), `"`+v.Name+`"`) {
			t.Errorf("library.json variable %s is not read by internal/config", v.Name)
		}
		want := "FreeText"
		switch {
		case v.Name == "input":
			want = "InputTopic"
			if !v.Required {
				t.Errorf("library.json: input must be Required")
			}
		case secret[v.Name]:
			want = "Secret"
		}
		if v.InputType != want || v.Type != "EnvironmentVariable" || v.Description == "" {
			t.Errorf("library.json variable %s: InputType %q Type %q, want %s, EnvironmentVariable and a description", v.Name, v.InputType, v.Type, want)
		}
		if want == "FreeText" && v.DefaultValue == nil {
			t.Errorf("library.json variable %s: a FreeText variable needs a DefaultValue", v.Name)
		}
	}

	app, err := os.ReadFile("app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var appNames []string
	for _, m := range regexp.MustCompile(`(?m)^  - name: (\S+)$`).FindAllStringSubmatch(string(app), -1) {
		appNames = append(appNames, m[1])
	}
	if !slices.Equal(appNames, libNames) {
		t.Errorf("app.yaml variables %q, library.json %q: want the same, in the same order", appNames, libNames)
	}
	for _, line := range []string{"dockerfile: dockerfile", "  - name: input\n    inputType: InputTopic"} {
		if !strings.Contains(string(app), line) {
			t.Errorf("app.yaml lacks %q", line)
		}
	}
}

// TestDockerfile checks the image's shape: a static, trimmed Go build,
// a non-root user, and the port the service listens on by default.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0 go build -trimpath", "./cmd/wsdest", "AS build", "COPY --from=build /out/wsdest",
		"\nUSER 65532:65532\n", "\nEXPOSE 8000\n", "\nENV PORT=8000\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("dockerfile lacks %q", want)
		}
	}
	if strings.Count(s, "\nFROM ") != 2 {
		t.Errorf("dockerfile: want two stages (build and runtime)")
	}
}
