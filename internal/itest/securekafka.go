package itest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/textpulse/textpulse/internal/harness"
	"github.com/textpulse/textpulse/internal/testenv"
)

// EnvKafkaLibs names the directory of the Kafka jars (scripts/env.sh sets it
// to .local/kafka/libs, filled by scripts/services.sh install kafka).
const EnvKafkaLibs = "TEXTPULSE_TEST_KAFKA_LIBS"

// SecureKafkaOptions configures StartSecureKafka.
type SecureKafkaOptions struct {
	// SCRAMUsers are created at storage format for SCRAM-SHA-256 and
	// SCRAM-SHA-512, user name to password. Names and passwords must not
	// contain '"', ',' or ']'.
	SCRAMUsers map[string]string
	// PlainUsers are accepted by SASL/PLAIN, user name to password.
	// Names and passwords must not contain '"' or ';'.
	PlainUsers map[string]string
}

// SecureKafka is a single-node KRaft broker started by a test, whose only
// client listener is SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.
type SecureKafka struct {
	// Addr is the SASL_SSL listener, host:port.
	Addr string
	// Certs are the CA and the broker's certificate.
	Certs *Certs
	// Dir holds the configuration, data and logs.
	Dir string
}

// StartSecureKafka formats a temporary log directory (with the SCRAM
// credentials), starts the broker from the jars in TEXTPULSE_TEST_KAFKA_LIBS
// on free ports and waits up to three minutes until a SCRAM client can read
// metadata through TLS. The broker is killed when t ends; its log is
// printed if t failed. It skips or fails t like testenv.Lookup when the jars
// are not configured.
func StartSecureKafka(t testing.TB, opts SecureKafkaOptions) *SecureKafka {
	t.Helper()
	libs := testenv.Lookup(t, EnvKafkaLibs)
	java := javaBinary(t)
	certs := NewCerts(t)
	dir := t.TempDir()
	k := &SecureKafka{Certs: certs, Dir: dir}
	port, controller, internal := FreePort(t), FreePort(t), FreePort(t)
	k.Addr = "127.0.0.1:" + strconv.Itoa(port)

	config := filepath.Join(dir, "server.properties")
	writeFile(t, config, strings.Join(secureKafkaProps(opts, certs, dir, port, controller, internal), "\n")+"\n")
	log4j := filepath.Join(dir, "log4j2.xml")
	writeFile(t, log4j, `<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="F" fileName="`+filepath.Join(dir, "server.log")+`"><PatternLayout pattern="[%d] %p %m (%c)%n"/></File>
  </Appenders>
  <Loggers><Root level="INFO"><AppenderRef ref="F"/></Root></Loggers>
</Configuration>
`)
	jvm := func(heap string, main string, args ...string) []string {
		return append([]string{heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
			"-Dlog4j2.configurationFile=file:" + log4j, "-cp", filepath.Join(libs, "*"), main}, args...)
	}
	formatKafkaStorage(t, java, jvm("-Xmx256m", "kafka.tools.StorageTool", formatArgs(t, opts, config)...))

	outLog := filepath.Join(dir, "kafka.out")
	srv := startServer(t, "kafka broker", harness.Config{Path: java, Args: jvm("-Xmx512m", "kafka.Kafka", config), LogFile: outLog},
		outLog, filepath.Join(dir, "server.log"))
	var user, pass string
	for u, p := range opts.SCRAMUsers {
		user, pass = u, p
		break
	}
	srv.waitReady(t, 3*time.Minute, func() error { return k.probe(user, pass) })
	return k
}

// secureKafkaProps is the server.properties of a single-node KRaft broker
// with a SASL_SSL client listener on port.
func secureKafkaProps(opts SecureKafkaOptions, certs *Certs, dir string, port, controller, internal int) []string {
	var jaas strings.Builder
	jaas.WriteString("org.apache.kafka.common.security.plain.PlainLoginModule required")
	for u, p := range opts.PlainUsers {
		fmt.Fprintf(&jaas, " user_%s=\"%s\"", u, p)
	}
	jaas.WriteString(";")
	scramJAAS := "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	return []string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("listeners=SASL_SSL://127.0.0.1:%d,INTERNAL://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, internal, controller),
		fmt.Sprintf("advertised.listeners=SASL_SSL://127.0.0.1:%d,INTERNAL://127.0.0.1:%d", port, internal),
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
		"inter.broker.listener.name=INTERNAL",
		"controller.listener.names=CONTROLLER",
		fmt.Sprintf("controller.quorum.bootstrap.servers=127.0.0.1:%d", controller),
		"log.dirs=" + filepath.Join(dir, "data"),
		"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"listener.name.sasl_ssl.plain.sasl.jaas.config=" + jaas.String(),
		"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=" + scramJAAS,
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + scramJAAS,
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + certs.KeyStoreFile,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + certs.CAFile,
		"num.partitions=1",
		"default.replication.factor=1",
		"min.insync.replicas=1",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=3",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"num.network.threads=1",
		"num.io.threads=2",
	}
}

// formatArgs are the StorageTool arguments that format the log directory
// of config with a fresh cluster id and the SCRAM users.
func formatArgs(t testing.TB, opts SecureKafkaOptions, config string) []string {
	t.Helper()
	format := []string{"format", "--standalone", "--ignore-formatted", "-t", clusterID(t), "-c", config}
	for u, p := range opts.SCRAMUsers {
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
			format = append(format, "--add-scram", fmt.Sprintf(`%s=[name=%s,password=%s]`, mech, u, p))
		}
	}
	return format
}

// formatKafkaStorage runs java with args (the StorageTool) for at most two
// minutes and fails t with its output if it fails.
func formatKafkaStorage(t testing.TB, java string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fc := exec.CommandContext(ctx, java, args...) //nolint:gosec // Java and the arguments come from the test setup.
	var out bytes.Buffer
	fc.Stdout, fc.Stderr = &out, &out
	if err := fc.Run(); err != nil {
		t.Fatalf("format kafka storage: %v\n%s", err, out.String())
	}
}

// probe checks that the broker accepts connections and, with a SCRAM user,
// that the user can read metadata through TLS.
func (k *SecureKafka) probe(user, pass string) error {
	if err := portOpen(k.Addr); err != nil {
		return err
	}
	if user == "" {
		return nil
	}
	cl, err := kgo.NewClient(k.ClientOpts("scram-sha-512", user, pass)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kadm.NewClient(cl).BrokerMetadata(ctx)
	return err
}

// ClientOpts returns franz-go options that reach the broker through TLS,
// trusting only the test CA, and authenticate with mechanism ("plain",
// "scram-sha-256" or "scram-sha-512").
func (k *SecureKafka) ClientOpts(mechanism, user, pass string) []kgo.Opt {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(k.Certs.CAFile); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Addr),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(2 * time.Millisecond),
	}
	switch mechanism {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	default:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	}
	return opts
}

// Connect returns a test handle on the broker, authenticated with
// mechanism, as NewKafka does for the shared broker.
func (k *SecureKafka) Connect(t testing.TB, mechanism, user, pass string) *Kafka {
	t.Helper()
	opts := append(k.ClientOpts(mechanism, user, pass), kgo.MaxBufferedRecords(1<<20))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &Kafka{Brokers: []string{k.Addr}, Client: cl, Admin: kadm.NewClient(cl)}
}

// javaBinary returns $JAVA_HOME/bin/java or java from PATH.
func javaBinary(t testing.TB) string {
	t.Helper()
	if h := os.Getenv("JAVA_HOME"); h != "" {
		if p := filepath.Join(h, "bin", "java"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatalf("java not found and %s=1: run scripts/services.sh install kafka", testenv.EnvRequire)
		}
		t.Skip("java not found; skipping a test that starts its own Kafka broker")
	}
	return p
}

// clusterID returns a random KRaft cluster id: 16 bytes, URL-safe base64.
func clusterID(t testing.TB) string {
	t.Helper()
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path) //nolint:gosec // Paths from the environment of the test.
	return err == nil
}
