package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	yaml := "kafka:\n  group: from-file\n  topics: [a, b]\nbatch:\n  max_records: 11\n  max_wait: 2s\nclickhouse:\n  database: filedb\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Kafka.Group != "textpulse" || c.Batch.MaxRecords != DefaultConfig().Batch.MaxRecords || c.ClickHouse.Addr[0] != "127.0.0.1:9000" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "file over defaults", args: []string{"--config", file}, check: func(t *testing.T, c Config) {
			if c.Kafka.Group != "from-file" || c.Batch.MaxRecords != 11 || c.Batch.MaxWait != 2*time.Second ||
				strings.Join(c.Kafka.Topics, ",") != "a,b" || c.ClickHouse.Database != "filedb" {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "env over file", args: []string{"--config", file},
			env: map[string]string{"TEXTPULSE_KAFKA_GROUP": "from-env", "TEXTPULSE_KAFKA_TOPICS": "x, y", "TEXTPULSE_BATCH_MAX_WAIT": "3s"},
			check: func(t *testing.T, c Config) {
				if c.Kafka.Group != "from-env" || strings.Join(c.Kafka.Topics, ",") != "x,y" || c.Batch.MaxWait != 3*time.Second || c.Batch.MaxRecords != 11 {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "flags over env", args: []string{"--config", file, "--kafka.group", "from-flag", "--batch.max_records", "7"},
			env: map[string]string{"TEXTPULSE_KAFKA_GROUP": "from-env", "TEXTPULSE_BATCH_MAX_RECORDS": "9"},
			check: func(t *testing.T, c Config) {
				if c.Kafka.Group != "from-flag" || c.Batch.MaxRecords != 7 || c.ClickHouse.Database != "filedb" {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "secret from env", env: map[string]string{"TEXTPULSE_CLICKHOUSE_PASSWORD": "pw"}, check: func(t *testing.T, c Config) {
			if c.ClickHouse.Password.Reveal() != "pw" {
				t.Fatalf("password %q", c.ClickHouse.Password.Reveal())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := loadConfig(flagSet("test", DefaultConfig()), tt.args, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.yaml")
	if err := os.WriteFile(typo, []byte("batch:\n  max_recordz: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown yaml key", args: []string{"--config", typo}, want: "max_recordz"},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "nope.yaml")}, want: "nope.yaml"},
		{name: "invalid values", args: []string{"--batch.max_records", "0", "--log.level", "loud", "--kafka.start_offset", "middle"},
			want: "batch.max_records"},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: "no-such-flag"},
		{name: "emotion without a model", args: []string{"--stages.emotion.enabled"}, want: "stages.emotion: invalid config: model_dir is empty"},
		{name: "unknown stage provider", args: []string{"--stages.sentiment.enabled", "--stages.sentiment.provider", "gpu"},
			want: `stages.sentiment: provider "gpu": want api or local`},
		{name: "local embedding without a model", args: []string{"--stages.embedding.enabled", "--stages.embedding.provider", "local"},
			want: "stages.embedding: invalid config: model_dir is empty"},
		{name: "bad local failure policy", args: []string{"--stages.emotion.enabled", "--stages.emotion.model_dir", "m", "--stages.emotion.on_failure", "drop"},
			want: `on_failure "drop"`},
		{name: "unknown command", args: []string{"frobnicate"}, want: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, envOf(nil), &out, &errOut)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Fatalf("error %v (stderr %q), want a usage error mentioning %q", err, errOut.String(), tt.want)
			}
			if exitCode(err) != 2 {
				t.Fatalf("exit code %d, want 2", exitCode(err))
			}
		})
	}
}

func TestPrintConfigRedactsSecrets(t *testing.T) {
	const planted = "s3cr3t-planted-value"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(planted+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	args := []string{"--print-config", "--clickhouse.password", planted, "--stages.sentiment.api_key", planted, "--kafka.sasl.mechanism", "plain",
		"--kafka.sasl.username", "u", "--kafka.sasl.password_file", pwFile}
	if err := run(context.Background(), args, envOf(map[string]string{"TEXTPULSE_KAFKA_SASL_PASSWORD": planted, "TEXTPULSE_STAGES_EMBEDDING_API_KEY": planted}), &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), planted) {
		t.Fatalf("--print-config leaked the secret:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Fatalf("no redaction marker:\n%s", out.String())
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, envOf(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "textpulse consumer ") {
		t.Fatalf("version output %q", out.String())
	}
}
