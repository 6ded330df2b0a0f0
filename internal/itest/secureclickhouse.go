package itest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/testenv"
)

// EnvClickHouseServer names the clickhouse-server binary; when unset,
// clickhouse-server is looked up in PATH and /usr/sbin.
const EnvClickHouseServer = "TEXTPULSE_TEST_CLICKHOUSE_SERVER"

// SecureClickHouse is a clickhouse-server started by a test that accepts
// only TLS connections on its native port, and only from one user with a
// password: there is no passwordless default user.
type SecureClickHouse struct {
	// Addr is the secure native-protocol endpoint, host:port.
	Addr string
	// User and Password are the only credentials the server accepts.
	User     string
	Password string
	// Certs are the CA and the server's certificate.
	Certs *Certs
	// Conn is an authenticated TLS connection for the test's own queries.
	Conn clickhouse.Conn
}

// StartSecureClickHouse starts the installed clickhouse-server on a free
// port with <tcp_port_secure> only, an <openSSL><server> section with a
// generated certificate and a users.xml whose only user is user, with the
// SHA-256 of password. It waits up to a minute until the user can query
// through TLS. The server is killed when t ends; its logs are printed if t
// failed. It skips or fails t like testenv.Lookup when no clickhouse-server
// is installed.
func StartSecureClickHouse(t testing.TB, user, password string) *SecureClickHouse {
	t.Helper()
	bin := clickHouseServerBinary(t)
	certs := NewCerts(t)
	dir := t.TempDir()
	port := FreePort(t)
	s := &SecureClickHouse{Addr: "127.0.0.1:" + strconv.Itoa(port), User: user, Password: password, Certs: certs}
	sum := sha256.Sum256([]byte(password))
	writeClickHouseConfig(t, dir, `
    <tcp_port_secure>`+strconv.Itoa(port)+`</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>`+certs.CertFile+`</certificateFile>
            <privateKeyFile>`+certs.KeyFile+`</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>`)
	writeFile(t, filepath.Join(dir, "users.xml"), `<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <`+user+`>
            <password_sha256_hex>`+hex.EncodeToString(sum[:])+`</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </`+user+`>
    </users>
    `+unlimitedQuota+`
</yandex>
`)
	srv := startClickHouseProcess(t, bin, dir)
	tc, err := s.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{s.Addr}, TLS: tc, DialTimeout: 5 * time.Second,
		Auth: clickhouse.Auth{Database: "default", Username: user, Password: password},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s.Conn = conn
	srv.waitReady(t, time.Minute, func() error {
		if err := portOpen(s.Addr); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return conn.Ping(ctx)
	})
	return s
}

// TLSConfig returns a client TLS configuration that trusts only the test CA.
func (s *SecureClickHouse) TLSConfig() (*tls.Config, error) {
	b, err := os.ReadFile(s.Certs.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Handle returns a ClickHouse test handle on the server's connection.
func (s *SecureClickHouse) Handle() *ClickHouse { return &ClickHouse{Conn: s.Conn} }

func clickHouseServerBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvClickHouseServer); p != "" {
		return p
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p
	}
	if fileExists("/usr/sbin/clickhouse-server") {
		return "/usr/sbin/clickhouse-server"
	}
	if os.Getenv(testenv.EnvRequire) == "1" {
		t.Fatalf("clickhouse-server not found and %s=1: run scripts/services.sh install clickhouse", testenv.EnvRequire)
	}
	t.Skip("clickhouse-server not found; skipping a test that starts its own server")
	return ""
}

// unlimitedQuota is the quotas section of a test server's users.xml.
const unlimitedQuota = `<quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>`

// writeClickHouseConfig writes dir/config.xml for a server whose data and
// logs live under dir, listening on 127.0.0.1 with the ports and other
// sections in extra, and creates the directories it needs.
func writeClickHouseConfig(t testing.TB, dir, extra string) {
	t.Helper()
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "config.xml"), `<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>`+dir+`/log/clickhouse-server.log</log>
        <errorlog>`+dir+`/log/clickhouse-server.err.log</errorlog>
    </logger>
    <listen_host>127.0.0.1</listen_host>`+extra+`
    <max_connections>256</max_connections>
    <mark_cache_size>268435456</mark_cache_size>
    <path>`+dir+`/data/</path>
    <tmp_path>`+dir+`/tmp/</tmp_path>
    <user_files_path>`+dir+`/user_files/</user_files_path>
    <format_schema_path>`+dir+`/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
`)
}

// startClickHouseProcess starts bin with dir/config.xml; see startServer.
func startClickHouseProcess(t testing.TB, bin, dir string) *server {
	t.Helper()
	outLog := filepath.Join(dir, "log", "stdout.log")
	cfg := harness.Config{Path: bin, Args: []string{"--config-file=" + filepath.Join(dir, "config.xml")}, Dir: dir, LogFile: outLog}
	return startServer(t, "clickhouse-server", cfg, outLog, filepath.Join(dir, "log", "clickhouse-server.err.log"))
}
