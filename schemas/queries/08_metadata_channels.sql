-- Events per metadata channel over the last 7 days: the string at the
-- metadata path channel (empty when absent), with how many of them carry a
-- metadata ticket.
SELECT
{{- if .MetadataJSON}}
    ifNull(toString(metadata.channel), '') AS channel,
    countIf(metadata.ticket IS NOT NULL) AS with_ticket,
{{- else if .Modern}}
    JSONExtractString(metadata, 'channel') AS channel,
    countIf(JSONHas(metadata, 'ticket')) AS with_ticket,
{{- else}}
    visitParamExtractString(metadata, 'channel') AS channel,
    countIf(visitParamHas(metadata, 'ticket')) AS with_ticket,
{{- end}}
    count() AS events
FROM {{.Database}}.{{.Table}} FINAL
WHERE created_at >= now() - INTERVAL 7 DAY
GROUP BY channel
ORDER BY events DESC, channel ASC
LIMIT 20
