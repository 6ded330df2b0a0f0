# shellcheck shell=bash
# Local ClickHouse server (Debian's clickhouse-server package) run without
# systemd/init.d, with the config in deploy/clickhouse. Sourced by
# scripts/services.sh; needs common.sh.

CH_DEPLOY_DIR="${REPO_ROOT}/deploy/clickhouse"
CH_HOME="${LOCAL_DIR}/clickhouse"
CH_ETC="${CH_HOME}/etc"
CH_LOGS="${CH_HOME}/log"
CH_PIDFILE="${CH_HOME}/clickhouse.pid"
CH_HOST=127.0.0.1
CH_TCP_PORT=9000
CH_HTTP_PORT=8123
CH_MARKER=clickhouse-server
CH_START_TIMEOUT="${CH_START_TIMEOUT:-60}"
CH_PACKAGES=(clickhouse-server clickhouse-client tzdata)

ch_server_bin() {
  local b
  for b in "$(command -v clickhouse-server || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
    [[ -n "${b}" && -x "${b}" ]] && { printf '%s\n' "${b}"; return 0; }
  done
  return 1
}

ch_client() {
  clickhouse-client --host "${CH_HOST}" --port "${CH_TCP_PORT}" --user default "$@"
}

ch_installed() {
  ch_server_bin >/dev/null && have clickhouse-client
}

ch_install() {
  log "clickhouse: install"
  if ch_installed; then
    info "already installed ($(ch_server_bin), clickhouse-client $(clickhouse-client --version 2>/dev/null | grep -o '[0-9][0-9]*\(\.[0-9][0-9]*\)*' | head -n1))"
    return 0
  fi
  # The package's postinst runs "invoke-rc.d clickhouse-server start", which
  # would start a second server with /etc/clickhouse-server on the same ports
  # (or fail the install where no init system runs). A policy-rc.d that
  # answers 101 tells invoke-rc.d not to start anything during the install.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e "${policy}" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"${policy}"
    chmod 755 "${policy}"
    added_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  local rc=0
  (apt_install "${CH_PACKAGES[@]}") || rc=$?
  if ((added_policy)); then
    rm -f "${policy}"
    trap - EXIT
  fi
  ((rc == 0)) || die "clickhouse: package install failed"
  ch_installed || die "clickhouse: clickhouse-server/clickhouse-client not found after install"
  info "installed $(clickhouse-client --version 2>/dev/null | head -n1)"
}

ch_pid() { read_live_pid "${CH_PIDFILE}" "${CH_MARKER}"; }

ch_render_config() {
  mkdir -p "${CH_ETC}" "${CH_LOGS}" "${CH_HOME}/data" "${CH_HOME}/tmp" \
    "${CH_HOME}/user_files" "${CH_HOME}/format_schemas"
  sed -e "s|@CH_DIR@|${CH_HOME}|g" "${CH_DEPLOY_DIR}/config.xml" >"${CH_ETC}/config.xml.tmp"
  mv "${CH_ETC}/config.xml.tmp" "${CH_ETC}/config.xml"
  cp "${CH_DEPLOY_DIR}/users.xml" "${CH_ETC}/users.xml"
}

# clickhouse-client fails fast on a closed port, so no separate TCP probe
# (a bare connect/close logs "Client has not sent any data" on the server).
ch_ready() {
  timeout 10 clickhouse-client --host "${CH_HOST}" --port "${CH_TCP_PORT}" -q 'SELECT 1' >/dev/null 2>&1
}

ch_start() {
  log "clickhouse: start"
  ch_installed || ch_install
  local pid bin
  if pid="$(ch_pid)"; then
    info "already running (pid ${pid})"
  else
    rm -f "${CH_PIDFILE}"
    port_open "${CH_HOST}" "${CH_TCP_PORT}" &&
      die "clickhouse: ${CH_HOST}:${CH_TCP_PORT} is already in use by a process not started from ${CH_PIDFILE} (a server started by the package's init script? stop it with: /etc/init.d/clickhouse-server stop)"
    port_open "${CH_HOST}" "${CH_HTTP_PORT}" &&
      die "clickhouse: ${CH_HOST}:${CH_HTTP_PORT} is already in use"
    ch_render_config
    bin="$(ch_server_bin)"
    # Runs in the foreground of its own session (no --daemon): the pid we
    # record is the server itself. stdout/stderr only carry startup errors;
    # the server log is ${CH_LOGS}/clickhouse-server.log.
    (cd "${CH_HOME}" && exec setsid nohup "${bin}" --config-file="${CH_ETC}/config.xml" \
      </dev/null >"${CH_LOGS}/stdout.log" 2>&1 9>&-) &
    pid=$!
    printf '%s\n' "${pid}" >"${CH_PIDFILE}"
    info "started pid ${pid}; waiting for ${CH_HOST}:${CH_TCP_PORT} (up to ${CH_START_TIMEOUT}s)"
  fi
  local deadline=$((SECONDS + CH_START_TIMEOUT))
  until ch_ready; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      tail -n 30 "${CH_LOGS}/stdout.log" "${CH_LOGS}/clickhouse-server.err.log" >&2 2>/dev/null || true
      rm -f "${CH_PIDFILE}"
      die "clickhouse: server exited during startup (logs: ${CH_LOGS})"
    fi
    ((SECONDS < deadline)) || die "clickhouse: server not ready after ${CH_START_TIMEOUT}s (logs: ${CH_LOGS})"
    sleep 0.5
  done
  info "ready on ${CH_HOST}:${CH_TCP_PORT} (http ${CH_HTTP_PORT}), version $(ch_client -q 'SELECT version()'), pid ${pid}"
}

ch_stop() {
  log "clickhouse: stop"
  local pid
  if pid="$(ch_pid)"; then
    stop_pid "${pid}" clickhouse "${CH_STOP_TIMEOUT:-60}"
    info "stopped (pid ${pid})"
  else
    info "not running"
    port_open "${CH_HOST}" "${CH_TCP_PORT}" &&
      warn "something else is listening on ${CH_HOST}:${CH_TCP_PORT} (not started by this script)"
  fi
  rm -f "${CH_PIDFILE}"
}

ch_status() {
  local pid
  if pid="$(ch_pid)"; then
    if ch_ready; then
      printf 'clickhouse: running  pid %s  tcp %s:%s http %s:%s  log %s\n' \
        "${pid}" "${CH_HOST}" "${CH_TCP_PORT}" "${CH_HOST}" "${CH_HTTP_PORT}" "${CH_LOGS}/clickhouse-server.log"
      return 0
    fi
    printf 'clickhouse: starting pid %s  (%s:%s not answering queries yet)\n' "${pid}" "${CH_HOST}" "${CH_TCP_PORT}"
    return 1
  fi
  printf 'clickhouse: stopped\n'
  return 3
}
