// Package clickhouse is the ClickHouse sink: it writes enriched rows to ClickHouse over the native protocol:
// one columnar INSERT per batch, retried with backoff while the server is
// unavailable, and the schema migrations that create the tables.
package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/textpulse/textpulse/internal/secret"
	"github.com/textpulse/textpulse/internal/tlsconf"
	"github.com/textpulse/textpulse/processor"
	"github.com/textpulse/textpulse/schemas"
)

// Config configures the ClickHouse connection and tables.
type Config struct {
	// Addr lists native-protocol endpoints (host:port).
	Addr []string `koanf:"addr"`
	// Database and Table name the main table.
	Database string `koanf:"database"`
	Table    string `koanf:"table"`
	// Username and Password authenticate; PasswordFile reads the password
	// from a file instead.
	Username     string         `koanf:"username"`
	Password     secret.Secret  `koanf:"password"`
	PasswordFile string         `koanf:"password_file"`
	TLS          tlsconf.Config `koanf:"tls"`
	// Compression is "none", "lz4" or "zstd" for the native protocol.
	// Compression costs CPU on both ends; it pays on slow or metered links,
	// not on a local network.
	Compression string `koanf:"compression"`
	// DialTimeout bounds connecting; InsertTimeout bounds one INSERT attempt.
	DialTimeout   time.Duration `koanf:"dial_timeout"`
	InsertTimeout time.Duration `koanf:"insert_timeout"`
	// BlockBytes is about how large a block of an INSERT is: a batch is
	// sent as one INSERT in blocks of about this many bytes, so that the
	// column buffers of a batch never hold more than one block. The server
	// squashes the blocks of an INSERT into parts of up to its
	// min_insert_block_size_rows (about a million rows by default), so the
	// parts written do not change. 0 sends each batch as one block.
	BlockBytes int `koanf:"block_bytes"`
	// MaxOpenConns bounds the connection pool.
	MaxOpenConns int `koanf:"max_open_conns"`
	// RetryInitial and RetryMax bound the exponential backoff between
	// attempts of a failing INSERT; retries go on until shutdown.
	RetryInitial time.Duration `koanf:"retry_initial"`
	RetryMax     time.Duration `koanf:"retry_max"`
	// TTLDays drops rows older than this many days (modern servers only;
	// 0 keeps them forever).
	TTLDays int `koanf:"ttl_days"`
	// DedupWindow is how many recent insert tokens a modern server keeps
	// to drop a retried INSERT.
	DedupWindow int `koanf:"dedup_window"`
	// Cluster, when set, creates the tables ON CLUSTER as Replicated tables
	// with a Distributed table over them, which the sink inserts into; see
	// schemas.Options.Cluster.
	Cluster string `koanf:"cluster"`
	// ZooKeeperPath and MigrationsZooKeeperPath are the replication paths
	// of the data tables and the migrations table in cluster mode;
	// ReplicaName is the replica name. {shard} and {replica} are server
	// macros, {database} and {table} are filled in.
	ZooKeeperPath           string `koanf:"zookeeper_path"`
	MigrationsZooKeeperPath string `koanf:"migrations_zookeeper_path"`
	ReplicaName             string `koanf:"replica_name"`
	// MetadataType is the type of the metadata column: "string" or "json"
	// (the JSON type, ClickHouse 25.3 and later). It applies when the table
	// is created; Migrate refuses a table whose column has the other type.
	MetadataType string `koanf:"metadata_type"`
	// VectorIndex is "off" or "hnsw": a table of the embeddings with a
	// vector_similarity index (ClickHouse 25.8 and later, not in cluster
	// mode), see schemas.Options.VectorIndex. VectorDistance is
	// cosineDistance or L2Distance; EmbeddingDims, the number of elements
	// of the indexed embeddings, is required with the index.
	VectorIndex    string `koanf:"vector_index"`
	VectorDistance string `koanf:"vector_distance"`
	EmbeddingDims  int    `koanf:"embedding_dims"`
}

// vectorIndexOff is the VectorIndex value that disables the index.
const vectorIndexOff = "off"

// DefaultConfig returns the defaults for a local server.
func DefaultConfig() Config {
	return Config{
		Addr:          []string{"127.0.0.1:9000"},
		Database:      "textpulse",
		Table:         "events",
		Username:      "default",
		Compression:   "none",
		DialTimeout:   5 * time.Second,
		InsertTimeout: 2 * time.Minute,
		MaxOpenConns:  8,
		BlockBytes:    4 << 20,
		RetryInitial:  200 * time.Millisecond,
		RetryMax:      15 * time.Second,
		DedupWindow:   1000,

		MetadataType:   schemas.MetadataString,
		VectorIndex:    vectorIndexOff,
		VectorDistance: schemas.DistanceCosine,

		ZooKeeperPath:           schemas.DefaultZooKeeperPath,
		MigrationsZooKeeperPath: schemas.DefaultMigrationsZooKeeperPath,
		ReplicaName:             schemas.DefaultReplicaName,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, errors.New("clickhouse.addr must list at least one host:port"))
	}
	switch c.Compression {
	case "lz4", "zstd", "none", "":
	default:
		errs = append(errs, fmt.Errorf("clickhouse.compression %q: want lz4, zstd or none", c.Compression))
	}
	if c.InsertTimeout <= 0 || c.DialTimeout <= 0 {
		errs = append(errs, errors.New("clickhouse.dial_timeout and clickhouse.insert_timeout must be positive"))
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, errors.New("clickhouse.retry_initial must be positive and at most clickhouse.retry_max"))
	}
	if c.BlockBytes < 0 {
		errs = append(errs, errors.New("clickhouse.block_bytes must not be negative"))
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, errors.New("clickhouse.max_open_conns must be at least 1"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("clickhouse.password and clickhouse.password_file are exclusive"))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("clickhouse.%w", err))
	}
	// The dialect is known only once connected (Connect checks the options
	// against the server); here every option that some server accepts
	// passes.
	o := c.schemaOptions(schemas.DialectModern)
	if err := o.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("clickhouse: %w", err))
	}
	return errors.Join(errs...)
}

// Sink is the ClickHouse sink. New builds it without connecting; Connect
// opens the connection pool and finds the server's dialect, and must
// succeed before any other method is called. After that it is safe for
// concurrent use: batches in flight are inserted in parallel over the pool.
type Sink struct {
	conn    driver.Conn
	cfg     Config
	version schemas.Version
	dialect schemas.Dialect
	columns []schemas.Column
	insert  string
	log     *slog.Logger
	m       *metrics
}

// New returns the sink for cfg, which the caller has validated, with its
// metrics registered on reg. It does not connect; see Connect. It does not
// create tables; see Migrate.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) *Sink {
	return &Sink{cfg: cfg, log: log, m: newMetrics(reg), columns: schemas.Columns()}
}

// Connect opens the connection pool, reads the server version to pick the
// DDL dialect and checks that the server can hold the configured options.
// A failed Connect leaves the sink unconnected and may be called again;
// ErrAuthentication means retrying with the same credentials cannot help.
func (c *Sink) Connect(ctx context.Context) error {
	opts, err := c.cfg.options()
	if err != nil {
		return err
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return fmt.Errorf("open clickhouse %v: %w", c.cfg.Addr, err)
	}
	c.conn = conn
	err = c.detect(ctx)
	if err == nil {
		err = c.checkServer()
	}
	if err != nil {
		_ = conn.Close()
		c.conn = nil
		return err
	}
	c.insert = insertSQL(c.cfg.Database, c.Options().InsertTable(), schemas.InsertColumns())
	return nil
}

// options returns the driver options of the configuration, with the
// password resolved.
func (c Config) options() (*ch.Options, error) {
	password, err := secret.Resolve(c.Password, c.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("clickhouse password: %w", err)
	}
	tc, err := c.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("clickhouse tls: %w", err)
	}
	opts := &ch.Options{
		Addr: c.Addr,
		Auth: ch.Auth{Database: "default", Username: c.Username, Password: password.Reveal()},
		TLS:  tc,
		ClientInfo: ch.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "textpulse", Version: "1"},
		}},
		DialTimeout:      c.DialTimeout,
		MaxOpenConns:     c.MaxOpenConns,
		MaxIdleConns:     c.MaxOpenConns,
		ConnMaxLifetime:  time.Hour,
		ConnOpenStrategy: ch.ConnOpenRoundRobin,
	}
	switch c.Compression {
	case "lz4":
		opts.Compression = &ch.Compression{Method: ch.CompressionLZ4}
	case "zstd":
		opts.Compression = &ch.Compression{Method: ch.CompressionZSTD}
	}
	return opts, nil
}

func (c *Sink) detect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	if err := c.conn.Ping(ctx); err != nil {
		if isAuthError(err) {
			return fmt.Errorf("ping clickhouse %v as user %q: %w: %w", c.cfg.Addr, c.cfg.Username, ErrAuthentication, err)
		}
		return fmt.Errorf("ping clickhouse %v: %w", c.cfg.Addr, err)
	}
	sv, err := c.conn.ServerVersion()
	if err != nil {
		return fmt.Errorf("read clickhouse server version: %w", err)
	}
	c.version = schemas.Version{Major: int(sv.Version.Major), Minor: int(sv.Version.Minor), Patch: int(sv.Version.Patch)} //nolint:gosec // Version numbers are small.
	c.dialect = schemas.DialectFor(c.version)
	return nil
}

// checkServer refuses options that the server cannot hold, such as JSON
// metadata on 18.16.
func (c *Sink) checkServer() error {
	o := c.Options()
	if err := o.Validate(); err != nil {
		return fmt.Errorf("clickhouse %v (server %s): %w", c.cfg.Addr, c.version, err)
	}
	if err := o.CheckServer(c.version); err != nil {
		return fmt.Errorf("clickhouse %v: %w", c.cfg.Addr, err)
	}
	return nil
}

// Version returns the server version found by Connect.
func (c *Sink) Version() schemas.Version { return c.version }

// Dialect returns the DDL dialect used for the server.
func (c *Sink) Dialect() schemas.Dialect { return c.dialect }

// Options returns the schema options for the server and configuration.
func (c *Sink) Options() schemas.Options {
	return c.cfg.schemaOptions(c.dialect)
}

// schemaOptions returns the schema options of the configuration for a
// dialect.
func (c Config) schemaOptions(d schemas.Dialect) schemas.Options {
	return schemas.Options{
		Database:                c.Database,
		Table:                   c.Table,
		Dialect:                 d,
		TTLDays:                 c.TTLDays,
		DedupWindow:             c.DedupWindow,
		Cluster:                 c.Cluster,
		ZooKeeperPath:           c.ZooKeeperPath,
		MigrationsZooKeeperPath: c.MigrationsZooKeeperPath,
		ReplicaName:             c.ReplicaName,
		MetadataType:            c.MetadataType,
		VectorIndex:             c.vectorIndex(),
		VectorDistance:          c.VectorDistance,
		EmbeddingDims:           c.EmbeddingDims,
	}
}

// vectorIndex returns VectorIndex as schemas.Options wants it: "" for off.
func (c Config) vectorIndex() string {
	if c.VectorIndex == vectorIndexOff {
		return ""
	}
	return c.VectorIndex
}

// Ping checks that the server answers.
func (c *Sink) Ping(ctx context.Context) error {
	if err := c.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping clickhouse: %w", err)
	}
	return nil
}

// Conn returns the underlying connection, for queries outside the write path.
func (c *Sink) Conn() driver.Conn { return c.conn }

// Close closes the connection pool, if Connect opened one.
func (c *Sink) Close() error {
	if c.conn == nil {
		return nil
	}
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("close clickhouse: %w", err)
	}
	return nil
}

// Write implements processor.Writer: one INSERT of all rows of b, retried
// with exponential backoff and jitter until it succeeds or ctx is done. Rows
// refused for their content come back as a processor.PermanentError. On
// modern servers the INSERT carries a deduplication token derived from the
// batch offsets, so a retry of an INSERT that did land is dropped by the
// server.
func (c *Sink) Write(ctx context.Context, b *processor.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.cfg.RetryInitial
	bo.MaxInterval = c.cfg.RetryMax
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		start := time.Now()
		err := c.insertOnce(ctx, b)
		c.m.insertDuration.Observe(time.Since(start).Seconds())
		if err == nil {
			c.m.rows.Add(float64(len(b.Records)))
			c.m.inserts.WithLabelValues("ok").Inc()
			c.m.up.Set(1)
			if attempt > 1 {
				c.log.Info("insert recovered", "batch", b.ID, "attempts", attempt)
			}
			return struct{}{}, nil
		}
		class := classify(err)
		c.m.inserts.WithLabelValues(string(class)).Inc()
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		if class == classData {
			return struct{}{}, backoff.Permanent(processor.Permanent(err))
		}
		c.m.up.Set(0)
		c.m.retries.Inc()
		if class == classSchema {
			c.log.Error("insert batch: table does not match; run the migrate command", "batch", b.ID, "attempt", attempt, "err", err)
		} else {
			c.log.Warn("insert batch, will retry", "batch", b.ID, "attempt", attempt, "err", err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("insert batch %s: %w", b.ID, err)
	}
	return nil
}

// insertOnce sends one INSERT with the columns of b, holding its connection
// from the header to the last block so that the server runs one query per
// batch (releasing it after PrepareBatch makes the driver finish an empty
// INSERT first and start a second one for the rows).
func (c *Sink) insertOnce(ctx context.Context, b *processor.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.InsertTimeout)
	defer cancel()
	if settings := schemas.InsertSettings(c.Options(), b.DedupToken()); len(settings) > 0 {
		ctx = ch.Context(ctx, ch.WithSettings(ch.Settings(settings)))
	}
	batch, err := c.conn.PrepareBatch(ctx, c.insert)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	col := func(i int) columnAppender { return batch.Column(i) }
	rows := blockRows(c.cfg.BlockBytes, b.Bytes, b.Records)
	if err := appendColumns(col, batch.Flush, rows, c.Options(), c.columns, b.Records); err != nil {
		_ = batch.Abort()
		return err
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send insert: %w", err)
	}
	return nil
}
