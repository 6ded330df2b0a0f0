#!/usr/bin/env bash
# Environment for tests and benchmarks against the local services started by
# scripts/services.sh. Either source it:
#
#   source scripts/env.sh
#
# or evaluate its output:
#
#   eval "$(scripts/env.sh)"

_tp_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_tp_env() {
  printf 'TEXTPULSE_TEST_KAFKA=%s\n' "127.0.0.1:9092"
  printf 'TEXTPULSE_TEST_CLICKHOUSE=%s\n' "127.0.0.1:9000"
  printf 'TEXTPULSE_TEST_CLICKHOUSE_HTTP=%s\n' "http://127.0.0.1:8123"
  printf 'TEXTPULSE_TEST_CLICKHOUSE_MODERN=%s\n' "127.0.0.1:19000"
  printf 'TEXTPULSE_TEST_CLICKHOUSE_MODERN_HTTP=%s\n' "http://127.0.0.1:18123"
  printf 'TEXTPULSE_TEST_CHDB_PYTHON=%s\n' "${_tp_root}/.local/venv/bin/python"
  printf 'TEXTPULSE_TEST_KAFKA_LIBS=%s\n' "${_tp_root}/.local/kafka/libs"
  printf 'TEXTPULSE_TEST_ZOOKEEPER_LIBS=%s\n' "${_tp_root}/.local/zookeeper/libs"
  printf 'TEXTPULSE_CLICKHOUSE_SCRIPT=%s\n' "${_tp_root}/scripts/services.sh"
  printf 'TEXTPULSE_ORT_LIB=%s\n' "${_tp_root}/.local/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/$(case "$(uname -m)" in aarch64 | arm64) echo arm64 ;; *) echo x64 ;; esac)/libonnxruntime.so.1"
  printf 'TEXTPULSE_TEST_MODELS=%s\n' "${_tp_root}/.local/models"
  printf 'TEXTPULSE_TEST_TOKENIZERS=%s\n' "${_tp_root}/.local/tokenizers"
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # Sourced: export into the calling shell, and put .local/bin on PATH.
  while IFS='=' read -r _tp_k _tp_v; do
    export "${_tp_k}=${_tp_v}"
  done < <(_tp_env)
  case ":${PATH}:" in
    *":${_tp_root}/.local/bin:"*) ;;
    *) export PATH="${_tp_root}/.local/bin:${PATH}" ;;
  esac
  unset _tp_k _tp_v _tp_root
  unset -f _tp_env
else
  # Executed: print shell-quoted export lines.
  set -euo pipefail
  while IFS='=' read -r k v; do
    printf 'export %s=%q\n' "${k}" "${v}"
  done < <(_tp_env)
  # shellcheck disable=SC2016 # ${PATH} is expanded by the shell that evaluates this line.
  printf 'export PATH=%q:"${PATH}"\n' "${_tp_root}/.local/bin"
fi
