#!/usr/bin/env bash
# End-to-end demo on local defaults: produce sample events to the default
# topic, plus a handful of obvious texts, run the consumer with the embedding
# stage against the bundled OpenAI-compatible simulator and the emotion and
# sentiment stages on the bundled MiniLM classifiers (ONNX Runtime, CPU),
# until every event is in ClickHouse (or dead-lettered), stop it gracefully
# and show what landed. Expects `make services tools build`.
#
#   scripts/demo.sh [COUNT]    (default 2000 events, 2% malformed; the two
#                              local models take about 20 ms a text each on
#                              a 2-core CPU)
#
# It runs on the modern ClickHouse (26.9, the clickhouse-modern service);
# TEXTPULSE_DEMO_CLICKHOUSE=legacy runs it on Debian's 18.16 instead.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
# shellcheck source=SCRIPTDIR/env.sh
source scripts/env.sh
count="${1:-2000}"
topic=textpulse.events
case "${TEXTPULSE_DEMO_CLICKHOUSE:-modern}" in
  modern) ch_port=19000 ;;
  legacy) ch_port=9000 ;;
  *) echo "TEXTPULSE_DEMO_CLICKHOUSE=${TEXTPULSE_DEMO_CLICKHOUSE}: want modern or legacy" >&2; exit 2 ;;
esac
export TEXTPULSE_CLICKHOUSE_ADDR="127.0.0.1:${ch_port}"
ch() { clickhouse-client --host 127.0.0.1 --port "${ch_port}" -q "$1"; }
rows() { ch "SELECT count() FROM textpulse.events FINAL" 2>/dev/null || echo 0; }

echo "==> migrating ClickHouse tables on ${TEXTPULSE_CLICKHOUSE_ADDR} ($(ch 'SELECT version()'))"
bin/consumer migrate --log.format text

before="$(rows)"
echo "==> producing ${count} events to ${topic} (2% malformed)"
summary="$(bin/loadgen --topic "${topic}" --count "${count}" --partitions 6 --malformed-share 0.02 --json-summary)"
echo "    ${summary}"
valid="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["valid"])' "${summary}")"
run_id="demo-$(date +%s)"
obvious=(
  "I am so happy, we won the championship tonight! 🎉"
  "This is outrageous, they cancelled my flight again and nobody will help. I'm furious"
  "There was a dead rat in the kitchen of that restaurant, disgusting"
  "I'm terrified, someone keeps trying to open my front door"
  "My grandfather passed away this morning. I miss him so much"
  "Wait, what? She's moving to Japan next week?! I had no idea"
  "The meeting has been moved to room 3B at 10am on Thursday"
)
echo "==> producing ${#obvious[@]} obvious texts (event ids ${run_id}-N)"
for i in "${!obvious[@]}"; do
  python3 -c 'import json,sys; print(json.dumps({"id": sys.argv[1], "text": sys.argv[2], "source": "demo", "lang": "en"}, ensure_ascii=False))' "${run_id}-${i}" "${obvious[${i}]}"
done | scripts/kafka-run-class.sh org.apache.kafka.tools.ConsoleProducer --bootstrap-server 127.0.0.1:9092 --topic "${topic}" >/dev/null
want=$((before + valid + ${#obvious[@]}))

echo "==> starting the OpenAI-compatible simulator on 127.0.0.1:8089"
bin/openaisim --listen 127.0.0.1:8089 --chat-latency 200ms --embeddings-latency 100ms >/dev/null 2>&1 &
sim=$!
stages=()
stages+=("--stages.embedding.enabled" "--stages.embedding.base_url" "http://127.0.0.1:8089/v1" "--stages.embedding.api_key" "demo")
stages+=("--stages.emotion.enabled" "--stages.emotion.model_dir" "${TEXTPULSE_TEST_MODELS}/minilm-emotion" "--stages.emotion.max_length" "64")
stages+=("--stages.sentiment.enabled" "--stages.sentiment.provider" "local" "--stages.sentiment.local.model_dir" "${TEXTPULSE_TEST_MODELS}/minilm-sentiment" "--stages.sentiment.local.max_length" "64")

echo "==> running the consumer until ${want} rows are stored"
log="$(mktemp)"
bin/consumer run --log.format text --http.listen 127.0.0.1:9464 "${stages[@]}" --stages.embedding.dimensions 256 >"${log}" 2>&1 &
pid=$!
trap 'kill "${pid}" "${sim}" 2>/dev/null || true' EXIT
deadline=$((SECONDS + 300))
while :; do
  n="$(rows)"
  printf '\r    %s rows' "${n}"
  [[ "${n}" -ge "${want}" ]] && break
  if ! kill -0 "${pid}" 2>/dev/null; then echo; cat "${log}"; echo "consumer exited early" >&2; exit 1; fi
  if ((SECONDS > deadline)); then echo; tail -50 "${log}"; echo "timed out" >&2; exit 1; fi
  sleep 1
done
echo
echo "==> metrics"
curl -fsS http://127.0.0.1:9464/metrics | grep -E '^textpulse_(records_consumed_total|records_written_total|dead_letters_total|sink_inserts_total|llm_requests_total|gpu_texts_total)' || true
echo "==> stopping the consumer (SIGTERM: drain, commit, leave the group)"
kill -TERM "${pid}"
wait "${pid}"
kill "${sim}" 2>/dev/null || true
trap - EXIT
grep -E 'level=(WARN|ERROR)' "${log}" | head -5 || true

echo "==> what the server guarantees (consumer check)"
bin/consumer check --log.format text 2>/dev/null | grep -E 'clickhouse|rows:' || true
echo "==> rows in ClickHouse"
ch "SELECT count() AS rows, uniqExact(kafka_topic, kafka_partition, kafka_offset) AS events FROM textpulse.events FINAL FORMAT PrettyCompact"
ch "SELECT kafka_partition, kafka_offset, source, lang, substring(text, 1, 60) AS text FROM textpulse.events ORDER BY kafka_timestamp DESC, kafka_offset DESC LIMIT 5 FORMAT PrettyCompact"
ch "SELECT lang, count() AS events FROM textpulse.events FINAL GROUP BY lang ORDER BY events DESC LIMIT 5 FORMAT PrettyCompact"
echo "==> the obvious texts: emotion and sentiment from the bundled MiniLM classifiers"
ch "SELECT substring(text, 1, 60) AS text, emotion_label AS emotion, round(arrayReduce('max', emotion_scores), 2) AS p, sentiment_label AS sentiment, round(sentiment_score, 2) AS score FROM textpulse.events FINAL WHERE event_id LIKE '${run_id}-%' ORDER BY event_id FORMAT PrettyCompact"
echo "==> sentiment by language (local MiniLM sentiment classifier)"
ch "SELECT lang, sentiment_label, count() AS events, round(avg(sentiment_score), 3) AS avg_score, any(length(embedding)) AS dims FROM textpulse.events FINAL WHERE sentiment_model != '' GROUP BY lang, sentiment_label ORDER BY lang, sentiment_label LIMIT 9 FORMAT PrettyCompact"
echo "==> emotions (local MiniLM emotion classifier; the generated texts are word salad, so their labels mean little)"
ch "SELECT emotion_label, count() AS events, any(emotion_model) AS model FROM textpulse.events FINAL WHERE emotion_model != '' GROUP BY emotion_label ORDER BY events DESC LIMIT 7 FORMAT PrettyCompact"
echo "==> per-minute rollup"
ch "SELECT minute, source, sum(events) AS events FROM textpulse.events_per_minute GROUP BY minute, source ORDER BY minute DESC, events DESC LIMIT 5 FORMAT PrettyCompact"
echo "demo done: ${valid} valid events stored; malformed ones are in ${topic}.dlq"
