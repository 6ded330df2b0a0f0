// Command consumer reads text events from Kafka, enriches them and writes
// them to ClickHouse, committing offsets only after the rows are stored.
//
// Usage:
//
//	consumer [run|migrate|check|version] [flags]
//	consumer dlq [inspect|replay] [flags]
//	consumer enrich [selection] [flags]
//
// Every configuration key is a flag (--kafka.brokers), an environment
// variable (TEXTPULSE_KAFKA_BROKERS) and a YAML key (kafka: {brokers: ...});
// flags win over the environment, which wins over the --config file, which
// wins over the defaults.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second signal ends the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "consumer:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode maps an error to the process exit status: 2 for usage and
// configuration errors, 1 otherwise.
func exitCode(err error) int {
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, pflag.ErrHelp) {
		return 2
	}
	return 1
}

// usageError is a bad command line or configuration.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

func (e *usageError) Unwrap() error { return e.err }

// run parses the command line and runs a subcommand.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		v, rev := buildVersion()
		_, err := fmt.Fprintf(stdout, "textpulse consumer %s %s\n", v, rev)
		return err
	case "dlq":
		return runDLQ(ctx, args, getenv, stdout, stderr)
	case "enrich":
		return runEnrich(ctx, args, getenv, stdout, stderr)
	case "run", "migrate", "check":
	default:
		return &usageError{fmt.Errorf("unknown command %q: want run, migrate, check, enrich, dlq or version", cmd)}
	}
	fs := flagSet("consumer "+cmd, DefaultConfig())
	fs.SetOutput(stderr)
	cfg, ko, err := loadConfig(fs, args, getenv)
	if err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	if pc, _ := fs.GetBool("print-config"); pc {
		b, err := redactedYAML(ko)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	if err := cfg.Validate(); err != nil {
		return &usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	log := newLogger(cfg.Log, stderr)
	switch cmd {
	case "migrate":
		return runMigrate(ctx, cfg, log, stdout)
	case "check":
		return runCheck(ctx, cfg, log, stdout)
	}
	restore, err := applyMemoryLimit(cfg, getenv, log)
	if err != nil {
		return err
	}
	defer restore()
	return runConsumer(ctx, cfg, log)
}

// buildVersion returns the module version and VCS revision stamped by the Go
// toolchain.
func buildVersion() (ver, rev string) {
	ver, rev = "devel", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ver, rev
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			rev = s.Value
		}
	}
	return ver, rev
}
