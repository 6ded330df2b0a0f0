package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    int64
		wantErr bool
	}{
		{
			name: "plain command",
			stat: "18729 (clickhouse-serv) S 1 18729 18729 0 -1 4194560 1 0 0 0 1200 345 0 0 20 0 40 0 100 1 1",
			want: 1545,
		},
		{
			name: "command with spaces and parentheses",
			stat: "42 (a) b (c)) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 1 1",
			want: 10,
		},
		{name: "no command", stat: "42 R 1", wantErr: true},
		{name: "too few fields", stat: "42 (x) R 1 2 3", wantErr: true},
		{name: "not a number", stat: "42 (x) R 1 42 42 0 -1 0 0 0 0 0 x 3 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseStatusMiB(t *testing.T) {
	status := "Name:\tconsumer\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
	tests := []struct {
		name    string
		field   string
		want    float64
		wantErr bool
	}{
		{name: "peak", field: "VmHWM:", want: 200},
		{name: "resident", field: "VmRSS:", want: 100},
		{name: "missing", field: "VmSwap:", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusMiB(status, tt.field)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPeersRatios(t *testing.T) {
	tests := []struct {
		name   string
		run    map[string]float64
		want   map[string]float64
		absent []string
	}{
		{
			name: "three tools",
			run:  map[string]float64{"textpulse_events_per_s": 200, "client_rows_per_s": 400, "kafka_engine_events_per_s": 50},
			want: map[string]float64{
				"textpulse_x_client": 0.5, "client_x_textpulse": 2,
				"kafka_engine_x_textpulse": 0.25, "kafka_engine_x_client": 0.125,
			},
			absent: []string{"textpulse_x_textpulse", "client_x_client", "sinker_x_textpulse"},
		},
		{
			name:   "with sinker",
			run:    map[string]float64{"textpulse_events_per_s": 200, "client_rows_per_s": 400, "sinker_events_per_s": 100},
			want:   map[string]float64{"sinker_x_textpulse": 0.5, "sinker_x_client": 0.25},
			absent: []string{"kafka_engine_x_textpulse"},
		},
		{
			name:   "no client",
			run:    map[string]float64{"textpulse_events_per_s": 200},
			absent: []string{"textpulse_x_client"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peersRatios(tt.run)
			for k, v := range tt.want {
				if got, ok := tt.run[k]; !ok || got != v {
					t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := tt.run[k]; ok {
					t.Errorf("%s present, want absent", k)
				}
			}
		})
	}
}

func TestPeersTable(t *testing.T) {
	r := &Result{Runs: []map[string]float64{
		{
			"textpulse_events_per_s": 100000, "textpulse_max_rss_mib": 120, "textpulse_cpu_seconds_per_million": 9,
			"server_cpu_seconds_per_million_textpulse": 4, "parts_textpulse": 3, "textpulse_x_client": 0.5,
			"kafka_engine_events_per_s": 50000, "server_rss_increase_mib_kafka_engine": 30,
			"server_cpu_seconds_per_million_kafka_engine": 12, "parts_kafka_engine": 16, "kafka_engine_x_textpulse": 0.5,
			"kafka_engine_x_client": 0.25, "client_rows_per_s": 200000, "client_x_textpulse": 2, "parts_client": 1,
		},
	}}
	r.summarize()
	got := peersTable(r)
	tests := []struct {
		name, want string
	}{
		{"textpulse row", "| textpulse (defaults) | 100000 (100000–100000) | 1 | 0.50 | 120 MiB | 9.000 | 4.000 | 3 |"},
		{"kafka engine row", "| ClickHouse Kafka engine | 50000 (50000–50000) | 0.50 | 0.25 | server +30 MiB | in the server | 12.0 | 16 |"},
		{"client row", "| clickhouse-client (TSV INSERT) | 200000 (200000–200000) | 2.00 | 1 | – | – | – | 1 |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(got, tt.want) {
				t.Errorf("table lacks %q:\n%s", tt.want, got)
			}
		})
	}
	if strings.Contains(got, "clickhouse_sinker") {
		t.Errorf("table has a row for a tool that did not run:\n%s", got)
	}
}

func TestSinkerConfig(t *testing.T) {
	o := options{chAddr: "127.0.0.1:9000", brokers: "127.0.0.1:9092"}
	b, err := sinkerConfig(o, "bench.peers.x", "bench-x-sinker", "bench_peers_x_sinker")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ClickHouse struct {
			Hosts [][]string `json:"hosts"`
			Port  int        `json:"port"`
			DB    string     `json:"db"`
		} `json:"clickhouse"`
		Kafka struct {
			Brokers string `json:"brokers"`
		} `json:"kafka"`
		Task struct {
			Topic         string              `json:"topic"`
			ConsumerGroup string              `json:"consumerGroup"`
			Earliest      bool                `json:"earliest"`
			Parser        string              `json:"parser"`
			TableName     string              `json:"tableName"`
			ShardingKey   string              `json:"shardingKey"`
			BufferSize    int                 `json:"bufferSize"`
			FlushInterval int                 `json:"flushInterval"`
			Dims          []map[string]string `json:"dims"`
		} `json:"task"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"host", cfg.ClickHouse.Hosts[0][0], "127.0.0.1"},
		{"port", cfg.ClickHouse.Port, 9000},
		{"db", cfg.ClickHouse.DB, "bench_peers_x_sinker"},
		{"brokers", cfg.Kafka.Brokers, "127.0.0.1:9092"},
		{"topic", cfg.Task.Topic, "bench.peers.x"},
		{"group", cfg.Task.ConsumerGroup, "bench-x-sinker"},
		{"earliest", cfg.Task.Earliest, true},
		{"parser", cfg.Task.Parser, "fastjson"},
		{"table", cfg.Task.TableName, "events"},
		{"sharding key", cfg.Task.ShardingKey, "id"},
		{"buffer", cfg.Task.BufferSize, 100000},
		{"flush", cfg.Task.FlushInterval, 1},
		{"dims", len(cfg.Task.Dims), len(peerColumns())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestKafkaTableDDL(t *testing.T) {
	ddl := kafkaTableDDL(options{brokers: "127.0.0.1:9092", partitions: 4}, "db1", "t1", "g1")
	for _, want := range []string{
		"CREATE TABLE db1.queue (id String, text String, source String, author String, lang String, created_at String)",
		"kafka_broker_list = '127.0.0.1:9092'", "kafka_topic_list = 't1'", "kafka_group_name = 'g1'",
		"kafka_format = 'JSONEachRow'", "kafka_num_consumers = 1",
	} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(ddl, want) {
				t.Errorf("%s lacks %q", ddl, want)
			}
		})
	}
}
