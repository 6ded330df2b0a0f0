#!/usr/bin/env bash
# Validates docker-compose.yml with Debian's docker-compose (installed if
# missing). "config -q" parses and validates the file; no Docker engine is
# needed.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

log "docker-compose config check"
have docker-compose || apt_install docker-compose
cd "${REPO_ROOT}"
docker-compose -f docker-compose.yml config -q || die "docker-compose.yml is invalid"
[[ -f Dockerfile ]] || die "Dockerfile missing (docker-compose.yml builds the consumer from it)"
grep -q '^FROM .* AS build' Dockerfile || die "Dockerfile: build stage missing"
# docker-compose.yml builds these targets.
for target in consumer loadgen; do
  grep -q "^FROM .* AS ${target}\$" Dockerfile || die "Dockerfile: stage ${target} missing (docker-compose.yml builds it)"
done
info "docker-compose.yml OK ($(docker-compose version --short 2>/dev/null || echo docker-compose))"
