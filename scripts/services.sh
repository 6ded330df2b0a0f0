#!/usr/bin/env bash
# Local test services on 127.0.0.1, everything under .local/ (git-ignored).
#
#   scripts/services.sh {install|start|stop|restart|status} [kafka|clickhouse|clickhouse-modern|all]
#
#   kafka       Apache Kafka 4 (KRaft, single node) from Maven Central jars
#               broker 127.0.0.1:9092, controller 127.0.0.1:9093
#               pid .local/kafka/kafka.pid, logs .local/kafka/logs/
#   clickhouse  Debian's clickhouse-server, config from deploy/clickhouse
#               native 127.0.0.1:9000, http 127.0.0.1:8123
#               pid .local/clickhouse/clickhouse.pid, logs .local/clickhouse/log/
#   clickhouse-modern
#               ClickHouse 26.9 from PyPI chdb-core (scripts/lib/chmodern_server.py),
#               config from deploy/clickhouse-modern
#               native 127.0.0.1:19000, http 127.0.0.1:18123
#               pid .local/clickhouse-modern/server.pid, logs .local/clickhouse-modern/log/
#   install all also puts ZooKeeper jars in .local/zookeeper/libs for the
#   tests that start a ClickHouse cluster of their own
#
# Every action is idempotent: install skips what is present, start leaves a
# running service alone (and waits until it answers), stop is a no-op when
# nothing runs. status exits 0 only if every selected service is up.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/kafka.sh
source "${REPO_ROOT}/scripts/lib/kafka.sh"
# shellcheck source=SCRIPTDIR/lib/clickhouse.sh
source "${REPO_ROOT}/scripts/lib/clickhouse.sh"
# shellcheck source=SCRIPTDIR/lib/zookeeper.sh
source "${REPO_ROOT}/scripts/lib/zookeeper.sh"
# shellcheck source=SCRIPTDIR/lib/chmodern.sh
source "${REPO_ROOT}/scripts/lib/chmodern.sh"

usage() {
  sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

action="${1:-}"
target="${2:-all}"
[[ -n "${action}" ]] || usage
case "${target}" in
  kafka) services=(kafka) ;;
  clickhouse) services=(clickhouse) ;;
  clickhouse-modern) services=(clickhouse-modern) ;;
  all) services=(kafka clickhouse clickhouse-modern) ;;
  *) echo "unknown service: ${target}" >&2; usage ;;
esac

mkdir -p "${LOCAL_DIR}"

fn_for() { # service action -> function name
  case "$1" in
    kafka) printf 'kafka_%s' "$2" ;;
    clickhouse) printf 'ch_%s' "$2" ;;
    clickhouse-modern) printf 'chm_%s' "$2" ;;
  esac
}

# Runs "service action" under an exclusive per-service lock, so concurrent
# callers (e.g. test packages running in parallel that restart ClickHouse)
# do not race. fd 9 holds the lock; the launch commands close it so the
# servers do not inherit it.
run_locked() {
  local svc="$1" act="$2"
  (
    flock -w "${SERVICES_LOCK_TIMEOUT:-600}" 9 || die "${svc}: timed out waiting for ${LOCAL_DIR}/.${svc}.lock"
    "$(fn_for "${svc}" "${act}")"
  ) 9>"${LOCAL_DIR}/.${svc}.lock"
}

case "${action}" in
  install | start)
    for s in "${services[@]}"; do run_locked "${s}" "${action}"; done
    # ZooKeeper jars for the ClickHouse cluster tests (no shared server).
    if [[ "${action}" == install && "${target}" == all ]]; then zk_install; fi
    ;;
  stop)
    # Reverse order of start.
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do run_locked "${services[i]}" stop; done
    ;;
  restart)
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do run_locked "${services[i]}" stop; done
    for s in "${services[@]}"; do run_locked "${s}" start; done
    ;;
  status)
    rc=0
    for s in "${services[@]}"; do "$(fn_for "${s}" status)" || rc=3; done
    exit "${rc}"
    ;;
  -h | --help | help) usage ;;
  *) echo "unknown action: ${action}" >&2; usage ;;
esac
