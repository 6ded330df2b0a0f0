# shellcheck shell=bash
# Single-node Kafka (KRaft) run straight from Maven Central jars.
# Sourced by scripts/services.sh and scripts/kafka-run-class.sh; needs common.sh.

KAFKA_DEPLOY_DIR="${REPO_ROOT}/deploy/kafka"
KAFKA_HOME="${LOCAL_DIR}/kafka"
KAFKA_LIBS="${KAFKA_HOME}/libs"
KAFKA_DATA="${KAFKA_HOME}/data"
KAFKA_LOGS="${KAFKA_HOME}/logs"
KAFKA_CONFIG="${KAFKA_HOME}/server.properties"
KAFKA_PIDFILE="${KAFKA_HOME}/kafka.pid"
KAFKA_STAMP="${KAFKA_HOME}/libs.sha256"
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_BOOTSTRAP="${KAFKA_HOST}:${KAFKA_PORT}"
KAFKA_MAIN=kafka.Kafka
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"

# Prints the path of a Java >= 17 (Kafka 4 needs it), or fails.
kafka_java() {
  local j major
  for j in "${JAVA_HOME:+${JAVA_HOME}/bin/java}" "$(command -v java || true)" /usr/lib/jvm/java-17-openjdk-*/bin/java; do
    [[ -n "${j}" && -x "${j}" ]] || continue
    major="$("${j}" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    [[ "${major}" =~ ^[0-9]+$ ]] && ((major >= 17)) && { printf '%s\n' "${j}"; return 0; }
  done
  return 1
}

kafka_ensure_toolchain() {
  if ! KAFKA_JAVA="$(kafka_java)"; then
    info "no Java >= 17 found; installing openjdk-17-jdk-headless"
    apt_install openjdk-17-jdk-headless
    KAFKA_JAVA="$(kafka_java)" || die "Java >= 17 still not found after install"
  fi
  have mvn || apt_install maven
}

kafka_installed() {
  [[ -f "${KAFKA_STAMP}" ]] &&
    [[ "$(cat "${KAFKA_STAMP}")" == "$(files_hash "${KAFKA_DEPLOY_DIR}/pom.xml")" ]] &&
    compgen -G "${KAFKA_LIBS}/kafka_2.13-*.jar" >/dev/null
}

kafka_install() {
  log "kafka: install"
  kafka_ensure_toolchain
  if kafka_installed; then
    info "already installed ($(find "${KAFKA_LIBS}" -name '*.jar' | wc -l) jars in ${KAFKA_LIBS})"
    return 0
  fi
  mkdir -p "${KAFKA_HOME}"
  local tmp="${KAFKA_HOME}/libs.new"
  rm -rf "${tmp}"
  info "resolving jars from Maven (cached in ~/.m2) -> ${KAFKA_LIBS}"
  mvn -q -B -Dstyle.color=never -f "${KAFKA_DEPLOY_DIR}/pom.xml" dependency:copy-dependencies \
    -Dkafka.libs.dir="${tmp}" >"${KAFKA_HOME}/mvn.log" 2>&1 \
    || { tail -n 40 "${KAFKA_HOME}/mvn.log" >&2; die "kafka: mvn dependency:copy-dependencies failed (log: ${KAFKA_HOME}/mvn.log)"; }
  compgen -G "${tmp}/kafka_2.13-*.jar" >/dev/null || die "kafka: kafka_2.13 jar missing after mvn run"
  rm -rf "${KAFKA_LIBS}"
  mv "${tmp}" "${KAFKA_LIBS}"
  files_hash "${KAFKA_DEPLOY_DIR}/pom.xml" >"${KAFKA_STAMP}"
  info "installed $(find "${KAFKA_LIBS}" -name '*.jar' | wc -l) jars ($(basename "$(compgen -G "${KAFKA_LIBS}/kafka_2.13-*.jar")"))"
}

# Builds the command line for a Kafka main class with the local classpath into
# the KAFKA_CMD array; tool logging goes to stderr at WARN.
kafka_class_cmd() {
  [[ -n "${KAFKA_JAVA:-}" ]] || KAFKA_JAVA="$(kafka_java)" || die "Java >= 17 not found (run: scripts/services.sh install kafka)"
  kafka_installed || die "kafka is not installed (run: scripts/services.sh install kafka)"
  local main="$1"; shift
  local -a heap
  read -r -a heap <<<"${KAFKA_TOOL_HEAP_OPTS:--Xmx512m}"
  KAFKA_CMD=("${KAFKA_JAVA}" "${heap[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=file:${KAFKA_DEPLOY_DIR}/tools-log4j2.xml"
    -cp "${KAFKA_LIBS}/*" "${main}" "$@")
}

kafka_run_class() {
  kafka_class_cmd "$@"
  "${KAFKA_CMD[@]}"
}

kafka_pid() { read_live_pid "${KAFKA_PIDFILE}" "${KAFKA_MAIN}"; }

kafka_render_config() {
  mkdir -p "${KAFKA_DATA}" "${KAFKA_LOGS}"
  sed -e "s|@KAFKA_DATA_DIR@|${KAFKA_DATA}|g" "${KAFKA_DEPLOY_DIR}/server.properties" >"${KAFKA_CONFIG}.tmp"
  mv "${KAFKA_CONFIG}.tmp" "${KAFKA_CONFIG}"
}

kafka_format() {
  [[ -f "${KAFKA_DATA}/meta.properties" ]] && return 0
  local cid
  if [[ -s "${KAFKA_HOME}/cluster.id" ]]; then
    cid="$(cat "${KAFKA_HOME}/cluster.id")"
  else
    cid="$(kafka_run_class kafka.tools.StorageTool random-uuid | tail -n1)"
    [[ -n "${cid}" ]] || die "kafka: could not generate a cluster id"
    printf '%s\n' "${cid}" >"${KAFKA_HOME}/cluster.id"
  fi
  info "formatting storage ${KAFKA_DATA} (cluster id ${cid})"
  kafka_run_class kafka.tools.StorageTool format --standalone --ignore-formatted \
    -t "${cid}" -c "${KAFKA_CONFIG}" >"${KAFKA_LOGS}/format.log" 2>&1 \
    || { cat "${KAFKA_LOGS}/format.log" >&2; die "kafka: storage format failed"; }
}

# Broker is ready when it answers a metadata request (topic list).
kafka_ready() {
  port_open "${KAFKA_HOST}" "${KAFKA_PORT}" || return 1
  kafka_class_cmd org.apache.kafka.tools.TopicCommand --bootstrap-server "${KAFKA_BOOTSTRAP}" --list
  timeout 30 "${KAFKA_CMD[@]}" >/dev/null 2>&1
}

kafka_start() {
  log "kafka: start"
  kafka_installed || kafka_install
  [[ -n "${KAFKA_JAVA:-}" ]] || KAFKA_JAVA="$(kafka_java)" || die "Java >= 17 not found (run: scripts/services.sh install kafka)"
  local pid
  if pid="$(kafka_pid)"; then
    info "already running (pid ${pid})"
  else
    rm -f "${KAFKA_PIDFILE}"
    port_open "${KAFKA_HOST}" "${KAFKA_PORT}" &&
      die "kafka: ${KAFKA_BOOTSTRAP} is already in use by a process not started from ${KAFKA_PIDFILE}"
    port_open "${KAFKA_HOST}" "${KAFKA_CONTROLLER_PORT}" &&
      die "kafka: controller port ${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT} is already in use"
    kafka_render_config
    kafka_format
    # Same JVM flags as bin/kafka-server-start.sh / kafka-run-class.sh, smaller heap.
    # shellcheck disable=SC2086
    setsid nohup "${KAFKA_JAVA}" ${KAFKA_HEAP_OPTS} \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
      -Dkafka.logs.dir="${KAFKA_LOGS}" \
      -Dlog4j2.configurationFile="file:${KAFKA_DEPLOY_DIR}/log4j2.xml" \
      -cp "${KAFKA_LIBS}/*" "${KAFKA_MAIN}" "${KAFKA_CONFIG}" \
      </dev/null >"${KAFKA_LOGS}/kafka.out" 2>&1 9>&- &
    pid=$!
    printf '%s\n' "${pid}" >"${KAFKA_PIDFILE}"
    info "started pid ${pid}; waiting for ${KAFKA_BOOTSTRAP} (up to ${KAFKA_START_TIMEOUT}s)"
  fi
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until kafka_ready; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      tail -n 30 "${KAFKA_LOGS}/kafka.out" "${KAFKA_LOGS}/server.log" >&2 2>/dev/null || true
      rm -f "${KAFKA_PIDFILE}"
      die "kafka: broker exited during startup (logs: ${KAFKA_LOGS})"
    fi
    ((SECONDS < deadline)) || die "kafka: broker not ready after ${KAFKA_START_TIMEOUT}s (logs: ${KAFKA_LOGS})"
    sleep 1
  done
  info "ready on ${KAFKA_BOOTSTRAP} (pid ${pid}, log ${KAFKA_LOGS}/server.log)"
}

kafka_stop() {
  log "kafka: stop"
  local pid
  if pid="$(kafka_pid)"; then
    stop_pid "${pid}" kafka "${KAFKA_STOP_TIMEOUT:-60}"
    info "stopped (pid ${pid})"
  else
    info "not running"
    port_open "${KAFKA_HOST}" "${KAFKA_PORT}" &&
      warn "something else is listening on ${KAFKA_BOOTSTRAP} (not started by this script)"
  fi
  rm -f "${KAFKA_PIDFILE}"
}

kafka_status() {
  local pid
  if pid="$(kafka_pid)"; then
    if port_open "${KAFKA_HOST}" "${KAFKA_PORT}"; then
      printf 'kafka:      running  pid %s  %s (controller %s:%s)  log %s\n' \
        "${pid}" "${KAFKA_BOOTSTRAP}" "${KAFKA_HOST}" "${KAFKA_CONTROLLER_PORT}" "${KAFKA_LOGS}/server.log"
      return 0
    fi
    printf 'kafka:      starting pid %s  (%s not accepting connections yet)\n' "${pid}" "${KAFKA_BOOTSTRAP}"
    return 1
  fi
  printf 'kafka:      stopped\n'
  return 3
}
