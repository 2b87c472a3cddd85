# Helpers for run.sh: step timing, bounded waits, and copying a binary with its libraries.
# Sourced, not run.

TIMINGS=()

# step NAME CMD...: runs CMD, prints how long it took and keeps the figure for the summary.
step() {
  local name=$1
  shift
  echo "-- $name"
  local t0
  t0=$(date +%s%N)
  "$@"
  local ms=$((($(date +%s%N) - t0) / 1000000))
  TIMINGS+=("$(printf '%6d.%01d s  %s' $((ms / 1000)) $((ms % 1000 / 100)) "$name")")
  printf '   %s: %d.%01d s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100))
}

print_timings() {
  [ ${#TIMINGS[@]} -gt 0 ] || return 0
  echo "-- container engine step times"
  printf '  %s\n' "${TIMINGS[@]}"
}

die() {
  echo "engine check FAILED: $*" >&4
  exit 1
}

# wait_until SECONDS WHAT CMD...: polls CMD every half second, at most SECONDS, then fails naming
# WHAT. Bounded in count as well as time, so a CMD that returns at once cannot spin.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local tries=$((limit * 2)) deadline=$((SECONDS + limit))
  while ! "$@" >/dev/null 2>&1; do
    tries=$((tries - 1))
    if [ $tries -le 0 ] || [ $SECONDS -ge "$deadline" ]; then
      die "$what: not within ${limit} s"
    fi
    sleep 0.5
  done
}

# copy_with_libs ROOT SRC DEST: copies the executable SRC to ROOT/DEST and every shared library
# ldd names (and the dynamic loader) to the same path under ROOT.
copy_with_libs() {
  local root=$1 src=$2 dest=$3 lib
  mkdir -p "$root/$(dirname "$dest")"
  cp -L "$src" "$root/$dest"
  for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# short_hash FILE...: the first 16 hex digits of the files' sha256, for cache keys.
short_hash() {
  cat "$@" | sha256sum | cut -c1-16
}
