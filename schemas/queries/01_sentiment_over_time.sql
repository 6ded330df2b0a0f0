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
FROM {{.Database}}.{{.Table}}_per_minute
WHERE minute >= toStartOfHour(now() - INTERVAL 7 DAY)
GROUP BY hour, source, sentiment_label
ORDER BY hour ASC, source ASC, events DESC
