package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/textpulse/textpulse/internal/itest"
	"github.com/textpulse/textpulse/internal/testenv"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

// TestClickHousePasswordOnModernServer writes through a user with a
// password on ClickHouse 26.9 (a server of the test's own, from chdb-core)
// and checks that a wrong password ends run and check with a clear error.
// TLS with a password is TestSecureKafkaAndClickHouse, on 18.16: the
// modern server offers no TLS listener.
func TestClickHousePasswordOnModernServer(t *testing.T) {
	password := "ch-" + testenv.Name("pw")
	pw := itest.StartPasswordClickHouse(t, "tp_writer", password)
	// The scenario's own handle logs in as default, which the embedded
	// server keeps passwordless; the consumer uses the password user.
	s := newScenario(t, testenv.ClickHouseServer{Name: "modern-password", Addr: pw.Addr, Modern: true}, 2)
	passFile := filepath.Join(t.TempDir(), "ch-password")
	if err := os.WriteFile(passFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	values, valid := makeEvents(400, 20)
	s.kafka.Produce(t, s.topic, s.partitions, values)
	c := startInProcess(t, s.args("--clickhouse.username", pw.User, "--clickhouse.password_file", passFile))
	s.waitRows(countValid(valid), 90*time.Second)
	if err := c.stop(t); err != nil {
		t.Fatalf("consumer: %v\n%s", err, c.log.String())
	}
	s.checkExact(valid)

	for _, cmd := range []string{"check", "run"} {
		t.Run("wrong password at "+cmd, func(t *testing.T) {
			args := s.args("--clickhouse.username", pw.User, "--clickhouse.password", "not-the-password")
			args[0] = cmd
			out, err := runInProcess(t, args, nil, time.Minute)
			if err == nil {
				t.Fatalf("%s passed with a wrong password:\n%s", cmd, out)
			}
			if cmd == "run" && !errors.Is(err, clickhouse.ErrAuthentication) {
				t.Errorf("run: %v, want clickhouse.ErrAuthentication", err)
			}
			if !strings.Contains(out+err.Error(), "clickhouse authentication failed") {
				t.Errorf("%s output lacks the authentication error:\n%s\n%v", cmd, out, err)
			}
		})
	}
}
