#!/usr/bin/env bash
# Build the sample workloads' CPU images with buildah (daemonless: no Docker), from the repository's Dockerfiles:
#
#   localhost/eks-ml-platform/trainer:dev     workloads/training/Dockerfile   (CPU torch)
#   localhost/eks-ml-platform/sentiment:dev   workloads/sentiment/Dockerfile  (TORCH_INDEX_URL: CPU torch)
#
#   scripts/build_images.sh                 # or `make images`; prints each image's size
#   IMAGES=sentiment scripts/build_images.sh
#
# Needs root, buildah and, to build the base stand-in, debootstrap and Debian's archive keyring
# (apt-get install -y buildah debootstrap; Ubuntu: also debian-archive-keyring); installs nothing itself.
# Its RUN steps run under buildah's chroot isolation on the host's network.
# Every detail of the machine it runs on lives here, none in the Dockerfiles (whose defaults are for a
# normal `docker buildx build` with internet access):
#
# - Base image: BASE_IMAGE if set, fully qualified where a registry is reachable (buildah resolves no short
#   names without asking: docker.io/library/python:3.11-slim-bookworm@sha256:<digest>); otherwise a local stand-in for python:3.11-slim-bookworm, built once (skipped while the image
#   exists; REBUILD_BASE=1 rebuilds it): `debootstrap --variant=minbase` of Debian bookworm (python3 3.11,
#   python3-venv, ca-certificates; passwd's groupadd/useradd come with minbase) from the Debian mirror of
#   apt's sources (DEBIAN_MIRROR overrides), committed as localhost/eks-ml-platform-base:bookworm.
# - pip inside the build sees the host's pip configuration (`pip config list`, PIP_* variables included),
#   written to one pip.conf mounted read-only at /etc/pip.conf, with every local path it names (find-links
#   folders, file:// indexes, constraint files, the CA bundle) bind-mounted read-only at the same path.
# - torch: where the host's find-links hold the CPU wheel (torch-<pin>+cpu-cp311-...), a one-project index
#   in the cache folder points at it and is the build's TORCH_INDEX_URL; otherwise it is PyTorch's CPU index.
#
# Builds use --layers: a rerun with unchanged inputs is served from the layer cache (well under a minute). Environment: TAG (dev), IMAGES
# ("trainer sentiment"), BASE_IMAGE, DEBIAN_MIRROR, REBUILD_BASE, PYTHON (python3: reads the pip config),
# CACHE_DIR (~/.cache/eks-ml-platform/images: the generated pip.conf and torch index).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TAG=${TAG:-dev}
IMAGES=${IMAGES:-trainer sentiment}
PYTHON=${PYTHON:-python3}
STANDIN_BASE=localhost/eks-ml-platform-base:bookworm
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eks-ml-platform/images}
PYTORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

log() { printf '[build_images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --------------------------------------------------------------------------- tools
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
need_tools() { # tool... : exit 2 with the install hint when one is missing
  local tool missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    log "missing: ${missing[*]}; install with: apt-get install -y buildah debootstrap"
    exit 2
  fi
}
need_tools buildah
[[ $(id -u) -eq 0 ]] || die "run as root (buildah's chroot isolation and debootstrap need it)"

mkdir -p "$CACHE_DIR"

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

image_size() { buildah images --format '{{.Size}}' "$1" | head -n 1; }

# --------------------------------------------------------------------------- base stand-in
debian_mirror() {
  # The first Debian (not -security) URI of apt's sources, deb822 or one-line format.
  local f uri
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    uri=$(grep -hoE '(^URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+' "$f" \
      | grep -oE '[a-z]+://[^[:space:]]+' | grep -E '/debian/?$' | head -n 1 || true)
    if [[ -n $uri ]]; then
      printf '%s\n' "${uri%/}"
      return
    fi
  done
  printf '%s\n' http://deb.debian.org/debian
}

standin_rootfs=""
standin_ctr=""
cleanup() {
  [[ -z $standin_ctr ]] || buildah rm "$standin_ctr" >/dev/null 2>&1 || true
  [[ -z $standin_rootfs ]] || rm -rf "$standin_rootfs"
}
trap cleanup EXIT

build_standin_base() {
  local mirror rootfs mnt tool start=$SECONDS
  need_tools debootstrap
  if [[ ! -r $DEBIAN_KEYRING ]]; then  # without it debootstrap would install unverified packages
    log "missing: $DEBIAN_KEYRING; install with: apt-get install -y debian-archive-keyring"
    exit 2
  fi
  mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
  rootfs=$(mktemp -d /var/tmp/eks-ml-platform-base.XXXXXX)
  standin_rootfs=$rootfs
  log "base stand-in: debootstrap bookworm from $mirror (a few minutes, once)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates --keyring="$DEBIAN_KEYRING" \
    bookworm "$rootfs" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"; }
  for tool in usr/bin/python3 usr/sbin/groupadd usr/sbin/useradd etc/ssl/certs/ca-certificates.crt; do
    [[ -e $rootfs/$tool ]] || die "the debootstrap'ed base lacks /$tool"
  done
  # What an image needs no copy of: the package caches and lists, and /dev (the runtime mounts its own).
  rm -rf "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/cache/apt/*.bin \
    "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/dev/*
  find "${rootfs:?}/var/log" -type f -delete
  standin_ctr=$(buildah from scratch)
  mnt=$(buildah mount "$standin_ctr")
  tar -C "$rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
  buildah umount "$standin_ctr" >/dev/null
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 \
    --label eks-ml-platform.base-stand-in="debootstrap --variant=minbase bookworm (python3 3.11), not python:3.11-slim-bookworm" \
    "$standin_ctr"
  buildah commit --quiet --format docker --rm "$standin_ctr" "$STANDIN_BASE" >/dev/null
  standin_ctr=""
  rm -rf "$rootfs"
  standin_rootfs=""
  log "base stand-in: $STANDIN_BASE built in $((SECONDS - start)) s, $(image_size "$STANDIN_BASE")"
}

if [[ -n ${BASE_IMAGE:-} ]]; then
  base=$BASE_IMAGE
else
  base=$STANDIN_BASE
  if [[ ${REBUILD_BASE:-0} == 1 ]] || ! image_exists "$base"; then
    build_standin_base
  else
    log "base stand-in: $base exists, reused (REBUILD_BASE=1 rebuilds it)"
  fi
fi

# --------------------------------------------------------------------------- pip inside the build
volumes=()
add_volume() { # host path -> the same path in the build, read-only, once
  local p=$1 v
  for v in "${volumes[@]}"; do [[ $v == "$p:$p:ro" ]] && return; done
  volumes+=("$p:$p:ro")
}

# The host's effective pip configuration (its files, then PIP_* variables, which win), as one pip.conf.
declare -A conf_file=() conf_env=()
while IFS= read -r line; do
  [[ $line == *=* ]] || continue
  key=${line%%=*}
  value=${line#*=}
  value=${value#\'}
  value=${value%\'}
  if [[ $key == :env:.* ]]; then
    conf_env[global.${key#:env:.}]=$value
  else
    conf_file[$key]=$value
  fi
done < <("$PYTHON" -m pip config list 2>/dev/null || true)
declare -A conf=()
for key in "${!conf_file[@]}"; do conf[$key]=${conf_file[$key]}; done
for key in "${!conf_env[@]}"; do conf[$key]=${conf_env[$key]}; done

pip_conf=$CACHE_DIR/pip.conf
find_links=()
{
  for section in $(for key in "${!conf[@]}"; do printf '%s\n' "${key%%.*}"; done | sort -u); do
    printf '[%s]\n' "$section"
    for key in "${!conf[@]}"; do
      [[ $key != "$section".* ]] || printf '%s = %s\n' "${key#*.}" "${conf[$key]}"
    done
  done
} >"$pip_conf"
for key in "${!conf[@]}"; do
  [[ $key == *.find-links ]] && read -r -a find_links <<<"${conf[$key]}"
  for token in ${conf[$key]}; do
    case $token in
      file://*/simple | file://*/simple/)
        token=${token#file://}
        add_volume "$(dirname "${token%/}")" ;;  # a PEP 503 tree keeps its files next to simple/
      file://*) add_volume "${token#file://}" ;;
      /*) [[ ! -e $token ]] || add_volume "$token" ;;
    esac
  done
done
volumes+=("$pip_conf:/etc/pip.conf:ro")
# pip's own CA setting may be absent: the host's bundle still serves anything run in the build.
[[ ! -r /etc/ssl/certs/ca-certificates.crt ]] || add_volume /etc/ssl/certs/ca-certificates.crt

# torch: the CPU wheel of the pin, from the host's find-links if there, else PyTorch's CPU index.
torch_version=$(sed -n 's/^torch==\([^[:space:]#]*\).*/\1/p' "$REPO/workloads/sentiment/requirements.txt")
[[ -n $torch_version ]] || die "no torch== pin in workloads/sentiment/requirements.txt"
torch_index=$PYTORCH_CPU_INDEX
for dir in "${find_links[@]}"; do
  dir=${dir#file://}
  [[ -d $dir ]] || continue
  wheel=$(find "$dir" -maxdepth 1 -name "torch-${torch_version}+cpu-cp311-cp311-*linux*_x86_64.whl" | sort | head -n 1)
  if [[ -n $wheel ]]; then
    mkdir -p "$CACHE_DIR/torch-index/torch"
    printf '<!DOCTYPE html><html><body><a href="file://%s#sha256=%s">%s</a></body></html>\n' \
      "$wheel" "$(sha256sum "$wheel" | cut -d' ' -f1)" "$(basename "$wheel")" \
      >"$CACHE_DIR/torch-index/torch/index.html"
    torch_index=file://$CACHE_DIR/torch-index
    add_volume "$CACHE_DIR/torch-index"
    add_volume "$(dirname "$wheel")"
    break
  fi
done
log "torch==$torch_version (CPU) from $torch_index"

# --------------------------------------------------------------------------- the images
build() { # name dockerfile
  local name=$1 dockerfile=$2
  local image=localhost/eks-ml-platform/$name:$TAG start=$SECONDS common=() mounts=() v
  common=(--isolation chroot --network host --layers --format docker --pull=false --file "$REPO/$dockerfile"
    --build-arg BASE_IMAGE="$base" --build-arg TORCH_INDEX_URL="$torch_index")
  for v in "${volumes[@]}"; do mounts+=(--volume "$v"); done
  # Two passes: buildah leaves an empty mount point in the image for every --volume a RUN step saw, so only
  # the build stage (pip) gets the mounts; the whole Dockerfile then reuses that stage from the layer cache
  # and runs the final stage without them (nothing of this machine in the image). Were the pip step not
  # cached, it would run unmounted: with a local torch index that fails at once, otherwise it installs
  # the same pins from the network.
  log "$image: building stage 'build' of $dockerfile (with the pip mounts)"
  buildah bud "${common[@]}" --target build "${mounts[@]}" "$REPO"
  log "$image: building $dockerfile"
  buildah bud "${common[@]}" --tag "$image" "$REPO"
  log "$image: built in $((SECONDS - start)) s"
  built+=("$image")
}

built=()
for name in $IMAGES; do
  case $name in
    trainer) build trainer workloads/training/Dockerfile ;;
    sentiment) build sentiment workloads/sentiment/Dockerfile ;;
    *) die "unknown image '$name' (trainer, sentiment)" ;;
  esac
done

for image in "${built[@]}"; do
  printf '%s\t%s\n' "$image" "$(image_size "$image")"
done
