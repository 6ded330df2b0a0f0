-- Nearest neighbours of one event: the 10 texts whose embeddings are closest
{{- if .VectorIndex}}
-- by {{.VectorDistance}}, found through the vector_similarity index of the
-- embeddings table (approximate, HNSW). The inner query orders by the distance
-- alone with a constant limit, the form the index serves; outside, the event
-- itself is dropped and the distance computed exactly from the stored vectors
-- (the index's own distance is approximate). Put the event id in place of
-- __EVENT_ID__ (twice).
WITH
    (
        SELECT any(embedding)
        FROM {{.Database}}.{{.Table}}_embeddings
        WHERE event_id = '__EVENT_ID__'
    ) AS target
SELECT
    n.event_id AS event_id,
    n.source AS source,
    n.lang AS lang,
    round({{.VectorDistance}}(n.embedding, target), 6) AS {{if eq .VectorDistance "L2Distance"}}l2_distance{{else}}cosine_distance{{end}}
FROM
    (
        SELECT event_id, source, lang, embedding
        FROM {{.Database}}.{{.Table}}_embeddings
        ORDER BY {{.VectorDistance}}(embedding, target) ASC
        LIMIT 11
    ) AS n
WHERE n.event_id != '__EVENT_ID__'
ORDER BY {{if eq .VectorDistance "L2Distance"}}l2_distance{{else}}cosine_distance{{end}} ASC, event_id ASC
LIMIT 10
{{- else}}
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
{{- end}}
