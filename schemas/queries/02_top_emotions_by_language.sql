-- Top emotions by language in the last day: how often each emotion was the
-- strongest one and its mean score, five emotions per language.
SELECT
    lang,
    emotion_label,
    count() AS events,
    round(avg(emotion_scores[indexOf(emotion_labels, emotion_label)]), 4) AS avg_score
FROM {{.Database}}.{{.Table}} FINAL
WHERE created_at >= now() - INTERVAL 1 DAY
    AND emotion_label != ''
GROUP BY lang, emotion_label
ORDER BY lang ASC, events DESC, emotion_label ASC
LIMIT 5 BY lang
