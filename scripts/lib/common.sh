# shellcheck shell=bash
# Shared helpers for the scripts in scripts/. Sourced, not executed.

# Repository root (scripts/lib/.. /..) and the git-ignored runtime folder.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL_DIR="${REPO_ROOT}/.local"
export REPO_ROOT LOCAL_DIR

log()  { printf '==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# sha256 of the given files, concatenated; used as install stamps.
files_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Prints the path of a Python 3.10 or later ($PYTHON first), or fails.
pick_python() {
  local p
  for p in "${PYTHON:-}" python3 /usr/bin/python3; do
    if [[ -z "${p}" ]] || ! have "${p}"; then continue; fi
    "${p}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null || continue
    printf '%s\n' "$(command -v "${p}")"
    return 0
  done
  return 1
}

# True if something accepts TCP connections on host:port.
port_open() {
  local host="$1" port="$2"
  timeout 2 bash -c "exec 3<>/dev/tcp/${host}/${port}" 2>/dev/null
}

# True if pid is alive and its command line contains the given marker
# (guards against a stale pid file pointing at a reused pid).
pid_matches() {
  local pid="$1" marker="$2"
  [[ -n "${pid}" && "${pid}" =~ ^[0-9]+$ ]] || return 1
  kill -0 "${pid}" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -qF -- "${marker}"
}

# Prints the pid from a pid file if that process is alive and matches marker.
read_live_pid() {
  local pidfile="$1" marker="$2" pid
  [[ -f "${pidfile}" ]] || return 1
  pid="$(tr -d '[:space:]' <"${pidfile}")"
  pid_matches "${pid}" "${marker}" || return 1
  printf '%s\n' "${pid}"
}

# Sends SIGTERM, waits up to timeout seconds, then SIGKILL.
stop_pid() {
  local pid="$1" name="$2" timeout="${3:-60}" i
  kill -TERM "${pid}" 2>/dev/null || return 0
  for ((i = 0; i < timeout * 5; i++)); do
    kill -0 "${pid}" 2>/dev/null || return 0
    sleep 0.2
  done
  warn "${name} (pid ${pid}) did not exit within ${timeout}s; sending SIGKILL"
  kill -KILL "${pid}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "${pid}" 2>/dev/null || return 0
    sleep 0.2
  done
  die "${name} (pid ${pid}) is still alive after SIGKILL"
}

# apt-get update at most once per script run, and only when needed.
_APT_UPDATED=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${p}")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ "$(id -u)" == 0 ]] || die "need root to apt-get install: ${missing[*]}"
  if ((_APT_UPDATED == 0)); then
    info "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    _APT_UPDATED=1
  fi
  info "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}
