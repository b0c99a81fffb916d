#!/usr/bin/env bash
# Builds the Loam container image with buildah (else podman), from scratch: the `loam` binary, exactly the
# shared libraries `ldd` names for it, CA certificates, /etc/passwd and /etc/group (user `loam`, 65532, and
# nobody), a writable /var/lib/loam owned by 65532 and /tmp. The Containerfile has only COPY, LABEL, ENV,
# USER and ENTRYPOINT steps: nothing runs inside a container while building (on these machines a container
# cannot be started), so the image is as reproducible as the staged files.
#
#   scripts/build-image.sh [--binary PATH] [--tag TAG] [--output DIR] [--source URL]
#
#   --binary PATH  put this binary in the image (default: `cargo build --release -p loam`, then strip)
#   --tag TAG      image name (default: localhost/loam:<workspace version>)
#   --output DIR   also export the image's root filesystem into DIR (must be absent or empty)
#   --source URL   org.opencontainers.image.source (default: the git remote `origin`, when there is one)
#
# Prints the image's size and fails when it is 80 MB or more. Needs root (the image store of root).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
max_bytes=$((80 * 1000 * 1000))
uid=65532

binary="" tag="" output="" source=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    --source) source="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$here/Cargo.toml")"
revision="$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -z "$source" ]; then
  source="$(git -C "$here" remote get-url origin 2>/dev/null || echo "local build (no git remote)")"
fi
tag="${tag:-localhost/loam:$version}"

if command -v buildah >/dev/null 2>&1; then
  build() { buildah bud --quiet --layers=false -t "$tag" -f "$1" "$2"; }
  tool=buildah
elif command -v podman >/dev/null 2>&1; then
  build() { podman build --quiet -t "$tag" -f "$1" "$2"; }
  tool=podman
else
  echo "build-image: neither buildah nor podman is installed (scripts/setup-test-deps.sh installs them)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "$binary" ]; then
  target="${CARGO_TARGET_DIR:-$HOME/.cache/loam/target}"
  (cd "$here" && CARGO_TARGET_DIR="$target" cargo build --release -p loam)
  objcopy --strip-all "$target/release/loam" "$work/loam"
  binary="$work/loam"
fi
[ -x "$binary" ] || { echo "build-image: $binary is not an executable file" >&2; exit 2; }

# The root filesystem, staged as it will be in the image.
root="$work/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib" "$work/state/loam"
install -m 0755 "$binary" "$root/usr/local/bin/loam"
# Every library ldd resolves, at the path it names (the dynamic loader's too); ldd is the one source of
# what the binary needs, so a new dependency cannot be forgotten here.
libs="$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')"
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nloam:x:%d:%d:loam:/var/lib/loam:/sbin/nologin\n' \
  "$uid" "$uid" > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\nloam:x:%d:\n' "$uid" > "$root/etc/group"
# glibc's resolver reads this; Kubernetes mounts /etc/hosts and /etc/resolv.conf.
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"
chmod 0700 "$work/state/loam"

cat > "$work/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
COPY --chown=$uid:$uid state/ /var/lib/
LABEL org.opencontainers.image.title="loam" \\
      org.opencontainers.image.description="Loam, a distributed read cache (Coordinator, workers, FUSE, CLI)" \\
      org.opencontainers.image.version="$version" \\
      org.opencontainers.image.revision="$revision" \\
      org.opencontainers.image.source="$source" \\
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/usr/local/bin
USER $uid:$uid
ENTRYPOINT ["loam"]
EOF
build "$work/Containerfile" "$work" >/dev/null

# The image's size as the image store counts it (its layer, uncompressed).
size="$(podman image inspect --format '{{.Size}}' "$tag")"
echo "build-image: built $tag with $tool (version $version, revision $revision): $size bytes"
if [ "$size" -ge "$max_bytes" ]; then
  echo "build-image: the image is $size bytes, the limit is $max_bytes" >&2
  exit 1
fi

if [ -n "$output" ]; then
  mkdir -p "$output"
  if [ -n "$(ls -A "$output")" ]; then
    echo "build-image: --output $output is not empty" >&2
    exit 2
  fi
  # Mount the image's root filesystem through a working container that is never started.
  ctr="$(buildah from --quiet "$tag" 2>/dev/null || true)"
  if [ -n "$ctr" ]; then
    mnt="$(buildah mount "$ctr")"
    cp -a "$mnt/." "$output/"
    buildah umount "$ctr" >/dev/null
    buildah rm "$ctr" >/dev/null
  else
    ctr="$(podman create "$tag")"
    podman export "$ctr" | tar -x -C "$output" --numeric-owner
    podman rm "$ctr" >/dev/null
  fi
  echo "build-image: root filesystem in $output"
fi
