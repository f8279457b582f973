#!/usr/bin/env bash
# A private Docker daemon for Tidegate's tests, and the test images, built offline.
#
#   bash tools/dockerd/start.sh          # install (apt), start, build images; idempotent
#   bash tools/dockerd/start.sh --stop   # stop the daemon this script started
#
# The daemon is Tidegate's own: its socket, data root, exec root and pidfile are its
# own (nothing of a system docker is touched), it has no bridge and never edits
# iptables, and it pulls nothing from Docker Hub. Images:
#   tidegate-test/busybox:1   busybox-static only; /etc/tidegate-test-image says "busybox"
#   ubuntu:latest             a Debian (bookworm) root filesystem with python3 and nodejs
#                             from mmdebstrap, also tagged tidegate-test/debian:1;
#                             /etc/tidegate-test-image says "debian". The ecosystem's
#                             compute examples name image "ubuntu", tag "latest".
#   tidegate-test/python:3.11 Debian with python3, venv, passwd and CA certificates: the
#                             base the Dockerfile is built on in CI (tests/test_dockerfile.py)
# The Debian root filesystem is cached as a tarball (TIDEGATE_TEST_DOCKER_CACHE) so
# later runs only import it. A local registry (Debian's docker-registry, on loopback)
# holds 127.0.0.1:$TIDEGATE_TEST_REGISTRY_PORT/tidegate-test/pulled:1 (busybox) for
# pull tests; the daemon has no copy of it under that name.
#
# Settings (environment):
#   TIDEGATE_TEST_DOCKER_RUN    socket, exec root, pidfile, log  (/run/tidegate-test-docker)
#   TIDEGATE_TEST_DOCKER_DATA   data root                        (/var/lib/tidegate-test-docker)
#   TIDEGATE_TEST_DOCKER_CACHE  rootfs tarball cache             (<repo>/.cache/docker)
#   TIDEGATE_TEST_DEBIAN_MIRROR Debian mirror for mmdebstrap     (http://deb.debian.org/debian)
#   TIDEGATE_TEST_REGISTRY_PORT the registry's port on 127.0.0.1 (5055)
#   TIDEGATE_TEST_PRIVATE_REGISTRY_PORT the port of the one with credentials (5056)
# Tests find the daemon at unix://$TIDEGATE_TEST_DOCKER_RUN/docker.sock
# (TIDEGATE_TEST_DOCKER_HOST overrides it in the tests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
run_dir="${TIDEGATE_TEST_DOCKER_RUN:-/run/tidegate-test-docker}"
data_dir="${TIDEGATE_TEST_DOCKER_DATA:-/var/lib/tidegate-test-docker}"
cache_dir="${TIDEGATE_TEST_DOCKER_CACHE:-$repo/.cache/docker}"
mirror="${TIDEGATE_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
registry_port="${TIDEGATE_TEST_REGISTRY_PORT:-5055}"
private_port="${TIDEGATE_TEST_PRIVATE_REGISTRY_PORT:-5056}"
# A test-only credential, published here on purpose: the registry holds a busybox copy.
private_user=tidegate
private_password=tidegate-test-registry
socket="$run_dir/docker.sock"
pidfile="$run_dir/dockerd.pid"
log="$run_dir/dockerd.log"
export DOCKER_HOST="unix://$socket"
# The Debian image's content: bump the version to rebuild the cached tarball.
debian_version=1
debian_suite=bookworm
debian_packages=python3,nodejs
# The base for building Tidegate's own Dockerfile in CI (its PYTHON_IMAGE argument).
python_image_tag=tidegate-test/python:3.11
python_packages=python3,python3-venv,python-is-python3,passwd,ca-certificates

say() { echo "docker-setup: $*"; }
fail() { echo "docker-setup: $*" >&2; exit 1; }

answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    local pid; pid="$(cat "$pidfile")"
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "stopped dockerd (pid $pid)"
  else
    say "no dockerd of ours is running"
  fi
  local pidfile_of
  for pidfile_of in "$run_dir/registry.pid" "$run_dir/private-registry/pid"; do
    if [ -f "$pidfile_of" ] && kill -0 "$(cat "$pidfile_of")" 2>/dev/null; then
      kill "$(cat "$pidfile_of")"
      rm -f "$pidfile_of"
      say "stopped a registry"
    fi
  done
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  # busybox-static, not busybox: the image holds nothing but this one binary.
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" \
    || missing+=(busybox-static)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || fail "apt-get is missing: install ${missing[*]} by hand"
  say "installing ${missing[*]} with apt-get"
  # Debian's packaging would start the system docker service: keep our daemon the only one.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/dev/null || {
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
    } || fail "apt-get could not install ${missing[*]}"
}

start_daemon() {
  if answers; then
    say "dockerd already answers on $socket"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || fail "dockerd needs root (uid $(id -u)): no daemon started"
  mkdir -p "$run_dir" "$data_dir"
  chmod 0711 "$run_dir"
  local driver
  for driver in overlay2 vfs; do
    say "starting dockerd (storage driver $driver), log $log"
    # setsid: the daemon outlives the make that started it; its own containerd lives
    # under the exec root.
    setsid dockerd \
      --host "unix://$socket" --data-root "$data_dir" --exec-root "$run_dir/exec" \
      --pidfile "$pidfile" --bridge none --iptables=false --ip6tables=false \
      --ip-forward=false --ip-masq=false --storage-driver "$driver" \
      --log-level warn </dev/null >>"$log" 2>&1 9>&- &
    local pid=$!
    for _ in $(seq 1 150); do
      if answers; then
        say "dockerd answers (pid $pid, driver $driver)"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    say "dockerd did not start with $driver (last log lines below)"
    tail -n 5 "$log" >&2 || true
  done
  fail "dockerd could not start: see $log"
}

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

busybox_image() {
  has_image tidegate-test/busybox:1 && return 0
  local root; root="$(mktemp -d)"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/data"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  echo busybox >"$root/etc/tidegate-test-image"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar --numeric-owner --owner=0 --group=0 -C "$root" -c . \
    | docker import --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - \
        tidegate-test/busybox:1 >/dev/null
  rm -rf "$root"
  say "built tidegate-test/busybox:1"
}

# debian_rootfs TARBALL PACKAGES [MARKER]: a Debian root filesystem with PACKAGES, made
# once with mmdebstrap and cached as TARBALL (MARKER, if given, in /etc/tidegate-test-image;
# docs, man pages and apt lists are left out to keep the image small).
debian_rootfs() {
  local tarball=$1 packages=$2 marker=${3:-}
  [ -s "$tarball" ] && return 0
  mkdir -p "$cache_dir"
  say "building a Debian $debian_suite root filesystem with $packages (mmdebstrap, once)"
  local -a hooks=(--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*')
  [ -n "$marker" ] && hooks=(--customize-hook="echo $marker > \"\$1/etc/tidegate-test-image\""
                             "${hooks[@]}")
  mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' "${hooks[@]}" \
    "$debian_suite" "$tarball.partial" "$mirror" \
    || { rm -rf "$tarball.partial"; fail "mmdebstrap failed (needs the Debian mirror $mirror)"; }
  mv "$tarball.partial" "$tarball"
}

# import_rootfs TARBALL TAG CMD: the tarball as image TAG, with a usual PATH and CMD.
import_rootfs() {
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change "CMD [\"$3\"]" "$1" "$2" >/dev/null
  say "built $2 from $1"
}

debian_image() {
  local tarball="$cache_dir/debian-$debian_suite-v$debian_version.tar"
  if ! has_image "tidegate-test/debian:$debian_version"; then
    debian_rootfs "$tarball" "$debian_packages" debian
    import_rootfs "$tarball" "tidegate-test/debian:$debian_version" /bin/bash
  fi
  has_image ubuntu:latest || docker tag "tidegate-test/debian:$debian_version" ubuntu:latest
}

# A Debian root filesystem with python3 and venv: what python:3.11-slim-bookworm offers
# the Dockerfile (a `python` command, venv, pip through ensurepip, groupadd/useradd).
python_image() {
  local tarball="$cache_dir/python-$debian_suite-v1.tar"
  has_image "$python_image_tag" && return 0
  debian_rootfs "$tarball" "$python_packages"
  import_rootfs "$tarball" "$python_image_tag" /usr/bin/python3
}

registry_answers() {
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$registry_port" 2>/dev/null
}

# A local registry for pull tests; the daemon trusts 127.0.0.0/8 without TLS.
start_registry() {
  if ! registry_answers; then
    mkdir -p "$data_dir/registry"
    printf '%s\n' "version: 0.1" "log: {level: warn}" "storage:" \
      "  filesystem: {rootdirectory: $data_dir/registry}" "  delete: {enabled: true}" \
      "http: {addr: \"127.0.0.1:$registry_port\"}" >"$run_dir/registry.yml"
    setsid docker-registry serve "$run_dir/registry.yml" </dev/null \
      >>"$run_dir/registry.log" 2>&1 9>&- &
    echo $! >"$run_dir/registry.pid"
    for _ in $(seq 1 50); do registry_answers && break; sleep 0.1; done
    registry_answers || fail "docker-registry did not start: see $run_dir/registry.log"
    say "registry answers on 127.0.0.1:$registry_port"
  fi
  local pulled="127.0.0.1:$registry_port/tidegate-test/pulled:1"
  if ! curl -fs -o /dev/null \
      "http://127.0.0.1:$registry_port/v2/tidegate-test/pulled/manifests/1" \
      -H "Accept: application/vnd.docker.distribution.manifest.v2+json"; then
    docker tag tidegate-test/busybox:1 "$pulled"
    docker push "$pulled" >/dev/null
    say "pushed $pulled"
  fi
  docker rmi "$pulled" >/dev/null 2>&1 || true  # the tests pull it
}

# A second registry that wants credentials (htpasswd, bcrypt from Python's crypt): it
# holds tidegate-test/private:1 for the registry-credentials tests. The client logs in
# with a config directory of its own (root's ~/.docker is never touched).
private_registry() {
  local port=$private_port dir="$run_dir/private-registry"
  if ! timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
    mkdir -p "$data_dir/private-registry" "$dir"
    # Python's crypt module (bookworm's 3.11) hashes with bcrypt; without it the tests
    # of registry credentials are skipped, the rest does not depend on it.
    if ! python3 -W ignore -c 'import crypt, sys
print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
        "$private_user" "$private_password" >"$dir/htpasswd" 2>/dev/null; then
      say "no bcrypt (python3's crypt module): the private registry is not started"
      return 0
    fi
    printf '%s\n' "version: 0.1" "log: {level: warn}" "storage:" \
      "  filesystem: {rootdirectory: $data_dir/private-registry}" \
      "http: {addr: \"127.0.0.1:$port\"}" \
      "auth: {htpasswd: {realm: tidegate-test, path: $dir/htpasswd}}" >"$dir/config.yml"
    setsid docker-registry serve "$dir/config.yml" </dev/null >>"$dir/log" 2>&1 9>&- &
    echo $! >"$dir/pid"
    for _ in $(seq 1 50); do
      timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.1
    done
    say "private registry answers on 127.0.0.1:$port"
  fi
  local private="127.0.0.1:$port/tidegate-test/private:1"
  export DOCKER_CONFIG="$dir/client"
  echo "$private_password" | docker login -u "$private_user" --password-stdin \
    "127.0.0.1:$port" >/dev/null 2>&1 || fail "could not log in to the private registry"
  if ! docker manifest inspect --insecure "$private" >/dev/null 2>&1; then
    docker tag tidegate-test/busybox:1 "$private"
    docker push "$private" >/dev/null
    say "pushed $private"
  fi
  docker rmi "$private" >/dev/null 2>&1 || true  # the tests pull it
  unset DOCKER_CONFIG
}

# One probe container: the daemon can really run a hardened job here.
probe() {
  local out
  if ! out="$(docker run --rm --network none --cap-drop ALL \
      --security-opt no-new-privileges --user 65534:65534 --read-only \
      --memory 64m --memory-swap 64m --pids-limit 16 \
      tidegate-test/busybox:1 cat /etc/tidegate-test-image 2>&1)" || [ "$out" != busybox ]; then
    fail "dockerd runs but cannot run a container: $out"
  fi
  say "a hardened container ran (user 65534, no network, read-only root)"
}

main() {
  if [ "${1:-}" = "--stop" ]; then stop; return; fi
  mkdir -p "$run_dir"
  # Several worktrees may run this at once: one at a time.
  exec 9>"$run_dir.lock"
  flock 9
  install_packages
  start_daemon
  busybox_image
  debian_image
  python_image
  start_registry
  private_registry
  probe
  say "ready: DOCKER_HOST=unix://$socket"
}

main "$@"
