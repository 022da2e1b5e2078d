#!/usr/bin/env bash
# Build the offline images without an image registry (measured recipe: the project's
# notes/docker.md, section 2):
#   warren/bookworm:base      debootstrap --variant=minbase bookworm, then `docker import`
#   warren/rabbitmq:offline   Debian's rabbitmq-server on that base (Dockerfile.rabbitmq)
#   warren/proxy:offline      `warren proxy` from this checkout's wheel (Dockerfile.proxy)
# Each image carries the label org.warren.inputs = sha256 of its inputs; an image whose label
# matches is kept, so a warm run only inspects three images. Needs root (debootstrap), a
# running Docker engine, and python3 with pip (to build Warren's wheel).
# Usage: compose/offline/build.sh [--force]     (WARREN_MIRROR overrides the Debian mirror)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BASE=warren/bookworm:base RMQ=warren/rabbitmq:offline PROXY=warren/proxy:offline
LABEL=org.warren.inputs
FORCE=${1:-}
# What `warren proxy` imports at run time (the CLI builds every subcommand's parser), from
# pyproject.toml's dependencies; matplotlib is not among them, so Warren goes in --no-deps.
PROXY_NEEDS=('pamqp>=3.3,<5' 'greenlet>=3' 'rich>=13' 'psutil>=5.9' certifi)
export DOCKER_BUILDKIT=0   # bookworm has no buildx: the legacy builder is what exists

die() { echo "build.sh: $*" >&2; exit 1; }
command -v docker >/dev/null || die "no docker CLI: apt-get install docker.io"
docker version >/dev/null 2>&1 || die "no Docker engine answers: start dockerd (setsid dockerd &)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

label_of() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
fresh() { [ "$FORCE" != "--force" ] && [ "$(label_of "$1")" = "$2" ]; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
# After a rebuild, drop the image the tag used to name (kept if a container still uses it).
drop_old() { [ -n "$2" ] && [ "$2" != "$(image_id "$1")" ] && docker rmi "$2" >/dev/null 2>&1 || true; }
digest() { sha256sum | cut -c1-64; }

# -- base: a minbase bookworm root file system, imported as an image --------------------------
base_hash=$(printf 'debootstrap --variant=minbase bookworm v1' | digest)
if fresh "$BASE" "$base_hash"; then
  echo "$BASE up to date"
else
  command -v debootstrap >/dev/null || die "no debootstrap: apt-get install debootstrap"
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  mirror=${WARREN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
  tar -C "$WORK/rootfs" -c . | docker import --change "LABEL $LABEL=$base_hash" \
    --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
  echo "$BASE imported"
fi
base_id=$(image_id "$BASE")

# -- rabbitmq ---------------------------------------------------------------------------------
rmq_hash=$( { echo "$base_id"; cat "$HERE/Dockerfile.rabbitmq" "$HERE/entry.sh"; } | digest)
if fresh "$RMQ" "$rmq_hash"; then
  echo "$RMQ up to date"
else
  old=$(image_id "$RMQ")
  mkdir "$WORK/rmq" && cp "$HERE/Dockerfile.rabbitmq" "$HERE/entry.sh" "$WORK/rmq/"
  docker build -q --force-rm --label "$LABEL=$rmq_hash" -t "$RMQ" -f "$WORK/rmq/Dockerfile.rabbitmq" \
    "$WORK/rmq" >/dev/null 2>"$WORK/build.log" || { tail -n 30 "$WORK/build.log" >&2; die "docker build $RMQ failed"; }
  drop_old "$RMQ" "$old"
  echo "$RMQ built"
fi

# -- proxy: hash only the Warren modules `warren proxy` imports, so unrelated edits keep it -----
cd "$REPO"
sources=$(python3 - <<'PY' 2>/dev/null || find broker_sim client scenarios -name '*.py'
import os, sys
sys.path.insert(0, os.getcwd())
import scenarios.cli
scenarios.cli.build_parser()  # imports the subcommands' modules too
root = os.getcwd() + os.sep
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None) or ""
    if f.startswith(root):
        print(os.path.relpath(f, root))
PY
)
proxy_hash=$( { echo "$base_id" "${PROXY_NEEDS[*]}"; cat "$HERE/Dockerfile.proxy" pyproject.toml;
  echo "$sources" | LC_ALL=C sort | xargs sha256sum; } | digest)
if fresh "$PROXY" "$proxy_hash"; then
  echo "$PROXY up to date"
else
  old=$(image_id "$PROXY")
  mkdir -p "$WORK/proxy/wheels" "$WORK/src"
  cp -r broker_sim client scenarios pyproject.toml README.md "$WORK/src/"   # a copy: no build/ here
  find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
  python3 -m pip wheel -q --no-deps -w "$WORK/proxy/wheels" "$WORK/src" >"$WORK/pip.log" 2>&1 \
    || { tail -n 20 "$WORK/pip.log" >&2; die "building Warren's wheel failed"; }
  printf '%s\n' "${PROXY_NEEDS[@]}" >"$WORK/proxy/wheels/requirements.txt"
  python3 -m pip download -q --only-binary=:all: -d "$WORK/proxy/wheels" \
    -r "$WORK/proxy/wheels/requirements.txt" >"$WORK/pip.log" 2>&1 \
    || { tail -n 20 "$WORK/pip.log" >&2; die "downloading the proxy's wheels failed"; }
  cp "$HERE/Dockerfile.proxy" "$WORK/proxy/"
  docker build -q --force-rm --label "$LABEL=$proxy_hash" -t "$PROXY" -f "$WORK/proxy/Dockerfile.proxy" \
    "$WORK/proxy" >/dev/null 2>"$WORK/build.log" || { tail -n 30 "$WORK/build.log" >&2; die "docker build $PROXY failed"; }
  drop_old "$PROXY" "$old"
  echo "$PROXY built"
fi
