// Package kafka builds franz-go clients from configuration and watches
// consumer lag.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/textpulse/textpulse/internal/secret"
	"github.com/textpulse/textpulse/internal/tlsconf"
)

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is "", "plain", "scram-sha-256" or "scram-sha-512".
	Mechanism    string        `koanf:"mechanism"`
	Username     string        `koanf:"username"`
	Password     secret.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
}

// Config configures the Kafka side of the consumer.
type Config struct {
	// Brokers are seed brokers (host:port).
	Brokers []string `koanf:"brokers"`
	// Topics are consumed by the group.
	Topics []string `koanf:"topics"`
	// Group is the consumer group.
	Group string `koanf:"group"`
	// ClientID names the client in broker logs and quotas.
	ClientID string `koanf:"client_id"`
	// InstanceID enables static membership when set.
	InstanceID string `koanf:"instance_id"`
	// StartOffset is where a group with no commit starts: earliest or latest.
	StartOffset string `koanf:"start_offset"`
	// DeadLetterTopic receives inputs that are not written as rows; empty
	// disables dead-lettering (such inputs are then counted and dropped).
	DeadLetterTopic string `koanf:"dead_letter_topic"`
	// CreateDeadLetterTopic creates the dead-letter topic at start when it
	// does not exist.
	CreateDeadLetterTopic bool `koanf:"create_dead_letter_topic"`
	// SessionTimeout and RebalanceTimeout are the group timeouts.
	SessionTimeout   time.Duration `koanf:"session_timeout"`
	RebalanceTimeout time.Duration `koanf:"rebalance_timeout"`
	// FetchMaxBytes bounds one fetch response.
	FetchMaxBytes int `koanf:"fetch_max_bytes"`
	// FetchMaxPartitionBytes bounds the bytes of one partition in a fetch
	// response; larger values drain a backlog in fewer round trips.
	FetchMaxPartitionBytes int `koanf:"fetch_max_partition_bytes"`
	// LagInterval is how often consumer lag is computed; 0 disables it.
	LagInterval time.Duration  `koanf:"lag_interval"`
	TLS         tlsconf.Config `koanf:"tls"`
	SASL        SASLConfig     `koanf:"sasl"`
}

// DefaultConfig returns defaults for a local broker.
func DefaultConfig() Config {
	return Config{
		Brokers:                []string{"127.0.0.1:9092"},
		Topics:                 []string{"textpulse.events"},
		Group:                  "textpulse",
		ClientID:               "textpulse",
		StartOffset:            "earliest",
		DeadLetterTopic:        "textpulse.events.dlq",
		CreateDeadLetterTopic:  true,
		SessionTimeout:         45 * time.Second,
		RebalanceTimeout:       60 * time.Second,
		FetchMaxBytes:          50 << 20,
		FetchMaxPartitionBytes: 10 << 20,
		LagInterval:            15 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers must list at least one host:port"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("kafka.topics must list at least one topic"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("kafka.group must be set"))
	}
	for _, t := range c.Topics {
		if t == c.DeadLetterTopic {
			errs = append(errs, fmt.Errorf("kafka.dead_letter_topic %q must not be a consumed topic", t))
		}
	}
	switch c.StartOffset {
	case "earliest", "latest":
	default:
		errs = append(errs, fmt.Errorf("kafka.start_offset %q: want earliest or latest", c.StartOffset))
	}
	if c.SessionTimeout <= 0 || c.RebalanceTimeout <= 0 {
		errs = append(errs, errors.New("kafka.session_timeout and kafka.rebalance_timeout must be positive"))
	}
	if c.FetchMaxBytes < 1 {
		errs = append(errs, errors.New("kafka.fetch_max_bytes must be positive"))
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.SASL.Mechanism))
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		errs = append(errs, errors.New("kafka.sasl.username must be set with a SASL mechanism"))
	}
	if c.SASL.Password != "" && c.SASL.PasswordFile != "" {
		errs = append(errs, errors.New("kafka.sasl.password and kafka.sasl.password_file are exclusive"))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("kafka.%w", err))
	}
	return errors.Join(errs...)
}

// ConnOpts returns the options that reach and authenticate with the
// brokers: seeds, client ID, TLS and SASL.
func (c Config) ConnOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	tc, err := c.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("kafka tls: %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	m, err := c.saslMechanism()
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (c Config) saslMechanism() (sasl.Mechanism, error) {
	if c.SASL.Mechanism == "" {
		return nil, nil
	}
	pw, err := secret.Resolve(c.SASL.Password, c.SASL.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("kafka sasl password: %w", err)
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "plain":
		return plain.Auth{User: c.SASL.Username, Pass: pw.Reveal()}.AsMechanism(), nil
	case "scram-sha-256":
		return scram.Auth{User: c.SASL.Username, Pass: pw.Reveal()}.AsSha256Mechanism(), nil
	case "scram-sha-512":
		return scram.Auth{User: c.SASL.Username, Pass: pw.Reveal()}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism %q: %w", c.SASL.Mechanism, errors.ErrUnsupported)
}

// ProducerOpts returns the options of a producer with full acknowledgements
// and idempotence, used for the dead-letter topic.
func (c Config) ProducerOpts() ([]kgo.Opt, error) {
	opts, err := c.ConnOpts()
	if err != nil {
		return nil, err
	}
	return append(opts,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
	), nil
}

// ConsumerOpts returns the options of a group consumer for the topics,
// including a kprom plugin registered on reg and a slog bridge.
func (c Config) ConsumerOpts(log *slog.Logger, reg prometheus.Registerer) ([]kgo.Opt, error) {
	opts, err := c.ConnOpts()
	if err != nil {
		return nil, err
	}
	start := kgo.NewOffset().AtStart()
	if c.StartOffset == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	opts = append(opts,
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topics...),
		kgo.ConsumeResetOffset(start),
		kgo.SessionTimeout(c.SessionTimeout),
		kgo.RebalanceTimeout(c.RebalanceTimeout),
		kgo.FetchMaxBytes(int32(min(c.FetchMaxBytes, 1<<30))), //nolint:gosec // Bounded above.
		kgo.WithLogger(newLogger(log)),
		kgo.WithHooks(newClientMetrics(reg)),
	)
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	return opts, nil
}

// newClientMetrics returns the franz-go client metrics (textpulse_kafka_*):
// connections, bytes read and written and request errors by broker, and
// records, batches and uncompressed bytes fetched by topic. Labels stay
// bounded by the brokers and topics.
func newClientMetrics(reg prometheus.Registerer) *kprom.Metrics {
	return kprom.NewMetrics("textpulse_kafka",
		kprom.Registerer(reg),
		kprom.WithClientLabel(),
		kprom.FetchAndProduceDetail(kprom.ByTopic, kprom.Records, kprom.Batches, kprom.UncompressedBytes, kprom.ConsistentNaming),
	)
}

// logger adapts slog to kgo.Logger, passing on warnings and errors only:
// kgo's info level is chatty at our batch rates.
type logger struct{ l *slog.Logger }

func newLogger(l *slog.Logger) kgo.Logger { return logger{l: l.With("component", "kgo")} }

func (l logger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		l.l.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		l.l.Warn(msg, keyvals...)
	default:
		l.l.Debug(msg, keyvals...)
	}
}

// WaitForBrokers pings the cluster until it answers or ctx is done.
func WaitForBrokers(ctx context.Context, cl *kgo.Client) error {
	for {
		err := cl.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reach kafka brokers: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// EnsureTopic creates topic with the broker's default replication factor
// when it does not exist. It returns whether it created it.
func EnsureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) (bool, error) {
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("list topic %s: %w", topic, err)
	}
	if d, ok := td[topic]; ok && d.Err == nil {
		return false, nil
	}
	resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create topic %s: %w", topic, err)
	}
	return true, nil
}
