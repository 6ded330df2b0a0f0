-- Ingest lag per topic and hour over the last day: seconds from the Kafka
-- record timestamp to the row being written, median and 99th percentile.
SELECT
    kafka_topic,
    toStartOfHour(kafka_timestamp) AS hour,
    count() AS events,
{{- if .Modern}}
    round(quantile(0.5)((toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) / 1000), 3) AS p50_lag_s,
    round(quantile(0.99)((toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) / 1000), 3) AS p99_lag_s
{{- else}}
    round(quantile(0.5)(toInt64(ingested_at) - toInt64(kafka_timestamp)), 3) AS p50_lag_s,
    round(quantile(0.99)(toInt64(ingested_at) - toInt64(kafka_timestamp)), 3) AS p99_lag_s
{{- end}}
FROM {{.Database}}.{{.Table}}
WHERE kafka_timestamp >= now() - INTERVAL 1 DAY
GROUP BY kafka_topic, hour
ORDER BY kafka_topic ASC, hour ASC
