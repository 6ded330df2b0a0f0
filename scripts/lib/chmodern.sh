# shellcheck shell=bash
# Local modern ClickHouse (26.9) from PyPI chdb-core, served over the native
# and HTTP protocols by scripts/lib/chmodern_server.py with the config in
# deploy/clickhouse-modern. Sourced by scripts/services.sh; needs common.sh.
# The Python environment is the project's venv (scripts/tools.sh venv).

CHM_DEPLOY_DIR="${REPO_ROOT}/deploy/clickhouse-modern"
CHM_HOME="${LOCAL_DIR}/clickhouse-modern"
CHM_LOGS="${CHM_HOME}/log"
CHM_PIDFILE="${CHM_HOME}/server.pid"
CHM_HOST=127.0.0.1
CHM_TCP_PORT=19000
CHM_HTTP_PORT=18123
CHM_MARKER=chmodern_server.py
CHM_PYTHON="${LOCAL_DIR}/venv/bin/python"
CHM_START_TIMEOUT="${CHM_START_TIMEOUT:-60}"

chm_installed() {
  [[ -x "${CHM_PYTHON}" ]] && "${CHM_PYTHON}" -c 'from chdb import _chdb' 2>/dev/null && have clickhouse-client
}

chm_install() {
  log "clickhouse-modern: install"
  if chm_installed; then
    info "already installed (chdb engine $("${CHM_PYTHON}" -c 'import chdb; print(chdb.engine_version)'))"
    return 0
  fi
  # The venv (with chdb-core) and, for the readiness probe, clickhouse-client.
  "${REPO_ROOT}/scripts/tools.sh" venv
  have clickhouse-client || apt_install clickhouse-client
  chm_installed || die "clickhouse-modern: chdb or clickhouse-client missing after install"
}

chm_pid() { read_live_pid "${CHM_PIDFILE}" "${CHM_MARKER}"; }

chm_ready() {
  timeout 10 clickhouse-client --host "${CHM_HOST}" --port "${CHM_TCP_PORT}" -q 'SELECT 1' >/dev/null 2>&1
}

chm_start() {
  log "clickhouse-modern: start"
  chm_installed || chm_install
  local pid
  if pid="$(chm_pid)"; then
    info "already running (pid ${pid})"
  else
    rm -f "${CHM_PIDFILE}"
    port_open "${CHM_HOST}" "${CHM_TCP_PORT}" && die "clickhouse-modern: ${CHM_HOST}:${CHM_TCP_PORT} is already in use"
    port_open "${CHM_HOST}" "${CHM_HTTP_PORT}" && die "clickhouse-modern: ${CHM_HOST}:${CHM_HTTP_PORT} is already in use"
    mkdir -p "${CHM_LOGS}" "${CHM_HOME}/data"
    sed -e "s|@CHM_DIR@|${CHM_HOME}|g" "${CHM_DEPLOY_DIR}/config.xml" >"${CHM_HOME}/config.xml.tmp"
    mv "${CHM_HOME}/config.xml.tmp" "${CHM_HOME}/config.xml"
    (exec setsid nohup "${CHM_PYTHON}" "${REPO_ROOT}/scripts/lib/chmodern_server.py" "${CHM_HOME}" "${CHM_HOME}/data" \
      </dev/null >"${CHM_LOGS}/stdout.log" 2>&1 9>&-) &
    pid=$!
    printf '%s\n' "${pid}" >"${CHM_PIDFILE}"
    info "started pid ${pid}; waiting for ${CHM_HOST}:${CHM_TCP_PORT} (up to ${CHM_START_TIMEOUT}s)"
  fi
  local deadline=$((SECONDS + CHM_START_TIMEOUT))
  until chm_ready; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      tail -n 30 "${CHM_LOGS}/stdout.log" "${CHM_LOGS}/clickhouse-server.err.log" >&2 2>/dev/null || true
      rm -f "${CHM_PIDFILE}"
      die "clickhouse-modern: server exited during startup (logs: ${CHM_LOGS})"
    fi
    ((SECONDS < deadline)) || die "clickhouse-modern: server not ready after ${CHM_START_TIMEOUT}s (logs: ${CHM_LOGS})"
    sleep 0.5
  done
  info "ready on ${CHM_HOST}:${CHM_TCP_PORT} (http ${CHM_HTTP_PORT}), version $(timeout 10 clickhouse-client --host "${CHM_HOST}" --port "${CHM_TCP_PORT}" -q 'SELECT version()'), pid ${pid}"
}

chm_stop() {
  log "clickhouse-modern: stop"
  local pid
  if pid="$(chm_pid)"; then
    stop_pid "${pid}" clickhouse-modern "${CHM_STOP_TIMEOUT:-30}"
    info "stopped (pid ${pid})"
  else
    info "not running"
    port_open "${CHM_HOST}" "${CHM_TCP_PORT}" &&
      warn "something else is listening on ${CHM_HOST}:${CHM_TCP_PORT} (not started by this script)"
  fi
  rm -f "${CHM_PIDFILE}"
}

chm_status() {
  local pid
  if pid="$(chm_pid)"; then
    if chm_ready; then
      printf 'clickhouse-modern: running  pid %s  tcp %s:%s http %s:%s  log %s\n' \
        "${pid}" "${CHM_HOST}" "${CHM_TCP_PORT}" "${CHM_HOST}" "${CHM_HTTP_PORT}" "${CHM_LOGS}/clickhouse-server.log"
      return 0
    fi
    printf 'clickhouse-modern: starting pid %s  (%s:%s not answering queries yet)\n' "${pid}" "${CHM_HOST}" "${CHM_TCP_PORT}"
    return 1
  fi
  printf 'clickhouse-modern: stopped\n'
  return 3
}
