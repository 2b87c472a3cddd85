# Stand-ins for the images the Dockerfile and docker-compose.yml name, since nothing can be
# pulled here: each is made from this machine's Go toolchain, Debian packages or binaries, tagged
# with the exact name the files use, and labelled with a key of what it was made from, so a later
# run reuses it until that key changes. Sourced by run.sh, which sets REPO, STATE and WORK.

KEY_LABEL=org.token-service.engine.key

# image_key IMAGE: the key label of IMAGE, empty when the image is absent.
image_key() {
  docker image inspect -f "{{index .Config.Labels \"$KEY_LABEL\"}}" "$1" 2>/dev/null || true
}

# fresh IMAGE KEY: true when IMAGE exists with KEY, so it need not be made again.
fresh() {
  if [ "$(image_key "$1")" = "$2" ]; then
    echo "   $1: cached ($2)"
    return 0
  fi
  echo "   $1: making it ($2)"
  return 1
}

# import_rootfs DIR IMAGE KEY CHANGE...: the directory as a one-layer image.
import_rootfs() {
  local dir=$1 image=$2 key=$3
  shift 3
  local changes=(--change "LABEL $KEY_LABEL=$key")
  local c
  for c in "$@"; do changes+=(--change "$c"); done
  tar --numeric-owner -C "$dir" -cf - . | docker import "${changes[@]}" - "$image" >/dev/null
}

# The builder, golang:<version>-bookworm: Debian's minbase, this machine's Go (it must be the
# version the tag names), and a module cache holding exactly what go.mod needs, with GOPROXY=off.
standin_golang() {
  local image
  image=$(sed -n 's/^FROM \(golang:[^ ]*\).*/\1/p' "$REPO/Dockerfile" | head -1)
  [ -n "$image" ] || die "no golang builder stage in the Dockerfile"
  local want have
  want=$(echo "$image" | sed 's/^golang:\([0-9.]*\)-.*/go\1/')
  have=$(go env GOVERSION)
  [ "$want" = "$have" ] || die "the Dockerfile builds with $image but this machine has $have: change one"
  local key="$have-mods-$(short_hash "$REPO/go.mod" "$REPO/go.sum")-v2"
  fresh "$image" "$key" && return 0

  local base=token-service-engine/bookworm-minbase:1
  if [ -z "$(docker image ls -q "$base")" ]; then
    local tarball="$STATE/bookworm-minbase.tar"
    if [ ! -s "$tarball" ]; then
      local mirror
      mirror=$(debian_mirror)
      rm -rf "$STATE/minbase"
      debootstrap --variant=minbase bookworm "$STATE/minbase" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -20 "$WORK/debootstrap.log"; die "debootstrap from $mirror"; }
      rm -rf "$STATE/minbase"/var/cache/apt/archives/*.deb "$STATE/minbase"/var/lib/apt/lists/*
      tar --numeric-owner -C "$STATE/minbase" -cf "$tarball.part" .
      mv "$tarball.part" "$tarball"
      rm -rf "$STATE/minbase"
    fi
    docker import "$tarball" "$base" >/dev/null
  fi

  # The host's module cache serves as the only proxy, so the copy holds what the build needs.
  local ctx="$WORK/golang"
  mkdir -p "$ctx"
  (cd "$REPO" && go mod download) # a no-op when the tests before this already downloaded it
  local hostcache
  hostcache=$(go env GOMODCACHE)
  (cd "$REPO" && GOMODCACHE="$ctx/mod" GOPROXY="file://$hostcache/cache/download" GOSUMDB=off \
    GOFLAGS=-mod=readonly go mod download && GOMODCACHE="$ctx/mod" GOPROXY="file://$hostcache/cache/download" \
    GOSUMDB=off CGO_ENABLED=0 go list -deps . >/dev/null)
  cp -al "$(go env GOROOT)" "$ctx/go" 2>/dev/null || cp -a "$(go env GOROOT)" "$ctx/go"
  # Every package the service imports but its own, compiled once here with the Dockerfile's
  # flags into the builder's GOCACHE: the image build then compiles only the service (the real
  # golang image has an empty cache; this is speed, not a different build).
  mkdir -p "$ctx/warm"
  cp "$REPO/go.mod" "$REPO/go.sum" "$ctx/warm/"
  (cd "$REPO" && go list -deps -f '{{if not .Module}}{{.ImportPath}}{{else if not .Module.Main}}{{.ImportPath}}{{end}}' .) >"$ctx/warm/pkgs"
  cat >"$ctx/Dockerfile" <<EOF
FROM $base
COPY go /usr/local/go
COPY mod /go/pkg/mod
ENV GOLANG_VERSION=${have#go} GOTOOLCHAIN=local GOPATH=/go GOPROXY=off GOSUMDB=off \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY warm /tmp/warm
RUN cd /tmp/warm && CGO_ENABLED=0 go build -trimpath \$(cat pkgs) && rm -rf /tmp/warm
WORKDIR /go
LABEL $KEY_LABEL=$key
EOF
  DOCKER_BUILDKIT=0 docker build -t "$image" "$ctx" >"$WORK/golang-build.log" 2>&1 ||
    { tail -30 "$WORK/golang-build.log"; die "building the golang stand-in"; }
  rm -rf "$ctx"
}

# debian_mirror: the first Debian mirror apt on this machine uses.
debian_mirror() {
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1 == "deb" && $0 ~ /debian/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$m" ] || die "no Debian mirror in /etc/apt/sources.list*: debootstrap needs one"
  echo "$m"
}

# The runtime, gcr.io/distroless/static-debian12:nonroot: what distroless holds, from Debian's
# own packages (this machine is bookworm, Debian 12): base-files, netbase, tzdata, the CA bundle,
# a passwd and group with nonroot 65532, and /tmp 1777. No shell, no libc.
standin_distroless() {
  local image
  image=$(sed -n 's/^FROM \(gcr\.io\/distroless\/[^ ]*\).*/\1/p' "$REPO/Dockerfile" | head -1)
  [ -n "$image" ] || die "no distroless runtime stage in the Dockerfile"
  local pkgs=(base-files netbase tzdata ca-certificates)
  local key
  key="debian12-$(dpkg-query -W -f '${Package}=${Version} ' "${pkgs[@]}" | sha256sum | cut -c1-16)-v1"
  fresh "$image" "$key" && return 0

  local debs="$WORK/debs" root="$WORK/distroless"
  mkdir -p "$debs" "$root"
  (cd "$debs" && apt-get download -qq "${pkgs[@]}" 2>/dev/null) ||
    (apt-get update -qq && cd "$debs" && apt-get download -qq "${pkgs[@]}") || die "apt-get download ${pkgs[*]}"
  local deb
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$root"; done
  rm -rf "$root"/usr/share/{doc,man,info,lintian,common-licenses}
  mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot" "$root/root"
  cat "$root"/usr/share/ca-certificates/*/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root" "$root/home/nonroot"
  chown 65532:65532 "$root/home/nonroot"
  import_rootfs "$root" "$image" "$key" "USER 65532" "WORKDIR /home/nonroot" \
    "ENV PATH=/usr/local/bin:/usr/bin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root" "$debs"
}

# compose_image SERVICE: the image docker-compose.yml names for SERVICE.
compose_image() {
  awk -v svc="  $1:" '$0 == svc {in_svc = 1; next} /^  [a-z]/ {in_svc = 0} in_svc && $1 == "image:" {print $2; exit}' \
    "$REPO/docker-compose.yml"
}

# livekit/livekit-server:<pinned>: the pinned server the tests install (binary "server"), its
# libraries, and a wget for the compose healthcheck, as the real (Alpine) image has busybox's.
standin_livekit() {
  local image version bin
  image=$(compose_image livekit)
  version=$(livekit_version)
  [ "$image" = "livekit/livekit-server:$version" ] ||
    die "docker-compose.yml runs $image but the tests pin livekit-server $version: change one"
  bin=$(livekit_binary "$version")
  local key="$version-$(short_hash "$bin" /usr/bin/wget)-v1"
  fresh "$image" "$key" && return 0

  local root="$WORK/livekit"
  mkdir -p "$root/tmp" "$root/etc"
  copy_with_libs "$root" "$bin" /livekit-server
  copy_with_libs "$root" /usr/bin/wget /usr/bin/wget
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  import_rootfs "$root" "$image" "$key" 'ENTRYPOINT ["/livekit-server"]' \
    "ENV PATH=/usr/local/bin:/usr/bin:/bin" "EXPOSE 7880 7881 7882/udp"
  rm -rf "$root"
}

# livekit_version: the Version constant of the package that runs livekit-server in tests.
livekit_version() {
  local f="$REPO/internal/testenv/livekittest/livekittest.go" v
  v=$(sed -n 's/^const Version = "\(v[0-9.]*\)".*/\1/p' "$f" | head -1)
  [ -n "$v" ] || die "no livekit-server Version constant in $f"
  echo "$v"
}

# livekit_binary VERSION: the path of the pinned server, installed with go install when missing.
livekit_binary() {
  local version=$1 bin
  bin="$(go env GOPATH | cut -d: -f1)/bin/server"
  if ! "$bin" --version 2>/dev/null | grep -qF "${version#v}"; then
    echo "   installing livekit-server $version (go install, a minute or two)" >&2
    go install "github.com/livekit/livekit-server/cmd/server@$version" >&2
    "$bin" --version | grep -qF "${version#v}" || die "$bin is not livekit-server $version"
  fi
  echo "$bin"
}

# redis:<tag> from Debian's redis-server and redis-cli (bookworm's 7.0, whatever the tag says),
# with a dash entrypoint that, like the official image's, turns protected mode off so other
# containers may connect without a password.
standin_redis() {
  local image
  image=$(compose_image redis)
  [ -n "$image" ] || die "no redis image in docker-compose.yml"
  local key
  key="$(redis-server --version | sed -n 's/.* v=\([0-9.]*\) .*/\1/p')-$(short_hash "$(command -v redis-server)")-v1"
  fresh "$image" "$key" && return 0

  local root="$WORK/redis"
  mkdir -p "$root/data" "$root/tmp" "$root/etc" "$root/usr/local/bin"
  copy_with_libs "$root" "$(command -v redis-server)" /usr/bin/redis-server
  copy_with_libs "$root" "$(command -v redis-cli)" /usr/bin/redis-cli
  copy_with_libs "$root" /bin/dash /bin/sh
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
if [ "$1" = redis-server ]; then
  set -- "$@" --protected-mode no
fi
exec "$@"
EOF
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:999:redis:/data:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nredis:x:999:\n' >"$root/etc/group"
  chown 999:999 "$root/data"
  chmod 1777 "$root/tmp"
  import_rootfs "$root" "$image" "$key" "USER redis" "WORKDIR /data" \
    'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["redis-server"]' \
    "ENV PATH=/usr/local/bin:/usr/bin:/bin" "EXPOSE 6379"
  rm -rf "$root"
}
