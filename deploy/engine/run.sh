#!/usr/bin/env bash
# The Dockerfile and docker-compose.yml, built and run unchanged by a real Docker engine (Debian's
# docker.io and docker-compose), with stand-ins for the base images since nothing can be pulled.
# dockerd runs in a network namespace this script creates, so its bridges, addresses, iptables
# rules and published ports exist only there; it uses a socket of its own and a data root cached
# in $TOKEN_SERVICE_ENGINE_STATE (default /var/cache/token-service-engine), so a second run reuses
# the stand-ins. Everything started is stopped by PID however the run ends. Needs root.
# Run by scripts/test; alone: deploy/engine/run.sh
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${TOKEN_SERVICE_ENGINE_STATE:-/var/cache/token-service-engine}
. "$REPO/deploy/engine/lib.sh"
. "$REPO/deploy/engine/standins.sh"
. "$REPO/deploy/engine/checks.sh"
exec 4>&2 # die writes here, so a failure inside a silenced wait still says why

echo "== container image and compose stack, built and run by a Docker engine"
[ "$(id -u)" = 0 ] || die "needs root: dockerd, unshare and debootstrap"
RUN_START=$SECONDS
WORK=""
NETNS_PID=""
NETNS_ID=""
COMPOSE_STARTED=""

install_tools() {
  local need=()
  command -v dockerd >/dev/null && [ -x /usr/bin/docker ] || need+=(docker.io) # with containerd, runc, iptables
  [ -x /usr/bin/docker-compose ] || need+=(docker-compose)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || need+=(redis-server redis-tools)
  [ -x /usr/bin/wget ] || need+=(wget)
  command -v curl >/dev/null || need+=(curl)
  command -v nsenter >/dev/null && command -v unshare >/dev/null || need+=(util-linux)
  command -v ip >/dev/null || need+=(iproute2)
  if [ ${#need[@]} -gt 0 ]; then
    echo "   installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

# start_engine: dockerd in a new network namespace (lo up, nothing else) and mount namespace, so
# its mounts vanish with it too. The docker CLI reaches it through the Unix socket, which is a
# file; what listens on the published ports is reached with nsenter (innet).
start_engine() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  flock -w 600 9 || die "another run has held $STATE/lock for 10 minutes"
  local stale
  stale=$(pgrep -f -- "--data-root $STATE/docker" || true)
  [ -z "$stale" ] || die "a dockerd of a run that was killed (pid $stale) still uses $STATE/docker: stop it first"
  WORK=$(mktemp -d /tmp/tse-engine.XXXXXX) # short: containerd's socket paths must stay under 108 bytes
  mkdir -p "$WORK/bin"
  ln -s /usr/bin/docker "$WORK/bin/docker" # Debian's client, the daemon's version (not /usr/local/bin's)
  PATH="$WORK/bin:$PATH"
  export DOCKER_HOST="unix://$WORK/docker.sock"
  echo '{}' >"$WORK/daemon.json"
  unshare --net --mount --propagation private \
    sh -c 'ip link set lo up && exec dockerd "$@"' dockerd \
    --host "$DOCKER_HOST" --data-root "$STATE/docker" --exec-root "$WORK/exec" \
    --pidfile "$WORK/dockerd.pid" --config-file "$WORK/daemon.json" \
    >"$WORK/dockerd.log" 2>&1 </dev/null 9>&- &
  NETNS_PID=$!
  wait_until 60 "dockerd answering on $DOCKER_HOST (log: $(tail -3 "$WORK/dockerd.log" 2>/dev/null))" engine_up
  NETNS_ID=$(readlink "/proc/$NETNS_PID/ns/net")
  [ "$NETNS_ID" != "$(readlink /proc/$$/ns/net)" ] || die "dockerd is not in a network namespace of its own"
  echo "   dockerd $(docker version -f '{{.Server.Version}}') pid $NETNS_PID in $NETNS_ID"
  # Containers a run that was killed outright left behind.
  local old
  old=$(docker ps -aq)
  [ -z "$old" ] || docker rm -f $old >/dev/null
}

engine_up() {
  kill -0 "$NETNS_PID" 2>/dev/null || die "dockerd exited: $(tail -5 "$WORK/dockerd.log")"
  docker version >/dev/null
}

# cleanup: the stack, the containers, dockerd, and whatever is left in its namespace (containerd,
# shims), each by PID; then the run's directory. The cache stays.
cleanup() {
  local rc=$?
  set +e
  if [ -n "$NETNS_PID" ] && kill -0 "$NETNS_PID" 2>/dev/null; then
    [ -z "$COMPOSE_STARTED" ] || compose down -v --remove-orphans >/dev/null 2>&1
    local ids
    ids=$(timeout 30 docker ps -aq 2>/dev/null)
    [ -z "$ids" ] || timeout 60 docker rm -f $ids >/dev/null 2>&1
    kill -TERM "$NETNS_PID"
    local i
    for i in $(seq 40); do kill -0 "$NETNS_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$NETNS_PID" 2>/dev/null
  fi
  if [ -n "$NETNS_ID" ]; then
    local p left
    for i in $(seq 20); do
      left=""
      for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$NETNS_ID" ] && left+=" ${p#/proc/}"
      done
      [ -n "$left" ] || break
      kill -KILL $left 2>/dev/null
      sleep 0.25
    done
    [ -z "$left" ] || echo "engine check: processes$left outlived cleanup" >&2
  fi
  [ -z "$WORK" ] || rm -rf "$WORK"
  print_timings
  echo "   container engine checks: $((SECONDS - RUN_START)) s in all, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stack_up() {
  COMPOSE_STARTED=1
  compose_up
}

stack_down() {
  compose down -v --remove-orphans >"$WORK/compose-down.log" 2>&1 || { cat "$WORK/compose-down.log"; die "docker-compose down"; }
  COMPOSE_STARTED=""
  docker image prune -f >/dev/null # what earlier builds left untagged; the stand-ins stay
}

step "install docker.io, docker-compose, debootstrap when missing" install_tools
step "start dockerd in a network namespace of its own" start_engine
step "stand-in golang builder" standin_golang
step "stand-in distroless runtime" standin_distroless
step "stand-in livekit-server" standin_livekit
step "stand-in redis" standin_redis
step "docker build (the Dockerfile, unchanged)" build_image
step "image size" image_size
step "image: version stamped by --build-arg VERSION" check_version
step "image: production defaults, no credentials: exit 2" check_no_credentials
step "image: HEALTHCHECK healthy as uid 65532, --read-only" check_healthy
step "image: SIGTERM during a request" check_sigterm
step "compose up (the compose file, unchanged)" stack_up
step "compose: depends_on honoured" check_depends_on
step "compose: livekit, redis, token-service healthy" compose_healthy
step "compose: token accepted by LiveKit, rate limit in Redis" check_stack
step "compose down" stack_down
echo "== container engine: all checks passed"
