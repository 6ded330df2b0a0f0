-- Nearest neighbours of one event: the 10 texts whose embeddings are closest
-- by cosine distance. Embeddings are L2-normalised, so the cosine similarity
-- is the dot product. Put the event id in place of __EVENT_ID__ (twice).
WITH
    (
        SELECT any(embedding)
        FROM {{.Database}}.{{.Table}}
        WHERE event_id = '__EVENT_ID__' AND length(embedding) > 0
    ) AS target
SELECT
    event_id,
    source,
    lang,
    round(1 - arraySum(arrayMap((x, y) -> x * y, embedding, target)), 6) AS cosine_distance,
    substring(text, 1, 200) AS text_preview
FROM {{.Database}}.{{.Table}} FINAL
WHERE event_id != '__EVENT_ID__'
    AND length(embedding) = length(target)
    AND length(target) > 0
ORDER BY cosine_distance ASC, event_id ASC
LIMIT 10
