#!/usr/bin/env bash
# Measures Loam's S3 API against ceph/s3-tests, the S3 conformance suite of Ceph and others
# (docs/S3-COMPATIBILITY.md "Conformance" has the results and how to read them).
#
#   scripts/s3-conformance.sh [pytest args...]      e.g. -k test_object_write_read
#
# It fetches s3-tests at a pinned commit for the run (never kept in this repository), starts `loam local`
# (release build; LOAM=path/to/loam to use another binary) with three workers and file:// buckets, runs the
# suite with the plugin scripts/s3-conformance/loam_s3tests.py (buckets are Coordinator mounts), and prints
# the pass rate per category (scripts/s3-conformance/scope.py). Environment:
#   S3TESTS_REPO  where to clone s3-tests from (default https://github.com/ceph/s3-tests.git; a local clone works)
#   S3TESTS_REV   the commit (default below)
#   S3TESTS_OUT   where to keep junit.xml, summary.md and loam.log (default: a temporary directory)
#   S3TESTS_PORT  the Coordinator's port (default 39999); the workers' HTTP and S3 ports and moto's follow it
#   S3TESTS_UFS   file (default: each bucket a directory) or s3 (each bucket a bucket of a moto server from
#                 the test venv, scripts/setup-test-deps.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
S3TESTS_REPO=${S3TESTS_REPO:-https://github.com/ceph/s3-tests.git}
S3TESTS_REV=${S3TESTS_REV:-8f0ae7b404a3a2fcf7038bf1e6bf29544fe9b6a3}
work=$(mktemp -d)
out=${S3TESTS_OUT:-$work/out}
mkdir -p "$out"
loam_pid=
moto_pid=
cleanup() {
    [ -n "$loam_pid" ] && kill "$loam_pid" 2>/dev/null && wait "$loam_pid" 2>/dev/null
    [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null && wait "$moto_pid" 2>/dev/null
    rm -rf "$work/loam" "$work/buckets" "$work/s3-tests"
}
trap cleanup EXIT

if [ -z "${LOAM:-}" ]; then
    (cd "$repo" && cargo build --release -q -p loam)
    LOAM=${CARGO_TARGET_DIR:-$HOME/.cache/loam/target}/release/loam
fi

git clone -q "$S3TESTS_REPO" "$work/s3-tests"
git -C "$work/s3-tests" checkout -q "$S3TESTS_REV"

venv=${S3TESTS_VENV:-$HOME/.cache/loam/s3tests-venv}
if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv"
    # s3-tests' requirements, less tox (its own runner) and gevent (only its interactive tools use it).
    grep -v -E '^(tox|gevent)' "$work/s3-tests/requirements.txt" | "$venv/bin/pip" install -q -r /dev/stdin
fi

# Ports away from `loam local`'s defaults, so a running one does not clash.
port=${S3TESTS_PORT:-39999}
ufs_s3=
if [ "${S3TESTS_UFS:-file}" = s3 ]; then
    "${LOAM_VENV:-$HOME/.cache/loam/venv}/bin/moto_server" -H 127.0.0.1 -p $((port - 19)) >"$out/moto.log" 2>&1 &
    moto_pid=$!
    ufs_s3=http://127.0.0.1:$((port - 19))
    for _ in $(seq 300); do curl -s -o /dev/null "$ufs_s3" && break; sleep 0.1; done
fi

mkdir -p "$work/buckets"
# Anonymous reads off: s3-tests' buckets are private (`loam local` allows unsigned reads on loopback).
"$LOAM" local --data-dir "$work/loam" --allow-local-ufs "$work/buckets" --port "$port" \
    --http-port $((port - 1919)) --s3-port $((port - 9)) --anonymous-read false >"$out/loam.log" 2>&1 &
loam_pid=$!
for _ in $(seq 300); do
    grep -q "s3 keys" "$out/loam.log" && break
    kill -0 "$loam_pid" || { cat "$out/loam.log"; exit 1; }
    sleep 0.1
done
s3=$(awk '$1 == "s3" && $2 == "0" { print $3 }' "$out/loam.log")
keys=$work/loam/s3-keys.json
access=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_key"])' "$keys")
secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_key"])' "$keys")

# One key pair: Loam has one S3 owner, so s3-tests' alt and tenant users are the same (their tests of
# cross-user access are about ACLs and policies, out of scope).
conf=$work/s3tests.conf
{
    printf '[DEFAULT]\nhost = %s\nport = %s\nis_secure = False\nssl_verify = False\n' \
        "$(echo "$s3" | sed -E 's#http://([^:]+):.*#\1#')" "$(echo "$s3" | sed -E 's#.*:([0-9]+)/?$#\1#')"
    printf '[fixtures]\nbucket prefix = loam-s3t-{random}-\n'
    for section in "s3 main" "s3 alt" "s3 tenant" "iam" "iam root" "iam alt root"; do
        printf '[%s]\ndisplay_name = loam\nuser_id = loam\nemail = loam@example.com\n' "$section"
        printf 'access_key = %s\nsecret_key = %s\ntenant = loam\napi_name = default\n' "$access" "$secret"
    done
} >"$conf"

cd "$work/s3-tests"
status=0
S3TEST_CONF=$conf PYTHONPATH="$here/s3-conformance:$work/s3-tests" \
    LOAM_COORDINATOR="http://127.0.0.1:$port" LOAM_TOKEN_FILE="$work/loam/admin-token" \
    LOAM_BUCKET_ROOT="$work/buckets" LOAM_UFS_S3_ENDPOINT="$ufs_s3" \
    "$venv/bin/pytest" -p loam_s3tests -q -o addopts= -p no:cacheprovider \
    -m "$(python3 "$here/s3-conformance/scope.py" markexpr)" --junitxml="$out/junit.xml" \
    s3tests/functional/test_s3.py s3tests/functional/test_headers.py "$@" >"$out/pytest.log" 2>&1 || status=$?
tail -3 "$out/pytest.log"
python3 "$here/s3-conformance/scope.py" summary "$out/junit.xml" "$work/s3-tests/s3tests/functional" | tee "$out/summary.md"
echo "results in $out"
