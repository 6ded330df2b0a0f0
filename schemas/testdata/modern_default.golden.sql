-- bootstrap: create_database
CREATE DATABASE IF NOT EXISTS textpulse;

-- bootstrap: create_migrations_table
CREATE TABLE IF NOT EXISTS textpulse.schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
SETTINGS index_granularity = 8192;

-- migration 1 create_tables: create_database
CREATE DATABASE IF NOT EXISTS textpulse;

-- migration 1 create_tables: create_table
CREATE TABLE IF NOT EXISTS textpulse.events
(
    kafka_topic String COMMENT 'Kafka topic the record was consumed from.',
    kafka_partition UInt32 COMMENT 'Kafka partition of the record.',
    kafka_offset UInt64 COMMENT 'Kafka offset of the record.' CODEC(Delta, ZSTD(1)),
    kafka_timestamp DateTime64(3) COMMENT 'Kafka record timestamp.' CODEC(DoubleDelta, ZSTD(1)),
    event_id String COMMENT 'Event id from the producer, may be empty.' CODEC(ZSTD(1)),
    text String COMMENT 'Event text as received.' CODEC(ZSTD(3)),
    source LowCardinality(String) COMMENT 'Producer-defined source of the event.',
    author String COMMENT 'Author of the text, may be empty.' CODEC(ZSTD(1)),
    lang LowCardinality(String) COMMENT 'Language code of the text, may be empty.',
    created_at DateTime64(3) COMMENT 'When the text was created, or the Kafka timestamp when the event has none.' CODEC(DoubleDelta, ZSTD(1)),
    metadata String COMMENT 'Raw JSON text of the event metadata object, empty when absent.' CODEC(ZSTD(3)),
    embedding Array(Float32) COMMENT 'L2-normalised text embedding, empty when not computed.',
    embedding_model LowCardinality(String) COMMENT 'Model that computed the embedding.',
    sentiment_label LowCardinality(String) COMMENT 'Sentiment label, empty when absent.',
    sentiment_score Float32 COMMENT 'Score of sentiment_label, 0 when absent.',
    sentiment_model LowCardinality(String) COMMENT 'Model that computed the sentiment.',
    emotion_label LowCardinality(String) COMMENT 'Emotion with the highest score, empty when absent.',
    emotion_labels Array(LowCardinality(String)) COMMENT 'Emotion labels, parallel to emotion_scores.',
    emotion_scores Array(Float32) COMMENT 'Emotion scores, parallel to emotion_labels.',
    emotion_model LowCardinality(String) COMMENT 'Model that computed the emotions.',
    status LowCardinality(String) COMMENT 'ok when every enabled stage produced a result, partial otherwise.',
    failed_stages Array(String) COMMENT 'Stages whose failure left their columns empty.',
    revision UInt32 COMMENT '0 for the row the consumer wrote, n for the n-th new version written by consumer enrich. The newest row of a key wins.',
    ingested_at DateTime64(3) DEFAULT now64(3) COMMENT 'When the row was written; the ReplacingMergeTree version.' CODEC(DoubleDelta, ZSTD(1)),
    emotion Map(String, Float32) ALIAS CAST((emotion_labels, emotion_scores), 'Map(String, Float32)') COMMENT 'Emotion scores by label, computed on read.'
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(kafka_timestamp)
ORDER BY (kafka_topic, kafka_partition, kafka_offset)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

-- migration 1 create_tables: create_rollup_table
CREATE TABLE IF NOT EXISTS textpulse.events_per_minute
(
    minute DateTime,
    kafka_topic String,
    source LowCardinality(String),
    lang LowCardinality(String),
    sentiment_label LowCardinality(String),
    emotion_label LowCardinality(String),
    events Int64 COMMENT 'Rows written.',
    sentiment_score_sum Float64 COMMENT 'Sum of sentiment_score over rows with a sentiment.',
    sentiment_scored Int64 COMMENT 'Rows with a sentiment.',
    partial Int64 COMMENT 'Rows with status partial.'
)
ENGINE = SummingMergeTree((events, sentiment_score_sum, sentiment_scored, partial))
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, kafka_topic, source, lang, sentiment_label, emotion_label)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;

-- migration 1 create_tables: create_rollup_view
CREATE MATERIALIZED VIEW IF NOT EXISTS textpulse.events_per_minute_mv
TO textpulse.events_per_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    kafka_topic,
    source,
    lang,
    sentiment_label,
    emotion_label,
    toInt64(count()) AS events,
    sumIf(sentiment_score, sentiment_label != '') AS sentiment_score_sum,
    toInt64(countIf(sentiment_label != '')) AS sentiment_scored,
    toInt64(countIf(status = 'partial')) AS partial
FROM textpulse.events
WHERE revision = 0
GROUP BY minute, kafka_topic, source, lang, sentiment_label, emotion_label;

-- record migration 1
INSERT INTO textpulse.schema_migrations (version, name, applied_at) SELECT 1, 'create_tables', now();

-- migration 2 row_revisions: add_revision_column
ALTER TABLE textpulse.events
    ADD COLUMN IF NOT EXISTS revision UInt32 COMMENT '0 for the row the consumer wrote, n for the n-th new version written by consumer enrich. The newest row of a key wins.' AFTER failed_stages;

-- migration 2 row_revisions: signed_rollup_counters
ALTER TABLE textpulse.events_per_minute
    MODIFY COLUMN events Int64 COMMENT 'Rows written.',
    MODIFY COLUMN sentiment_scored Int64 COMMENT 'Rows with a sentiment.',
    MODIFY COLUMN partial Int64 COMMENT 'Rows with status partial.';

-- migration 2 row_revisions: drop_rollup_view
DROP TABLE IF EXISTS textpulse.events_per_minute_mv;

-- migration 2 row_revisions: create_rollup_view
CREATE MATERIALIZED VIEW IF NOT EXISTS textpulse.events_per_minute_mv
TO textpulse.events_per_minute
AS SELECT
    toStartOfMinute(created_at) AS minute,
    kafka_topic,
    source,
    lang,
    sentiment_label,
    emotion_label,
    toInt64(count()) AS events,
    sumIf(sentiment_score, sentiment_label != '') AS sentiment_score_sum,
    toInt64(countIf(sentiment_label != '')) AS sentiment_scored,
    toInt64(countIf(status = 'partial')) AS partial
FROM textpulse.events
WHERE revision = 0
GROUP BY minute, kafka_topic, source, lang, sentiment_label, emotion_label;

-- record migration 2
INSERT INTO textpulse.schema_migrations (version, name, applied_at) SELECT 2, 'row_revisions', now();

-- applied versions
SELECT version FROM textpulse.schema_migrations GROUP BY version ORDER BY version;

-- query: sentiment_over_time
-- Sentiment over time per source: hourly event counts and the mean score of
-- each sentiment label over the last 7 days, read from the per-minute rollup.
-- On legacy servers retried inserts can inflate these counts; see
-- events_per_topic for exact counts.
SELECT
    toStartOfHour(minute) AS hour,
    source,
    sentiment_label,
    sum(events) AS events,
    sum(sentiment_scored) AS scored,
    if(scored = 0, 0, round(sum(sentiment_score_sum) / scored, 4)) AS avg_score
FROM textpulse.events_per_minute
WHERE minute >= toStartOfHour(now() - INTERVAL 7 DAY)
GROUP BY hour, source, sentiment_label
ORDER BY hour ASC, source ASC, events DESC;

-- query: top_emotions_by_language
-- Top emotions by language in the last day: how often each emotion was the
-- strongest one and its mean score, five emotions per language.
SELECT
    lang,
    emotion_label,
    count() AS events,
    round(avg(emotion_scores[indexOf(emotion_labels, emotion_label)]), 4) AS avg_score
FROM textpulse.events FINAL
WHERE created_at >= now() - INTERVAL 1 DAY
    AND emotion_label != ''
GROUP BY lang, emotion_label
ORDER BY lang ASC, events DESC, emotion_label ASC
LIMIT 5 BY lang;

-- query: partial_rows
-- Partial rows per day over the last 7 days: the share of rows written without
-- the result of some enrichment stage, and how often each stage failed, as a
-- tuple of (stages, failure counts).
SELECT
    toDate(kafka_timestamp) AS day,
    count() AS events,
    countIf(status = 'partial') AS partial_events,
    round(partial_events / events, 4) AS partial_share,
    sumMap(failed_stages, arrayMap(s -> toUInt64(1), failed_stages)) AS failed_stage_counts
FROM textpulse.events FINAL
WHERE kafka_timestamp >= toStartOfDay(now() - INTERVAL 7 DAY)
GROUP BY day
ORDER BY day ASC;

-- query: events_per_topic
-- Exact event count per topic: FINAL collapses records that were written more
-- than once (retried inserts) before counting.
SELECT
    kafka_topic,
    count() AS events,
    uniqExact(kafka_partition) AS partitions,
    min(kafka_timestamp) AS first_record,
    max(kafka_timestamp) AS last_record
FROM textpulse.events FINAL
GROUP BY kafka_topic
ORDER BY kafka_topic ASC;

-- query: nearest_neighbours
-- Nearest neighbours of one event: the 10 texts whose embeddings are closest
-- by cosine distance. Embeddings are L2-normalised, so the cosine similarity
-- is the dot product. Put the event id in place of __EVENT_ID__ (twice).
WITH
    (
        SELECT any(embedding)
        FROM textpulse.events
        WHERE event_id = '__EVENT_ID__' AND length(embedding) > 0
    ) AS target
SELECT
    event_id,
    source,
    lang,
    round(1 - arraySum(arrayMap((x, y) -> x * y, embedding, target)), 6) AS cosine_distance,
    substring(text, 1, 200) AS text_preview
FROM textpulse.events FINAL
WHERE event_id != '__EVENT_ID__'
    AND length(embedding) = length(target)
    AND length(target) > 0
ORDER BY cosine_distance ASC, event_id ASC
LIMIT 10;

-- query: negative_texts_by_author
-- Most negative texts by author over the last 7 days: the three texts with
-- the highest negative-sentiment score per author, authors with the most
-- negative texts first. Labels are matched case-insensitively ("negative",
-- "NEGATIVE", "neg").
SELECT
    author,
    negative_texts,
    event_id,
    created_at,
    sentiment_label,
    sentiment_score,
    substring(text, 1, 200) AS text_preview
FROM textpulse.events FINAL
ALL INNER JOIN
(
    SELECT author, count() AS negative_texts
    FROM textpulse.events FINAL
    WHERE author != ''
        AND lower(sentiment_label) LIKE 'neg%'
        AND created_at >= now() - INTERVAL 7 DAY
    GROUP BY author
) AS negative USING author
WHERE author != ''
    AND lower(sentiment_label) LIKE 'neg%'
    AND created_at >= now() - INTERVAL 7 DAY
ORDER BY negative_texts DESC, author ASC, sentiment_score DESC, event_id ASC
LIMIT 3 BY author;

-- query: ingest_lag
-- Ingest lag per topic and hour over the last day: seconds from the Kafka
-- record timestamp to the row being written, median and 99th percentile.
SELECT
    kafka_topic,
    toStartOfHour(kafka_timestamp) AS hour,
    count() AS events,
    round(quantile(0.5)((toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) / 1000), 3) AS p50_lag_s,
    round(quantile(0.99)((toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(kafka_timestamp)) / 1000), 3) AS p99_lag_s
FROM textpulse.events
WHERE kafka_timestamp >= now() - INTERVAL 1 DAY
GROUP BY kafka_topic, hour
ORDER BY kafka_topic ASC, hour ASC;

-- query: metadata_channels
-- Events per metadata channel over the last 7 days: the string at the
-- metadata path channel (empty when absent), with how many of them carry a
-- metadata ticket.
SELECT
    JSONExtractString(metadata, 'channel') AS channel,
    countIf(JSONHas(metadata, 'ticket')) AS with_ticket,
    count() AS events
FROM textpulse.events FINAL
WHERE created_at >= now() - INTERVAL 7 DAY
GROUP BY channel
ORDER BY events DESC, channel ASC
LIMIT 20;

