package clickhouse_test

import (
	"strings"
	"testing"

	"github.com/textpulse/textpulse/schemas"
	"github.com/textpulse/textpulse/sink/clickhouse"
)

func TestConfigValidateCluster(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*clickhouse.Config)
		wantErr string
	}{
		{"single node", func(*clickhouse.Config) {}, ""},
		{"cluster with default paths", func(c *clickhouse.Config) { c.Cluster = "main" }, ""},
		{"cluster with custom paths", func(c *clickhouse.Config) {
			c.Cluster, c.ZooKeeperPath, c.ReplicaName = "prod", "/ch/{shard}/{table}", "{host}"
		}, ""},
		{"cluster name with dash", func(c *clickhouse.Config) { c.Cluster = "prod-eu" }, "option Cluster"},
		{"relative zookeeper path", func(c *clickhouse.Config) { c.Cluster, c.ZooKeeperPath = "main", "tables/{shard}" }, "option ZooKeeperPath"},
		{"empty replica name", func(c *clickhouse.Config) { c.Cluster, c.ReplicaName = "main", "" }, ""},
		{"replica name with quote", func(c *clickhouse.Config) { c.Cluster, c.ReplicaName = "main", "r'1" }, "option ReplicaName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clickhouse.DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
}

func TestDefaultConfigReplicationDefaults(t *testing.T) {
	cfg := clickhouse.DefaultConfig()
	if cfg.Cluster != "" {
		t.Errorf("default cluster %q, want single-node mode", cfg.Cluster)
	}
	if cfg.ZooKeeperPath != schemas.DefaultZooKeeperPath || cfg.ReplicaName != schemas.DefaultReplicaName ||
		cfg.MigrationsZooKeeperPath != schemas.DefaultMigrationsZooKeeperPath {
		t.Errorf("replication defaults %q %q %q", cfg.ZooKeeperPath, cfg.MigrationsZooKeeperPath, cfg.ReplicaName)
	}
}

func TestConfigValidateAnalystOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*clickhouse.Config)
		wantErr string
	}{
		{"defaults", func(*clickhouse.Config) {}, ""},
		{"json metadata", func(c *clickhouse.Config) { c.MetadataType = "json" }, ""},
		{"unknown metadata type", func(c *clickhouse.Config) { c.MetadataType = "map" }, "option MetadataType"},
		{"vector index", func(c *clickhouse.Config) { c.VectorIndex, c.EmbeddingDims = "hnsw", 768 }, ""},
		{"vector index l2", func(c *clickhouse.Config) { c.VectorIndex, c.VectorDistance, c.EmbeddingDims = "hnsw", "L2Distance", 3 }, ""},
		{"vector index without dims", func(c *clickhouse.Config) { c.VectorIndex = "hnsw" }, "option EmbeddingDims"},
		{"unknown vector index", func(c *clickhouse.Config) { c.VectorIndex, c.EmbeddingDims = "annoy", 3 }, "option VectorIndex"},
		{"unknown distance", func(c *clickhouse.Config) { c.VectorIndex, c.VectorDistance, c.EmbeddingDims = "hnsw", "cosine", 3 }, "option VectorDistance"},
		{"vector index in cluster mode", func(c *clickhouse.Config) { c.VectorIndex, c.EmbeddingDims, c.Cluster = "hnsw", 3, "main" }, "cluster mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clickhouse.DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
}
