-- Exact event count per topic: FINAL collapses records that were written more
-- than once (retried inserts) before counting.
SELECT
    kafka_topic,
    count() AS events,
    uniqExact(kafka_partition) AS partitions,
    min(kafka_timestamp) AS first_record,
    max(kafka_timestamp) AS last_record
FROM {{.Database}}.{{.Table}} FINAL
GROUP BY kafka_topic
ORDER BY kafka_topic ASC
