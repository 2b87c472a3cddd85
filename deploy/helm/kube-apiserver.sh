#!/usr/bin/env bash
# Builds the real kube-apiserver the chart's tests apply to, once, and prints its path.
# k8s.io/kubernetes cannot be required as it stands (its go.mod points its staging modules at
# ./staging/src), so a throw-away wrapper module requires it with one `replace` per staging module,
# each to its published v0.X.Y twin. About 6.5 minutes cold on 2 cores, then cached outside the repo
# (like the LiveKit binary in $(go env GOPATH)/bin): KUBE_APISERVER_CACHE, default /var/cache/token-service.
set -euo pipefail

version=${KUBE_VERSION:-v1.37.2}
staging=v0.${version#v1.}
cache=${KUBE_APISERVER_CACHE:-/var/cache/token-service}
bin="$cache/kube-apiserver-$version"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "Kubernetes $version"; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
[ -n "$gomod" ] || { echo "kube-apiserver.sh: cannot download k8s.io/kubernetes@$version" >&2; exit 1; }

{
  echo "module kube-apiserver-build"
  echo "go $(go env GOVERSION | sed 's/^go//')"
  echo "require k8s.io/kubernetes $version"
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} >"$work/go.mod"

echo "kube-apiserver.sh: building kube-apiserver $version into $bin (about 6.5 minutes cold)" >&2
(
  cd "$work"
  GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$version" >&2
  # The version stamp kube-apiserver --version prints, as Kubernetes' own build sets it.
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)"
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
)
mv "$bin.tmp" "$bin"
echo "$bin"
