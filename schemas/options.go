package schemas

import (
	"strconv"
	"strings"
)

// Defaults applied by Options.WithDefaults.
const (
	DefaultDatabase    = "textpulse"
	DefaultTable       = "events"
	DefaultDedupWindow = 1000
	// DefaultZooKeeperPath is the replication path of the tables in
	// cluster mode. {shard} and {replica} are server macros; {database} and
	// {table} are replaced with the database and the local table name when
	// the DDL is rendered, so the path works on servers of every version.
	DefaultZooKeeperPath = "/clickhouse/tables/{shard}/{database}/{table}"
	// DefaultMigrationsZooKeeperPath is the replication path of the
	// migrations table in cluster mode. It has no {shard}: every node of
	// the cluster is a replica of one migrations table, so a migration
	// recorded through any node is seen from all of them.
	DefaultMigrationsZooKeeperPath = "/clickhouse/tables/all/{database}/{table}"
	// DefaultReplicaName is the replica name of the tables in cluster mode,
	// the server's {replica} macro.
	DefaultReplicaName = "{replica}"
	// LocalSuffix is appended to the names of the tables that hold the
	// data on each shard in cluster mode; the Distributed tables over them
	// carry the plain names.
	LocalSuffix = "_local"
)

// MigrationsTable is the name of the table, in Options.Database, that records
// the applied migrations.
const MigrationsTable = "schema_migrations"

// Options selects the names and the dialect of the rendered DDL and queries.
type Options struct {
	// Database holds all tables; "" means DefaultDatabase.
	Database string
	// Table is the main table; "" means DefaultTable. The rollup table and
	// its materialized view are named Table+"_per_minute" and
	// Table+"_per_minute_mv".
	Table string
	// Dialect is DialectLegacy or DialectModern, normally from DialectFor.
	Dialect Dialect
	// TTLDays expires rows of the main table that many days after
	// created_at; 0 keeps them forever. It is only rendered on DialectModern.
	TTLDays int
	// DedupWindow is the non_replicated_deduplication_window of the main
	// table and the rollup table on DialectModern: how many recent insert
	// blocks each remembers for deduplication. 0 means DefaultDedupWindow.
	DedupWindow int
	// Cluster, when set, renders the DDL for a cluster of that name (a
	// cluster in the servers' remote_servers): every statement runs ON
	// CLUSTER, the MergeTree tables become Replicated* tables named
	// Table+LocalSuffix (and Table+"_per_minute"+LocalSuffix), and
	// Distributed tables with the plain names route INSERTs to the shards
	// and fan out queries. The migrations table is replicated to every node.
	Cluster string
	// ZooKeeperPath is the replication path of the data tables in cluster
	// mode; "" means DefaultZooKeeperPath.
	ZooKeeperPath string
	// MigrationsZooKeeperPath is the replication path of the migrations
	// table in cluster mode; "" means DefaultMigrationsZooKeeperPath.
	MigrationsZooKeeperPath string
	// ReplicaName is the replica name in cluster mode; "" means
	// DefaultReplicaName.
	ReplicaName string
	// MetadataType is the type of the metadata column: MetadataString
	// ("" means it) or MetadataJSON, the JSON type of servers from 25.3
	// on (DialectModern only, see CheckServer).
	MetadataType string
	// VectorIndex, when VectorIndexHNSW, adds the table Table+"_embeddings"
	// with a vector_similarity index over the embeddings of EmbeddingDims
	// elements, filled from the main table by the view
	// Table+"_embeddings_mv"; "" means none. DialectModern only, not in
	// cluster mode.
	VectorIndex string
	// VectorDistance is the distance function of the vector index,
	// DistanceCosine ("" means it) or DistanceL2.
	VectorDistance string
	// EmbeddingDims is the number of elements of the embeddings the vector
	// index holds; it is required with VectorIndex. Rows whose embedding
	// has another length (or none) stay out of the index table.
	EmbeddingDims int
}

// Values of Options.MetadataType, Options.VectorIndex and
// Options.VectorDistance.
const (
	MetadataString  = "string"
	MetadataJSON    = "json"
	VectorIndexHNSW = "hnsw"
	DistanceCosine  = "cosineDistance"
	DistanceL2      = "L2Distance"
)

// maxEmbeddingDims bounds Options.EmbeddingDims.
const maxEmbeddingDims = 65536

// jsonSince and vectorIndexSince are the first server versions with the
// JSON type and the vector_similarity index enabled by default.
func jsonSince() Version        { return Version{Major: 25, Minor: 3} }
func vectorIndexSince() Version { return Version{Major: 25, Minor: 8} }

// EmbeddingsTable returns the name of the table that holds the indexed
// embeddings, Table+"_embeddings".
func (o Options) EmbeddingsTable() string { return o.WithDefaults().Table + "_embeddings" }

// CheckServer reports whether a server of version v can hold what the
// options enable: the JSON metadata type from 25.3 on, the vector index from
// 25.8 on (earlier servers hide both behind experimental settings). The
// error is an *OptionError.
func (o Options) CheckServer(v Version) error {
	o = o.WithDefaults()
	if o.MetadataType == MetadataJSON && v.Less(jsonSince()) {
		return &OptionError{Option: "MetadataType", Value: o.MetadataType, Err: ErrInvalidOption,
			Reason: "the JSON type needs ClickHouse " + jsonSince().String() + " or later, the server is " + v.String()}
	}
	if o.VectorIndex != "" && v.Less(vectorIndexSince()) {
		return &OptionError{Option: "VectorIndex", Value: o.VectorIndex, Err: ErrInvalidOption,
			Reason: "the vector_similarity index needs ClickHouse " + vectorIndexSince().String() + " or later, the server is " + v.String()}
	}
	return nil
}

// Clustered reports whether the options render DDL for a cluster.
func (o Options) Clustered() bool { return o.Cluster != "" }

// InsertTable returns the table the sink inserts into: Table, which in
// cluster mode is the Distributed table.
func (o Options) InsertTable() string { return o.WithDefaults().Table }

// WithDefaults returns o with empty fields set to their defaults. Render,
// Queries and Migrations apply it themselves; callers use it to learn the
// effective names.
func (o Options) WithDefaults() Options {
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.DedupWindow == 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	if o.ZooKeeperPath == "" {
		o.ZooKeeperPath = DefaultZooKeeperPath
	}
	if o.MigrationsZooKeeperPath == "" {
		o.MigrationsZooKeeperPath = DefaultMigrationsZooKeeperPath
	}
	if o.ReplicaName == "" {
		o.ReplicaName = DefaultReplicaName
	}
	if o.MetadataType == "" {
		o.MetadataType = MetadataString
	}
	if o.VectorIndex != "" && o.VectorDistance == "" {
		o.VectorDistance = DistanceCosine
	}
	return o
}

// Validate checks the options after applying the defaults. Identifiers must
// match ^[A-Za-z_][A-Za-z0-9_]*$, the database must not be a system database,
// the table must not clash with the migrations table, the dialect must be
// DialectLegacy or DialectModern and the numbers must not be negative. A
// cluster name must be an identifier too, and the replication paths must
// start with "/" and, like the replica name, hold no quote, backslash or
// control character. The error is an *OptionError.
func (o Options) Validate() error {
	o = o.WithDefaults()
	if !validIdentifier(o.Database) {
		return &OptionError{Option: "Database", Value: o.Database, Err: ErrInvalidIdentifier,
			Reason: "want ^[A-Za-z_][A-Za-z0-9_]*$"}
	}
	switch strings.ToLower(o.Database) {
	case "system", "information_schema":
		return &OptionError{Option: "Database", Value: o.Database, Err: ErrInvalidIdentifier,
			Reason: "reserved for the server"}
	}
	if !validIdentifier(o.Table) {
		return &OptionError{Option: "Table", Value: o.Table, Err: ErrInvalidIdentifier,
			Reason: "want ^[A-Za-z_][A-Za-z0-9_]*$"}
	}
	if o.Table == MigrationsTable {
		return &OptionError{Option: "Table", Value: o.Table, Err: ErrInvalidIdentifier,
			Reason: "reserved for the migrations table"}
	}
	if o.Dialect != DialectLegacy && o.Dialect != DialectModern {
		return &OptionError{Option: "Dialect", Value: o.Dialect.String(), Err: ErrInvalidOption,
			Reason: "want DialectLegacy or DialectModern"}
	}
	if o.TTLDays < 0 {
		return &OptionError{Option: "TTLDays", Value: strconv.Itoa(o.TTLDays), Err: ErrInvalidOption,
			Reason: "must not be negative"}
	}
	if o.DedupWindow < 0 {
		return &OptionError{Option: "DedupWindow", Value: strconv.Itoa(o.DedupWindow), Err: ErrInvalidOption,
			Reason: "must not be negative"}
	}
	if err := o.validateAnalyst(); err != nil {
		return err
	}
	if o.Cluster == "" {
		return nil
	}
	if !validIdentifier(o.Cluster) {
		return &OptionError{Option: "Cluster", Value: o.Cluster, Err: ErrInvalidIdentifier,
			Reason: "want ^[A-Za-z_][A-Za-z0-9_]*$"}
	}
	for _, p := range []struct{ name, value string }{
		{"ZooKeeperPath", o.ZooKeeperPath},
		{"MigrationsZooKeeperPath", o.MigrationsZooKeeperPath},
	} {
		if !strings.HasPrefix(p.value, "/") || !plainText(p.value) {
			return &OptionError{Option: p.name, Value: p.value, Err: ErrInvalidOption,
				Reason: "want an absolute path without quotes, backslashes or control characters"}
		}
	}
	if !plainText(o.ReplicaName) {
		return &OptionError{Option: "ReplicaName", Value: o.ReplicaName, Err: ErrInvalidOption,
			Reason: "want a name without quotes, backslashes or control characters"}
	}
	return nil
}

// validateAnalyst checks MetadataType and the vector index options of
// options with the defaults applied.
func (o Options) validateAnalyst() error {
	switch o.MetadataType {
	case MetadataString:
	case MetadataJSON:
		if o.Dialect != DialectModern {
			return &OptionError{Option: "MetadataType", Value: o.MetadataType, Err: ErrInvalidOption,
				Reason: "the JSON type needs a modern server (ClickHouse " + jsonSince().String() + " or later)"}
		}
	default:
		return &OptionError{Option: "MetadataType", Value: o.MetadataType, Err: ErrInvalidOption,
			Reason: "want " + MetadataString + " or " + MetadataJSON}
	}
	switch o.VectorIndex {
	case "":
		return nil
	case VectorIndexHNSW:
	default:
		return &OptionError{Option: "VectorIndex", Value: o.VectorIndex, Err: ErrInvalidOption,
			Reason: "want " + VectorIndexHNSW + " or none"}
	}
	if o.Dialect != DialectModern {
		return &OptionError{Option: "VectorIndex", Value: o.VectorIndex, Err: ErrInvalidOption,
			Reason: "the vector_similarity index needs a modern server (ClickHouse " + vectorIndexSince().String() + " or later)"}
	}
	if o.Clustered() {
		return &OptionError{Option: "VectorIndex", Value: o.VectorIndex, Err: ErrInvalidOption,
			Reason: "not supported in cluster mode"}
	}
	if o.VectorDistance != DistanceCosine && o.VectorDistance != DistanceL2 {
		return &OptionError{Option: "VectorDistance", Value: o.VectorDistance, Err: ErrInvalidOption,
			Reason: "want " + DistanceCosine + " or " + DistanceL2}
	}
	if o.EmbeddingDims < 1 || o.EmbeddingDims > maxEmbeddingDims {
		return &OptionError{Option: "EmbeddingDims", Value: strconv.Itoa(o.EmbeddingDims), Err: ErrInvalidOption,
			Reason: "the vector index needs the embedding dimension, 1 to " + strconv.Itoa(maxEmbeddingDims)}
	}
	return nil
}

// plainText reports whether s is non-empty and holds no quote, backslash or
// control character, so that it reads the same inside any SQL literal.
func plainText(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || strings.ContainsRune("'\"\\`", r) {
			return false
		}
	}
	return true
}

// validIdentifier reports whether s matches ^[A-Za-z_][A-Za-z0-9_]*$.
func validIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
