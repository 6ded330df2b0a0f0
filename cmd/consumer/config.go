package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/textpulse/textpulse/internal/kafka"
	"github.com/textpulse/textpulse/internal/secret"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// envPrefix prefixes every environment variable that sets a config key:
// kafka.brokers is TEXTPULSE_KAFKA_BROKERS.
const envPrefix = "TEXTPULSE_"

// Config is the whole configuration of the consumer.
type Config struct {
	Kafka      kafka.Config           `koanf:"kafka"`
	Decode     processor.DecodeConfig `koanf:"decode"`
	Batch      processor.BatchConfig  `koanf:"batch"`
	ClickHouse clickhouse.Config      `koanf:"clickhouse"`
	Stages     StagesConfig           `koanf:"stages"`
	ORT        ORTConfig              `koanf:"ort"`
	HTTP       HTTPConfig             `koanf:"http"`
	Log        LogConfig              `koanf:"log"`
	Memory     MemoryConfig           `koanf:"memory"`
	// MigrateOnStart runs the schema migrations before consuming.
	MigrateOnStart bool `koanf:"migrate_on_start"`
}

// HTTPConfig configures the metrics and health endpoints.
type HTTPConfig struct {
	// Listen is the address of /metrics, /healthz and /readyz; empty
	// disables the server.
	Listen string `koanf:"listen"`
	// Pprof serves the Go profiler under /debug/pprof/ on the same address.
	Pprof bool `koanf:"pprof"`
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `koanf:"level"`
	// Format is json or text.
	Format string `koanf:"format"`
}

// DefaultConfig returns the defaults: local Kafka and ClickHouse.
func DefaultConfig() Config {
	return Config{
		Kafka:          kafka.DefaultConfig(),
		Decode:         processor.DefaultDecodeConfig(),
		Batch:          processor.DefaultBatchConfig(),
		ClickHouse:     clickhouse.DefaultConfig(),
		Stages:         defaultStagesConfig(),
		HTTP:           HTTPConfig{Listen: "127.0.0.1:9464"},
		Log:            LogConfig{Level: "info", Format: "json"},
		MigrateOnStart: true,
	}
}

// Validate checks the whole configuration and reports every problem.
func (c Config) Validate() error {
	errs := []error{c.Kafka.Validate(), c.Decode.Validate(), c.Batch.Validate(), c.ClickHouse.Validate()}
	errs = append(errs, c.Stages.validate(c.Kafka.LagInterval), c.Memory.validate())
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: want json or text", c.Log.Format))
	}
	return errors.Join(errs...)
}

// field is one leaf of the configuration: its dotted key and Go type.
type field struct {
	key    string
	typ    reflect.Type
	value  reflect.Value
	secret bool
}

// fields lists the leaves of v (a struct) by their koanf tags.
func fields(v reflect.Value, prefix string) []field {
	var out []field
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("koanf")
		if tag == "" || !sf.IsExported() {
			continue
		}
		fv := v.Field(i)
		if tag == ",squash" {
			out = append(out, fields(fv, prefix)...)
			continue
		}
		key := prefix + tag
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[time.Time]() {
			out = append(out, fields(fv, key+".")...)
			continue
		}
		out = append(out, field{key: key, typ: sf.Type, value: fv, secret: sf.Type == reflect.TypeFor[secret.Secret]()})
	}
	return out
}

// envName returns the environment variable for a key.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// flagSet defines one flag per config key, named as the key (for example
// --kafka.brokers), plus --config and --print-config.
func flagSet(name string, defaults Config) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.String("config", "", "YAML configuration file (flags > "+envPrefix+"* environment > file > defaults)")
	fs.Bool("print-config", false, "print the effective configuration, secrets redacted, and exit")
	for _, f := range fields(reflect.ValueOf(defaults), "") {
		usage := "env " + envName(f.key)
		switch {
		case f.typ == reflect.TypeFor[time.Duration]():
			fs.Duration(f.key, time.Duration(f.value.Int()), usage)
		case f.typ.Kind() == reflect.String:
			def := f.value.String()
			if f.secret {
				def = ""
			}
			fs.String(f.key, def, usage)
		case f.typ.Kind() == reflect.Int:
			fs.Int(f.key, int(f.value.Int()), usage)
		case f.typ.Kind() == reflect.Int64:
			fs.Int64(f.key, f.value.Int(), usage)
		case f.typ.Kind() == reflect.Bool:
			fs.Bool(f.key, f.value.Bool(), usage)
		case f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() == reflect.String:
			fs.StringSlice(f.key, f.value.Interface().([]string), usage+" (comma-separated)")
		}
	}
	return fs
}

// loadConfig parses args and the environment into a Config in the order
// flags > environment > YAML file > defaults. It returns the koanf instance
// too, for --print-config.
// loadCommandConfig parses args with all, a flag set of the configuration
// keys and a command's own flags, then loads the configuration from the
// keys that were given, the environment and --config as loadConfig does.
// A parse error is a usageError, or pflag.ErrHelp.
func loadCommandConfig(all *pflag.FlagSet, name string, args []string, getenv func(string) string) (Config, error) {
	if err := all.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, &usageError{err}
	}
	cfgFlags := flagSet(name, DefaultConfig())
	var cfgArgs []string
	all.Visit(func(f *pflag.Flag) {
		if cfgFlags.Lookup(f.Name) == nil {
			return
		}
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		cfgArgs = append(cfgArgs, "--"+f.Name+"="+v)
	})
	cfg, _, err := loadConfig(cfgFlags, cfgArgs, getenv)
	if err != nil {
		return Config{}, &usageError{err}
	}
	return cfg, nil
}

func loadConfig(fs *pflag.FlagSet, args []string, getenv func(string) string) (Config, *koanf.Koanf, error) {
	defaults := DefaultConfig()
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	ko := koanf.New(".")
	leaves := fields(reflect.ValueOf(defaults), "")
	for _, f := range leaves {
		if err := ko.Set(f.key, f.value.Interface()); err != nil {
			return Config{}, nil, fmt.Errorf("set default %s: %w", f.key, err)
		}
	}
	if path, _ := fs.GetString("config"); path != "" {
		if err := ko.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, nil, fmt.Errorf("load config file %s: %w", path, err)
		}
	}
	byEnv := make(map[string]field, len(leaves))
	for _, f := range leaves {
		byEnv[envName(f.key)] = f
	}
	envProvider := env.Provider(".", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(k, v string) (string, any) {
			f, ok := byEnv[k]
			if !ok {
				return "", nil
			}
			if f.typ.Kind() == reflect.Slice {
				return f.key, splitList(v)
			}
			return f.key, v
		},
		EnvironFunc: func() []string { return environ(getenv, byEnv) },
	})
	if err := ko.Load(envProvider, nil); err != nil {
		return Config{}, nil, fmt.Errorf("load environment: %w", err)
	}
	if err := ko.Load(posflag.ProviderWithFlag(fs, ".", ko, func(f *pflag.Flag) (string, any) {
		if !f.Changed {
			return "", nil
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			return f.Name, sv.GetSlice()
		}
		return f.Name, f.Value.String()
	}), nil); err != nil {
		return Config{}, nil, fmt.Errorf("load flags: %w", err)
	}
	for _, k := range []string{"config", "print-config"} {
		ko.Delete(k)
	}
	var cfg Config
	err := ko.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			mapstructure.TextUnmarshallerHookFunc(),
		),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           &cfg,
		TagName:          "koanf",
	}})
	if err != nil {
		return Config{}, nil, fmt.Errorf("decode config: %w", err)
	}
	return cfg, ko, nil
}

// environ lists the TEXTPULSE_* variables that name config keys.
func environ(getenv func(string) string, known map[string]field) []string {
	var out []string
	for name := range known {
		if v := getenv(name); v != "" {
			out = append(out, name+"="+v)
		}
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// redactedYAML renders the effective configuration as YAML with every
// secret replaced by secret.Redacted.
func redactedYAML(ko *koanf.Koanf) ([]byte, error) {
	c := ko.Copy()
	for _, f := range fields(reflect.ValueOf(DefaultConfig()), "") {
		if f.secret && c.String(f.key) != "" {
			if err := c.Set(f.key, secret.Redacted); err != nil {
				return nil, fmt.Errorf("redact %s: %w", f.key, err)
			}
		}
	}
	b, err := c.Marshal(yaml.Parser())
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return b, nil
}
