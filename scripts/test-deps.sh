#!/usr/bin/env bash
# Makes sure every program the integration tests and benchmarks run is
# installed. Quiet when all are present. As root it installs what is missing
# (Debian/Ubuntu); otherwise it prints the command and exits 1.
set -euo pipefail

# binary            Debian package     used for
DEPS=(
  "docker-registry  docker-registry    upstream registry (distribution 2.8)"
  "skopeo           skopeo             pushing and inspecting images"
  "redis-server     redis-server       Redis metadata store"
  "umoci            umoci              OCI layout checks"
  "jq               jq                 JSON in scripts"
  "curl             curl               DNS-spoof client tests (--resolve, --cacert)"
  "openssl          openssl            token issuer key and certificate"
  "perl             perl-base          bcrypt htpasswd lines via crypt(3)"
  "htpasswd         apache2-utils      htpasswd -B files for client authentication tests"
  "setpriv          util-linux         children die with the test process (--pdeathsig)"
  "containerd       containerd         pulling through the mirror"
  "ctr              containerd         containerd client"
  "podman           podman             pulling through the mirror, pushing to hosted repos"
  "dockerd          docker.io          private Docker engine pushing to hosted repos"
  "docker           docker.io          Docker CLI (the engine's own version, /usr/bin/docker)"
  "buildah          buildah            building and pushing images from scratch"
  "busybox          busybox-static     tiny static rootfs for locally built base images"
  "debootstrap      debootstrap        Debian rootfs for the packaging tests' base images"
  "docker-compose   docker-compose     compose 1.29 running deploy/compose.yaml"
  "nsenter          util-linux         the private Docker engine's /etc/hosts (packaging tests)"
  "redis-cli        redis-tools        reading the compose Redis (packaging tests)"
  "prometheus       prometheus         scraping metrics"
  "promtool         prometheus         checking metrics and rules"
  "nginx            nginx              TLS front end tests"
  "wrk              wrk                HTTP benchmarks"
  "tinyproxy        tinyproxy          outbound (forward) proxy tests, loopback only"
  "ceph-mon         ceph-mon           one-node Ceph cluster behind the S3 storage tests"
  "ceph-osd         ceph-osd           the Ceph cluster's one OSD (memstore)"
  "ceph             ceph-common        Ceph cluster set-up (keyrings, monitor map, pools)"
  "radosgw          radosgw            Ceph RADOS Gateway: the S3 server of the S3 storage tests"
  "chromium         chromium           the web UI's end-to-end tests (driven by playwright-core; never a downloaded browser)"
)

# Daemons live in sbin, which a non-root PATH often lacks.
have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/local/sbin/$1" ] || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

missing_packages() {
  local line binary package _rest
  for line in "${DEPS[@]}"; do
    read -r binary package _rest <<<"$line"
    have "$binary" || echo "$package"
  done | sort -u
}

mapfile -t missing < <(missing_packages)
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing packages: ${missing[*]}" >&2
  echo "test-deps: install them with:" >&2
  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

# Keep package scripts from starting daemons (nginx on :80, containerd, redis, docker):
# tests start their own on loopback ports. Only if the system has no policy yet.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi

echo "test-deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

mapfile -t still < <(missing_packages)
if [ "${#still[@]}" -ne 0 ]; then
  echo "test-deps: installed, but these packages still lack their programs: ${still[*]}" >&2
  exit 1
fi
