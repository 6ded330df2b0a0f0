// Package testenv tells tests where the real services are. A test that
// needs a service skips when its variable is unset, unless
// TEXTPULSE_TEST_REQUIRE_SERVICES=1 (set by `make test`), in which case it
// fails: the suite run by CI never silently skips a real-service test.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// Environment variables naming the services.
const (
	EnvKafka      = "TEXTPULSE_TEST_KAFKA"
	EnvClickHouse = "TEXTPULSE_TEST_CLICKHOUSE"
	EnvCHScript   = "TEXTPULSE_CLICKHOUSE_SCRIPT"
	EnvRequire    = "TEXTPULSE_TEST_REQUIRE_SERVICES"
)

// Lookup returns the value of env, skipping or failing t when it is unset.
func Lookup(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s is not set and %s=1: start the services with `make services`", env, EnvRequire)
	}
	t.Skipf("%s is not set; skipping a test that needs a real service", env)
	return ""
}

// KafkaBrokers returns the seed brokers of the real Kafka.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	return strings.Split(Lookup(t, EnvKafka), ",")
}

// ClickHouseAddr returns the native-protocol address of the real ClickHouse.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	return Lookup(t, EnvClickHouse)
}

// Name returns a unique identifier-safe name with the prefix, for topics,
// groups and databases that must not collide between runs.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}
