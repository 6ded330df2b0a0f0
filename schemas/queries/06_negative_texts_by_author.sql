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
FROM {{.Database}}.{{.Table}} FINAL
ALL INNER JOIN
(
    SELECT author, count() AS negative_texts
    FROM {{.Database}}.{{.Table}} FINAL
    WHERE author != ''
        AND lower(sentiment_label) LIKE 'neg%'
        AND created_at >= now() - INTERVAL 7 DAY
    GROUP BY author
) AS negative USING author
WHERE author != ''
    AND lower(sentiment_label) LIKE 'neg%'
    AND created_at >= now() - INTERVAL 7 DAY
ORDER BY negative_texts DESC, author ASC, sentiment_score DESC, event_id ASC
LIMIT 3 BY author
