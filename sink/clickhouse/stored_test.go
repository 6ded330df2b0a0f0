package clickhouse

import "testing"

func TestDedupWindow(t *testing.T) {
	for _, tc := range []struct {
		name, engine, want string
		ok                 bool
	}{
		{"single node", "ReplacingMergeTree(ingested_at) PARTITION BY toYYYYMM(kafka_timestamp) ORDER BY (kafka_topic, kafka_partition, kafka_offset) SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000", "1000", true},
		{"replicated", "ReplicatedReplacingMergeTree('/p', 'r', ingested_at) ORDER BY x SETTINGS replicated_deduplication_window = 100, index_granularity = 8192", "100", true},
		{"zero", "MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 0", "0", true},
		{"none", "ReplacingMergeTree(ingested_at) ORDER BY x SETTINGS index_granularity = 8192", "", false},
		{"no value", "MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = ", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := dedupWindow(tc.engine)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("dedupWindow(%q) = %q, %v, want %q, %v", tc.engine, got, ok, tc.want, tc.ok)
			}
		})
	}
}
