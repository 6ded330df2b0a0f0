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

// Environment variables naming the modern ClickHouse server (26.9 over TCP,
// scripts/services.sh clickhouse-modern) and the HTTP endpoints of both.
const (
	EnvClickHouseHTTP       = "TEXTPULSE_TEST_CLICKHOUSE_HTTP"
	EnvClickHouseModern     = "TEXTPULSE_TEST_CLICKHOUSE_MODERN"
	EnvClickHouseModernHTTP = "TEXTPULSE_TEST_CLICKHOUSE_MODERN_HTTP"
)

// ClickHouseServer is one of the shared ClickHouse servers the suite runs
// against.
type ClickHouseServer struct {
	// Name names the subtests that run on it: "legacy" (Debian's 18.16) or
	// "modern" (26.9).
	Name string
	// Addr is the native-protocol address, HTTP the HTTP endpoint.
	Addr, HTTP string
	// Service is the scripts/services.sh service that runs it.
	Service string
	// Modern reports a server of the modern dialect (22.3 and later):
	// insert deduplication tokens, hence rows stored exactly once.
	Modern bool
}

// ClickHouseServers returns the legacy and the modern server, skipping or
// failing t (see Lookup) when either is not configured.
func ClickHouseServers(t testing.TB) []ClickHouseServer {
	t.Helper()
	return []ClickHouseServer{
		{Name: "legacy", Addr: Lookup(t, EnvClickHouse), HTTP: os.Getenv(EnvClickHouseHTTP), Service: "clickhouse"},
		{Name: "modern", Addr: Lookup(t, EnvClickHouseModern), HTTP: os.Getenv(EnvClickHouseModernHTTP), Service: "clickhouse-modern", Modern: true},
	}
}

// EachClickHouse runs fn as a subtest named by the server, once on each
// shared ClickHouse server, one after the other.
func EachClickHouse(t *testing.T, fn func(t *testing.T, srv ClickHouseServer)) {
	t.Helper()
	for _, srv := range ClickHouseServers(t) {
		t.Run(srv.Name, func(t *testing.T) { fn(t, srv) })
	}
}

// HTTPEndpoint returns the server's HTTP endpoint, skipping or failing t
// (see Lookup) when it is not configured.
func (s ClickHouseServer) HTTPEndpoint(t testing.TB) string {
	t.Helper()
	if s.HTTP != "" {
		return s.HTTP
	}
	if s.Modern {
		return Lookup(t, EnvClickHouseModernHTTP)
	}
	return Lookup(t, EnvClickHouseHTTP)
}
