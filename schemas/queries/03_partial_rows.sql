-- Partial rows per day over the last 7 days: the share of rows written without
-- the result of some enrichment stage, and how often each stage failed, as a
-- tuple of (stages, failure counts).
{{- if .Modern}}
SELECT
    toDate(kafka_timestamp) AS day,
    count() AS events,
    countIf(status = 'partial') AS partial_events,
    round(partial_events / events, 4) AS partial_share,
    sumMap(failed_stages, arrayMap(s -> toUInt64(1), failed_stages)) AS failed_stage_counts
FROM {{.Database}}.{{.Table}} FINAL
WHERE kafka_timestamp >= toStartOfDay(now() - INTERVAL 7 DAY)
GROUP BY day
ORDER BY day ASC
{{- else}}
{{- /* Legacy servers have no sumMap over String keys, so the day's failed
stages are collected and counted per distinct stage. */}}
SELECT day, events, partial_events, partial_share, failed_stage_counts
FROM
(
    SELECT
        toDate(kafka_timestamp) AS day,
        count() AS events,
        countIf(status = 'partial') AS partial_events,
        round(partial_events / events, 4) AS partial_share,
        arraySort(groupUniqArrayArray(failed_stages)) AS stages,
        groupArrayArray(failed_stages) AS all_stages,
        (stages, arrayMap(s -> toUInt64(countEqual(all_stages, s)), stages)) AS failed_stage_counts
    FROM {{.Database}}.{{.Table}} FINAL
    WHERE kafka_timestamp >= toStartOfDay(now() - INTERVAL 7 DAY)
    GROUP BY day
)
ORDER BY day ASC
{{- end}}
