#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine: Debian packages (etcd, protoc, nginx for the
# benchmark, fuse3 and fio for the FUSE mount, rclone and s3fs for the S3 client tests, buildah and podman
# for the container image, kubectl for the Kubernetes manifests, chromium for the web console, prometheus and promtool for the dashboard and alert rules), a Python venv with the S3 test server (moto) and the unmodified Alluxio clients.
# Idempotent and quick when everything is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${LOAM_VENV:-$HOME/.cache/loam/venv}"

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server etcd-client)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler libprotobuf-dev)
[ -e /usr/include/google/protobuf/timestamp.proto ] || need_apt+=(libprotobuf-dev)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
# The FUSE mount tests: fusermount3 (mounts by non-root users) and fio (reads with verification).
command -v fusermount3 >/dev/null 2>&1 || need_apt+=(fuse3)
command -v fio >/dev/null 2>&1 || need_apt+=(fio)
# `loam-bench requests --client wrk` (its test sends a second of requests).
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
# The S3 client tests (crates/loam-worker/tests/worker/s3_clients.rs): Debian's rclone and s3fs.
command -v rclone >/dev/null 2>&1 || need_apt+=(rclone)
command -v s3fs >/dev/null 2>&1 || need_apt+=(s3fs)
# The network-namespace harness (loam_testsupport::netns): namespaces and veths (ip), faults (nft).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
# The JWT tests sign with an RSA key openssl generates.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The container image (scripts/build-image.sh, crates/loam/tests/deploy/image.rs): buildah builds it, podman
# inspects and exports it; objcopy strips the binary.
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
command -v objcopy >/dev/null 2>&1 || need_apt+=(binutils)
# The Kubernetes manifests' checks (crates/loam/tests/deploy/k8s.rs) render them with `kubectl kustomize`;
# they need kustomize v4 or later (Components), i.e. kubectl 1.21 or later.
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
# The web console's test (crates/loam/tests/e2e/console.rs) drives headless Chromium over CDP.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The dashboard and alert rules' check (crates/loam/tests/e2e/monitoring.rs) runs a real Prometheus and promtool.
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # Debian starts etcd/nginx as services on install; the tests start their own on free ports. Only right
  # after an install: later, an etcd running here may be another test run's.
  systemctl stop etcd nginx prometheus >/dev/null 2>&1 || true
  pkill -x etcd >/dev/null 2>&1 || true
fi

stamp="$venv/.loam-requirements"
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$here/scripts/requirements-test.txt"; then
  echo "setup: creating Python venv at $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/scripts/requirements-test.txt"
  cp "$here/scripts/requirements-test.txt" "$stamp"
fi
echo "setup: ok (venv $venv)"
