package itest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/testenv"
)

// EnvChdbPython names a Python interpreter that can import chdb (the
// project venv's, exported by scripts/env.sh).
const EnvChdbPython = "TEXTPULSE_TEST_CHDB_PYTHON"

// PasswordClickHouse is a modern ClickHouse (26.9, chdb-core served over
// TCP) started by a test, with a user that logs in with a password.
type PasswordClickHouse struct {
	// Addr is the native-protocol endpoint, host:port.
	Addr string
	// User and Password are the credentials of the password user.
	User     string
	Password string
	// Conn is a connection as that user, for the test's own queries.
	Conn clickhouse.Conn
}

// StartPasswordClickHouse starts scripts/lib/chmodern_server.py on a free
// port with a users.xml holding user with the SHA-256 of password. The
// server is killed when t ends. The embedded session that serves the
// listeners logs in as default, so default stays passwordless there; and
// the server has no TLS listener (clickhouse-local starts only plain TCP
// and HTTP ones), so TLS is tested on 18.16 only.
func StartPasswordClickHouse(t testing.TB, user, password string) *PasswordClickHouse {
	t.Helper()
	python := testenv.Lookup(t, EnvChdbPython)
	script := filepath.Join(filepath.Dir(testenv.Lookup(t, testenv.EnvCHScript)), "lib", "chmodern_server.py")
	dir := t.TempDir()
	port := FreePort(t)
	sum := sha256.Sum256([]byte(password))
	writeFile(t, filepath.Join(dir, "config.xml"), `<clickhouse>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>`+strconv.Itoa(port)+`</tcp_port>
    <http_port>`+strconv.Itoa(FreePort(t))+`</http_port>
    <users_config>`+filepath.Join(dir, "users.xml")+`</users_config>
    <max_server_memory_usage_to_ram_ratio>0.1</max_server_memory_usage_to_ram_ratio>
    <timezone>UTC</timezone>
</clickhouse>
`)
	writeFile(t, filepath.Join(dir, "users.xml"), `<clickhouse>
    <profiles><default></default></profiles>
    <users>
        <default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></default>
        <`+user+`>
            <password_sha256_hex>`+hex.EncodeToString(sum[:])+`</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </`+user+`>
    </users>
    <quotas><default></default></quotas>
</clickhouse>
`)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "server.log")
	srv := startServer(t, "clickhouse-modern (password)",
		harness.Config{Path: python, Args: []string{script, dir, filepath.Join(dir, "data")}, LogFile: logFile}, logFile)
	s := &PasswordClickHouse{Addr: "127.0.0.1:" + strconv.Itoa(port), User: user, Password: password}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{s.Addr}, DialTimeout: 5 * time.Second,
		Auth: clickhouse.Auth{Database: "default", Username: user, Password: password},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.Conn = conn
	srv.waitReady(t, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return conn.Ping(ctx)
	})
	return s
}

// Handle returns a ClickHouse test handle on the server's connection.
func (s *PasswordClickHouse) Handle() *ClickHouse { return &ClickHouse{Conn: s.Conn} }
