// Command wsdest streams a Kafka (Quix) topic to WebSocket clients.
//
// It is configured through environment variables (and a .env file in the
// working directory, which never overrides the environment); see
// docs/configuration.md. With no broker configured it starts an embedded development
// broker with demo data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/server"
	"github.com/wsdest/wsdest/internal/service"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the service failed while running
	exitConfig  = 2 // bad settings or start-up failure
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status. environ is the
// environment as os.Environ returns it ("NAME=value"). Tests call it with
// their own environment and PORT=0.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsdest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envFile := fs.String("env-file", "", "`file` of KEY=VALUE settings read beneath the environment; it must exist (default: ./.env if there is one)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wsdest [-env-file FILE] [-version]\n\n"+
			"Streams the Kafka topic named by $input to WebSocket clients on ws://HOST:PORT/ws.\n"+
			"All settings are environment variables; see docs/configuration.md. With no broker configured\n"+
			"(Quix__Broker__Address, Quix__Sdk__Token) an embedded development broker with demo data starts.\n\n")
		fs.PrintDefaults()
	}
	showVersion := fs.Bool("version", false, "print the version and build information, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if *showVersion {
		info, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(info))
		return exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsdest: unexpected argument %q (settings are environment variables)\n", fs.Arg(0))
		return exitConfig
	}

	dotenv, envRead, err := loadEnvFile(*envFile)
	if err != nil {
		fmt.Fprintf(stderr, "wsdest: %v\n", err)
		return exitConfig
	}
	env := envMap(environ)
	lookup := config.Lookup(dotenv, func(name string) (string, bool) { v, ok := env[name]; return v, ok })
	// A misspelt name is refused before anything is read: ignored, it
	// could start the development broker in place of the real one.
	if err := config.CheckNames(slices.Concat(slices.Collect(maps.Keys(env)), slices.Collect(maps.Keys(dotenv))), lookup); err != nil {
		fmt.Fprintf(stderr, "wsdest: %v\n", err)
		return exitConfig
	}
	cfg, err := config.FromEnv(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "wsdest: %v\n", err)
		return exitConfig
	}
	logger := newLogger(cfg.Log, stderr)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}

	svc, err := service.New(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "wsdest: %v\n", err)
		return exitConfig
	}
	// The URL to open comes first: it is what a new user looks for.
	var head []any
	if cfg.Viewer {
		head = append(head, "open", server.ViewerURL(svc.Addr(), cfg.PublicURL))
	} else {
		head = append(head, "viewer", false)
	}
	head = append(head, "listen", svc.Addr().String(), "env_file", envRead)
	logger.Info("wsdest started", append(head, svc.Summary()...)...)
	if !cfg.Auth.Enabled {
		// Expected with the dev broker; worth a warning anywhere else.
		level := slog.LevelWarn
		if cfg.DevBroker.Enabled {
			level = slog.LevelInfo
		}
		logger.Log(ctx, level, "authentication is off: any client can read the stream (set AUTH_API_KEYS or WS_USERNAME/WS_PASSWORD)")
	}
	if err := svc.Run(ctx); err != nil {
		logger.Error("wsdest stopped", "err", err)
		return exitFailure
	}
	logger.Info("wsdest stopped")
	return exitOK
}

// envMap turns os.Environ's "NAME=value" entries into a map; a later
// entry of the same name wins, as with os.Getenv.
func envMap(environ []string) map[string]string {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && name != "" {
			env[name] = value
		}
	}
	return env
}

// loadEnvFile reads the -env-file named (which must exist) or, when none
// is named, ./.env if there is one. read is the file that was read, or
// "none", for the start-up line.
func loadEnvFile(named string) (env map[string]string, read string, err error) {
	if named != "" {
		env, err = config.LoadDotEnv(named)
		return env, named, err
	}
	env, found, err := config.LoadDotEnvIfExists(".env")
	if !found {
		return env, "none", err
	}
	return env, ".env", err
}

// versionLine describes the build: the module version (a tag for
// `go install ...@vX`, "(devel)" for a local build), the commit and its
// time when the build recorded them, and the Go release and platform.
func versionLine(info *debug.BuildInfo) string {
	if info == nil {
		return "wsdest (no build information) " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	parts := []string{"wsdest", info.Main.Version}
	var rev, when, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		parts = append(parts, "commit "+rev[:min(12, len(rev))]+dirty)
	}
	if when != "" {
		parts = append(parts, when)
	}
	return strings.Join(append(parts, info.GoVersion, runtime.GOOS+"/"+runtime.GOARCH), " ")
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
