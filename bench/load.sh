#!/usr/bin/env bash
# Loads token-service and the standard-library floor (bench/floor) with the same POST /token on
# loopback and prints both and their ratios. Not part of the test command: it takes about a minute
# and a half and wants a quiet machine. Flags go to bench/load, e.g. bench/load.sh -rounds 5.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
exec go run ./bench/load "$@"
