package itest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/testenv"
)

// EnvZooKeeperLibs names the directory of the ZooKeeper jars (scripts/env.sh
// sets it to .local/zookeeper/libs, filled by scripts/services.sh install).
const EnvZooKeeperLibs = "TEXTPULSE_TEST_ZOOKEEPER_LIBS"

// StartZooKeeper starts a standalone ZooKeeper server from the jars in
// TEXTPULSE_TEST_ZOOKEEPER_LIBS on a free port and returns its host:port
// once it serves requests. It is killed when t ends.
func StartZooKeeper(t testing.TB) string {
	t.Helper()
	libs := testenv.Lookup(t, EnvZooKeeperLibs)
	java := javaBinary(t)
	dir := t.TempDir()
	port := FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	writeFile(t, filepath.Join(dir, "zoo.cfg"), fmt.Sprintf(
		"tickTime=500\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\nmaxClientCnxns=0\n",
		filepath.Join(dir, "data"), port))
	writeFile(t, filepath.Join(dir, "logback.xml"), `<configuration>
  <appender name="F" class="ch.qos.logback.core.FileAppender">
    <file>`+filepath.Join(dir, "zookeeper.log")+`</file>
    <encoder><pattern>%d %-5level [%thread] %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="F"/></root>
</configuration>
`)
	outLog := filepath.Join(dir, "zookeeper.out")
	srv := startServer(t, "zookeeper", harness.Config{Path: java, LogFile: outLog, Args: []string{
		"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dlogback.configurationFile=" + filepath.Join(dir, "logback.xml"), "-cp", filepath.Join(libs, "*"),
		"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg"),
	}}, outLog, filepath.Join(dir, "zookeeper.log"))
	srv.waitReady(t, time.Minute, func() error { return serving(addr) })
	return addr
}

// serving sends ZooKeeper's "srvr" command and expects a server in
// standalone mode ("ruok" answers before the server serves requests).
func serving(addr string) error {
	if err := portOpen(addr); err != nil {
		return err
	}
	d := &net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return err
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(conn)
	if !strings.Contains(buf.String(), "Mode: standalone") {
		return fmt.Errorf("zookeeper answered %q to srvr", buf.String())
	}
	return nil
}

// ClusterNode is one server of a test ClickHouse cluster.
type ClusterNode struct {
	// Addr is the native-protocol endpoint, host:port; user default,
	// no password.
	Addr string
	// Shard is the node's shard number, from 1; its {shard} macro is
	// Shard with two digits and its {replica} macro is "node" + Shard.
	Shard int
	// Conn is a connection for the test's own queries.
	Conn clickhouse.Conn
}

// StartClickHouseCluster starts ZooKeeper and one clickhouse-server per
// shard, all in a cluster named name (one replica per shard) with
// distributed DDL, {shard} and {replica} macros, on free ports. It waits
// until every node answers and sees the cluster in system.clusters. The
// servers are killed when t ends.
func StartClickHouseCluster(t testing.TB, name string, shards int) []*ClusterNode {
	t.Helper()
	bin := clickHouseServerBinary(t)
	zk := StartZooKeeper(t)
	zkHost, zkPort := splitHostPort(t, zk)
	nodes := make([]*ClusterNode, shards)
	ports := make([]int, shards)
	var remote bytes.Buffer
	for i := range shards {
		ports[i] = FreePort(t)
		fmt.Fprintf(&remote, "<shard><internal_replication>true</internal_replication><replica><host>127.0.0.1</host><port>%d</port></replica></shard>", ports[i])
	}
	for i := range shards {
		dir := t.TempDir()
		writeClickHouseConfig(t, dir, fmt.Sprintf(`
    <tcp_port>%d</tcp_port>
    <interserver_http_port>%d</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <zookeeper><node><host>%s</host><port>%s</port></node><session_timeout_ms>10000</session_timeout_ms></zookeeper>
    <remote_servers><%s>%s</%s></remote_servers>
    <macros><shard>%02d</shard><replica>node%d</replica></macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>`,
			ports[i], FreePort(t), zkHost, zkPort, name, remote.String(), name, i+1, i+1))
		writeFile(t, filepath.Join(dir, "users.xml"), `<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    `+unlimitedQuota+`
</yandex>
`)
		srv := startClickHouseProcess(t, bin, dir)
		n := &ClusterNode{Addr: "127.0.0.1:" + strconv.Itoa(ports[i]), Shard: i + 1}
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{n.Addr}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		n.Conn = conn
		srv.waitReady(t, time.Minute, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var got uint64
			if err := conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = ?", name).Scan(&got); err != nil {
				return err
			}
			if got != uint64(shards) { //nolint:gosec // Small test counts.
				return fmt.Errorf("cluster %s has %d nodes, want %d", name, got, shards)
			}
			return nil
		})
		nodes[i] = n
	}
	return nodes
}

func splitHostPort(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}
