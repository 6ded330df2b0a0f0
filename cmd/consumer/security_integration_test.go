package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// secureEnv is a broker that accepts only SASL over TLS and a ClickHouse
// server that accepts only TLS and a password, both started by the test.
type secureEnv struct {
	kafka *itest.SecureKafka
	ch    *itest.SecureClickHouse
	// scramUser authenticates with SCRAM, plainUser with PLAIN.
	scramUser, scramPass string
	plainUser, plainPass string
	// files holds the password files.
	files string
}

func startSecureEnv(t *testing.T) *secureEnv {
	t.Helper()
	e := &secureEnv{
		scramUser: "textpulse", scramPass: "scram-" + testenv.Name("pw"),
		plainUser: "ingest", plainPass: "plain-" + testenv.Name("pw"),
		files: t.TempDir(),
	}
	start := time.Now()
	e.kafka = itest.StartSecureKafka(t, itest.SecureKafkaOptions{
		SCRAMUsers: map[string]string{e.scramUser: e.scramPass},
		PlainUsers: map[string]string{e.plainUser: e.plainPass},
	})
	e.ch = itest.StartSecureClickHouse(t, "tp_writer", "ch-"+testenv.Name("pw"))
	t.Logf("secure broker %s and clickhouse %s up in %s", e.kafka.Addr, e.ch.Addr, time.Since(start).Round(time.Millisecond))
	return e
}

// file writes content to a new file under e.files and returns its path.
func (e *secureEnv) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.files, name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseArgs are the connection flags for the secure services, without any
// credential.
func (e *secureEnv) baseArgs(cmd string, topic, group, db string) []string {
	return []string{
		cmd,
		"--kafka.brokers", e.kafka.Addr,
		"--kafka.topics", topic,
		"--kafka.group", group,
		"--kafka.dead_letter_topic", topic + ".dlq",
		"--kafka.session_timeout", "10s",
		"--kafka.lag_interval", "1s",
		"--kafka.tls.enabled",
		"--kafka.tls.ca_file", e.kafka.Certs.CAFile,
		"--clickhouse.addr", e.ch.Addr,
		"--clickhouse.database", db,
		"--clickhouse.tls.enabled",
		"--clickhouse.tls.ca_file", e.ch.Certs.CAFile,
		"--clickhouse.username", e.ch.User,
		"--clickhouse.retry_max", "1s",
		"--batch.max_wait", "100ms",
		"--http.listen", "127.0.0.1:0",
		"--log.format", "text",
	}
}

// runInProcess runs the consumer command in this process with env as its
// environment and returns its error and output. It fails t if the command
// does not return within limit.
func runInProcess(t *testing.T, args []string, env map[string]string, limit time.Duration) (string, error) {
	t.Helper()
	out := &harness.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(t.Context(), args, func(k string) string { return env[k] }, out, out) }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(limit):
		t.Fatalf("%s did not return within %s; output:\n%s", args[0], limit, out.String())
		return "", nil
	}
}

// TestSecureKafkaAndClickHouse consumes from a broker that accepts only
// SASL_SSL, with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, and writes to a
// ClickHouse server that accepts only TLS and a password. Every event must be
// stored and every offset committed. Wrong credentials and an untrusted
// certificate must end `check` and `run` with a clear error, quickly.
func TestSecureKafkaAndClickHouse(t *testing.T) {
	e := startSecureEnv(t)
	chPassFile := e.file(t, "ch-password", e.ch.Password)
	admin := e.kafka.Connect(t, "scram-sha-512", e.scramUser, e.scramPass)
	chh := e.ch.Handle()

	for _, tc := range []struct {
		mechanism, user, pass string
		// byEnv passes the Kafka password in the environment instead of
		// a file.
		byEnv bool
	}{
		{"scram-sha-512", e.scramUser, e.scramPass, false},
		{"scram-sha-256", e.scramUser, e.scramPass, true},
		{"plain", e.plainUser, e.plainPass, false},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			const partitions = 3
			topic, group, db := testenv.Name("secure"), testenv.Name("group"), testenv.Name("secure")
			admin.CreateTopic(t, topic, partitions)
			chh.DropDatabaseAtEnd(t, db)
			values, valid := makeEvents(900, 0)
			admin.Produce(t, topic, partitions, values)

			args := e.baseArgs("run", topic, group, db)
			args = append(args, "--kafka.sasl.mechanism", tc.mechanism, "--kafka.sasl.username", tc.user,
				"--clickhouse.password_file", chPassFile)
			env := map[string]string{}
			if tc.byEnv {
				env["TEXTPULSE_KAFKA_SASL_PASSWORD"] = tc.pass
			} else {
				args = append(args, "--kafka.sasl.password_file", e.file(t, tc.mechanism+"-password", tc.pass))
			}

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			out := &harness.Buffer{}
			done := make(chan error, 1)
			go func() { done <- run(ctx, args, func(k string) string { return env[k] }, out, out) }()
			itest.Eventually(t, 90*time.Second, func() (bool, string) {
				select {
				case err := <-done:
					t.Fatalf("consumer stopped: %v\n%s", err, out.String())
				default:
				}
				_, distinct, _, err := chh.Counts(context.Background(), db, "events")
				if err != nil {
					return false, err.Error()
				}
				committed, err := admin.Committed(context.Background(), group, topic)
				if err != nil {
					return false, err.Error()
				}
				total := int64(0)
				for _, o := range committed {
					total += o
				}
				return distinct == uint64(countValid(valid)) && total == int64(len(values)),
					fmt.Sprintf("%d of %d rows, %d of %d offsets committed", distinct, countValid(valid), total, len(values))
			})
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("consumer: %v\n%s", err, out.String())
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("consumer did not stop\n%s", out.String())
			}
			var version string
			if err := chh.Conn.QueryRow(context.Background(), "SELECT version()").Scan(&version); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d events through %s over TLS into ClickHouse %s over TLS", len(values), tc.mechanism, version)
		})
	}

	t.Run("check passes", func(t *testing.T) {
		topic, db := testenv.Name("secure"), testenv.Name("secure")
		admin.CreateTopic(t, topic, 1)
		admin.CreateTopic(t, topic+".dlq", 1)
		chh.DropDatabaseAtEnd(t, db)
		base := e.baseArgs("migrate", topic, "g", db)
		auth := []string{"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
			"--kafka.sasl.password_file", e.file(t, "scram", e.scramPass), "--clickhouse.password_file", chPassFile}
		if out, err := runInProcess(t, append(base, auth...), nil, time.Minute); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		base[0] = "check"
		out, err := runInProcess(t, append(base, auth...), nil, time.Minute)
		if err != nil {
			t.Fatalf("check: %v\n%s", err, out)
		}
		for _, want := range []string{"ok   kafka cluster", "ok   topic " + topic + ": 1 partition", "ok   clickhouse " + e.ch.Addr, "ok   schema version"} {
			if !strings.Contains(out, want) {
				t.Errorf("check output lacks %q:\n%s", want, out)
			}
		}
	})

	// Each failure must come back within the limit (no retrying forever)
	// and name its cause.
	for _, tc := range []struct {
		name  string
		cmd   string
		extra []string
		// want are substrings of the error or output, any one suffices.
		want []string
		// wantIs, when set, must be in the error's chain.
		wantIs error
	}{
		{name: "wrong kafka password at check", cmd: "check",
			extra: []string{"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
				"--kafka.sasl.password", "not-the-password", "--clickhouse.password_file", chPassFile},
			want: []string{"SASL_AUTHENTICATION_FAILED"}},
		{name: "wrong kafka password at run", cmd: "run",
			extra: []string{"--kafka.sasl.mechanism", "plain", "--kafka.sasl.username", e.plainUser,
				"--kafka.sasl.password", "not-the-password", "--clickhouse.password_file", chPassFile},
			want: []string{"SASL_AUTHENTICATION_FAILED"}},
		{name: "wrong kafka password at run without dead-letter topic", cmd: "run",
			extra: []string{"--kafka.dead_letter_topic", "", "--kafka.sasl.mechanism", "scram-sha-256",
				"--kafka.sasl.username", e.scramUser, "--kafka.sasl.password", "not-the-password",
				"--clickhouse.password_file", chPassFile},
			want: []string{"SASL_AUTHENTICATION_FAILED"}, wantIs: errKafkaAuth},
		{name: "untrusted kafka certificate at run without dead-letter topic", cmd: "run",
			extra: []string{"--kafka.dead_letter_topic", "", "--kafka.sasl.mechanism", "scram-sha-512",
				"--kafka.sasl.username", e.scramUser, "--kafka.sasl.password", e.scramPass,
				"--clickhouse.password_file", chPassFile, "--kafka.tls.ca_file", e.kafka.Certs.OtherCAFile},
			want: []string{"certificate signed by unknown authority"}, wantIs: errKafkaAuth},
		{name: "wrong clickhouse password at check", cmd: "check",
			extra: []string{"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
				"--kafka.sasl.password", e.scramPass, "--clickhouse.password", "not-the-password"},
			want: []string{"clickhouse authentication failed"}},
		{name: "wrong clickhouse password at run", cmd: "run",
			extra: []string{"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
				"--kafka.sasl.password", e.scramPass, "--clickhouse.password", "not-the-password"},
			want: []string{"clickhouse authentication failed"}, wantIs: clickhouse.ErrAuthentication},
		{name: "unknown clickhouse user at run", cmd: "run",
			extra: []string{"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
				"--kafka.sasl.password", e.scramPass, "--clickhouse.username", "default"},
			want: []string{"clickhouse authentication failed"}, wantIs: clickhouse.ErrAuthentication},
		{name: "untrusted kafka certificate at check", cmd: "check",
			extra: []string{"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
				"--kafka.sasl.password", e.scramPass, "--clickhouse.password_file", chPassFile,
				"--kafka.tls.ca_file", e.kafka.Certs.OtherCAFile},
			want: []string{"certificate signed by unknown authority"}},
		{name: "untrusted clickhouse certificate at check", cmd: "check",
			extra: []string{"--kafka.sasl.mechanism", "scram-sha-512", "--kafka.sasl.username", e.scramUser,
				"--kafka.sasl.password", e.scramPass, "--clickhouse.password_file", chPassFile,
				"--clickhouse.tls.ca_file", e.ch.Certs.OtherCAFile},
			want: []string{"certificate signed by unknown authority"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, db := testenv.Name("secure"), testenv.Name("secure")
			admin.CreateTopic(t, topic, 1)
			chh.DropDatabaseAtEnd(t, db)
			args := append(e.baseArgs(tc.cmd, topic, testenv.Name("group"), db), tc.extra...)
			start := time.Now()
			out, err := runInProcess(t, args, nil, 90*time.Second)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("%s succeeded; output:\n%s", tc.cmd, out)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tc.wantIs)
			}
			found := false
			for _, w := range tc.want {
				found = found || strings.Contains(err.Error()+"\n"+out, w)
			}
			if !found {
				t.Errorf("neither the error nor the output names the cause %q:\nerror: %v\noutput:\n%s", tc.want, err, out)
			}
			t.Logf("%s failed after %s: %v", tc.cmd, took.Round(time.Millisecond), firstLine(err.Error()))
		})
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
