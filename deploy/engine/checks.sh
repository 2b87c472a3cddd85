# What run.sh proves with the engine: the image from the unchanged Dockerfile, then the stack
# from the unchanged docker-compose.yml. Sourced by run.sh, which sets REPO, WORK, NETNS_PID.

IMAGE=token-service:engine-check
PROD_ENV=(-e LIVEKIT_API_KEY=APIprod -e LIVEKIT_API_SECRET=production-secret-0123456789abcdef-xyz
  -e LIVEKIT_WS_URL=wss://lk.example.com)

# innet CMD...: CMD in the engine's network namespace, where the published ports are.
innet() {
  nsenter --net="/proc/$NETNS_PID/ns/net" -- "$@"
}

health() {
  docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"
}

is_healthy() {
  [ "$(health "$1")" = healthy ]
}

build_image() {
  VERSION="engine-$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo local)"
  DOCKER_BUILDKIT=0 docker build --build-arg VERSION="$VERSION" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log"; die "docker build of the Dockerfile"; }
  tail -2 "$WORK/build.log" | sed 's/^/   /'
}

image_size() {
  local bytes
  bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE")
  echo "   image size: $((bytes / 1048576)).$((bytes % 1048576 * 10 / 1048576)) MiB ($bytes bytes)"
  [ "$bytes" -lt $((32 * 1048576)) ] || die "the image is over 32 MiB"
}

check_version() {
  local out
  out=$(docker run --rm "$IMAGE" version)
  echo "   $out"
  case $out in "token-service $VERSION "*) ;; *) die "version printed \"$out\", want token-service $VERSION" ;; esac
}

# Production defaults, no credentials: exit status 2 and a message naming the variables.
check_no_credentials() {
  local out rc=0
  out=$(docker run --rm "$IMAGE" 2>&1) || rc=$?
  [ "$rc" = 2 ] || die "with no credentials the image exited $rc, want 2: $out"
  local v
  for v in LIVEKIT_API_KEY LIVEKIT_API_SECRET; do
    grep -q "$v" <<<"$out" || die "with no credentials the message does not name $v: $out"
  done
  echo "   exit 2: $(head -c 300 <<<"$out")"
}

# Healthy by its own HEALTHCHECK, as uid 65532 on a read-only root filesystem.
check_healthy() {
  local t0=$SECONDS
  docker run -d --name tse-check --read-only -p 127.0.0.1:3101:3001 "${PROD_ENV[@]}" \
    -e SHUTDOWN_DELAY_SECONDS=1 -e SHUTDOWN_TIMEOUT_SECONDS=5 "$IMAGE" >/dev/null
  wait_until 60 "the image's HEALTHCHECK reaching healthy (now: $(health tse-check))" is_healthy tse-check
  local pid uids ro
  pid=$(docker inspect -f '{{.State.Pid}}' tse-check)
  uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
  [ "$uids" = "65532 65532 65532 65532" ] || die "the service runs as uids $uids, want 65532"
  ro=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' tse-check)
  [ "$ro" = true ] || die "the container's root filesystem is not read-only"
  echo "   healthy about $((SECONDS - t0)) s after start; uid 65532; read-only root filesystem"
}

# SIGTERM while a request's body is still arriving: the request is answered, the process exits 0
# within SHUTDOWN_DELAY_SECONDS + SHUTDOWN_TIMEOUT_SECONDS (1 + 5, set in check_healthy).
check_sigterm() {
  local body='{"room":"engine-check","identity":"alice"}'
  # Half the body, then the rest 3 s later: SIGTERM lands in between, and the listener closes
  # (after the 1 s delay) while the request is still being read.
  innet timeout 20 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/3101
    printf "POST /token HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" "${#1}" "${1:0:10}" >&3
    sleep 3
    printf "%s" "${1:10}" >&3
    cat <&3' _ "$body" >"$WORK/slow.out" 2>&1 &
  local client=$!
  sleep 1
  local t0 code ms
  t0=$(date +%s%N)
  docker kill -s TERM tse-check >/dev/null
  code=$(timeout 30 docker wait tse-check) || die "the service did not exit within 30 s of SIGTERM"
  ms=$((($(date +%s%N) - t0) / 1000000))
  wait "$client" || true
  [ "$code" = 0 ] || die "after SIGTERM the service exited $code, want 0"
  head -1 "$WORK/slow.out" | grep -q '^HTTP/1.1 200' ||
    die "the request in flight at SIGTERM got: $(head -c 300 "$WORK/slow.out")"
  [ "$ms" -le 6000 ] || die "exit took ${ms} ms after SIGTERM, over SHUTDOWN_DELAY_SECONDS + SHUTDOWN_TIMEOUT_SECONDS (6 s)"
  echo "   in-flight request answered 200; exit 0, ${ms} ms after SIGTERM (limit 6000)"
  docker rm tse-check >/dev/null
}

compose() {
  DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 timeout 300 \
    docker-compose -p tsengine -f "$REPO/docker-compose.yml" --project-directory "$REPO" "$@"
}

# The stack's token-service is the image build_image made from the same Dockerfile and context,
# under the name compose gives a service's build (project_service): docker-compose's own build
# (docker-py's context tarball) misses the legacy builder's cache and would compile a second time.
compose_up() {
  docker tag "$IMAGE" tsengine_token-service
  compose up -d --no-build >"$WORK/compose.log" 2>&1 || { tail -30 "$WORK/compose.log"; die "docker-compose up"; }
}

compose_healthy() {
  local svc
  for svc in livekit redis token-service; do
    wait_until 90 "compose service $svc healthy (now: $(health "tsengine_${svc}_1"))" is_healthy "tsengine_${svc}_1"
  done
  echo "   livekit, redis and token-service healthy"
}

# depends_on: token-service started only after each dependency had passed a healthcheck. Run
# right after up, while the dependencies' health logs (the last five probes) still hold the first.
check_depends_on() {
  local started dep ok
  started=$(date -d "$(docker inspect -f '{{.State.StartedAt}}' tsengine_token-service_1)" +%s%N)
  for dep in livekit redis; do
    ok=$(docker inspect -f '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End.Format "2006-01-02T15:04:05.999999999Z07:00"}}{{"\n"}}{{end}}{{end}}' \
      "tsengine_${dep}_1" | head -1)
    [ -n "$ok" ] || die "no passing healthcheck recorded for $dep"
    [ "$(date -d "$ok" +%s%N)" -lt "$started" ] ||
      die "token-service started before $dep was healthy (started $started, $dep healthy $ok)"
  done
  echo "   token-service started after livekit and redis were healthy"
}

# A token from the stack's token-service joins the stack's LiveKit, and the rate limit is in Redis.
check_stack() {
  local reply token status ready
  reply=$(innet curl -sS -m 10 -X POST 127.0.0.1:3001/token -H 'Content-Type: application/json' \
    -d '{"room":"engine-check","identity":"alice"}')
  token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' <<<"$reply")
  [ -n "$token" ] || die "POST /token on the stack answered: $(head -c 300 <<<"$reply")"
  status=$(innet curl -sS -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:7880/rtc/validate?access_token=$token")
  [ "$status" = 200 ] || die "the stack's LiveKit answered $status to /rtc/validate with the stack's token"
  ready=$(innet curl -sS -m 10 127.0.0.1:3001/ready)
  grep -qF '"rate_limit_backend":"redis"' <<<"$ready" || die "/ready on the stack: $ready"
  local ports
  ports=$(docker port tsengine_token-service_1; docker port tsengine_livekit_1)
  if grep -v '^[^ ]* -> 127\.0\.0\.1:' <<<"$ports" | grep -q .; then
    die "the stack publishes beyond 127.0.0.1: $ports"
  fi
  echo "   /token -> /rtc/validate 200; /ready says rate_limit_backend redis; ports on 127.0.0.1 only"
}
