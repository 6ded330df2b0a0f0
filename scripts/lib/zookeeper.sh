# shellcheck shell=bash
# ZooKeeper jars from Maven Central, for the tests that start a replicated,
# sharded ClickHouse cluster of their own; no shared ZooKeeper runs.
# Sourced by scripts/services.sh; needs common.sh and kafka.sh (for Java
# and Maven).

ZK_DEPLOY_DIR="${REPO_ROOT}/deploy/zookeeper"
ZK_HOME="${LOCAL_DIR}/zookeeper"
ZK_LIBS="${ZK_HOME}/libs"
ZK_STAMP="${ZK_HOME}/libs.sha256"

zk_installed() {
  [[ -f "${ZK_STAMP}" ]] &&
    [[ "$(cat "${ZK_STAMP}")" == "$(files_hash "${ZK_DEPLOY_DIR}/pom.xml")" ]] &&
    compgen -G "${ZK_LIBS}/zookeeper-[0-9]*.jar" >/dev/null
}

zk_install() {
  log "zookeeper: install (jars for the cluster tests)"
  kafka_ensure_toolchain
  if zk_installed; then
    info "already installed ($(find "${ZK_LIBS}" -name '*.jar' | wc -l) jars in ${ZK_LIBS})"
    return 0
  fi
  mkdir -p "${ZK_HOME}"
  local tmp="${ZK_HOME}/libs.new"
  rm -rf "${tmp}"
  mvn -q -B -Dstyle.color=never -f "${ZK_DEPLOY_DIR}/pom.xml" dependency:copy-dependencies \
    -Dzookeeper.libs.dir="${tmp}" >"${ZK_HOME}/mvn.log" 2>&1 \
    || { tail -n 40 "${ZK_HOME}/mvn.log" >&2; die "zookeeper: mvn dependency:copy-dependencies failed (log: ${ZK_HOME}/mvn.log)"; }
  compgen -G "${tmp}/zookeeper-[0-9]*.jar" >/dev/null || die "zookeeper: zookeeper jar missing after mvn run"
  rm -rf "${ZK_LIBS}"
  mv "${tmp}" "${ZK_LIBS}"
  files_hash "${ZK_DEPLOY_DIR}/pom.xml" >"${ZK_STAMP}"
  info "installed $(find "${ZK_LIBS}" -name '*.jar' | wc -l) jars ($(basename "$(compgen -G "${ZK_LIBS}/zookeeper-[0-9]*.jar")"))"
}
