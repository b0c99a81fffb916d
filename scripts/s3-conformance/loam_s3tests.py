"""A pytest plugin that runs ceph/s3-tests against Loam, where a bucket is a mount point.

s3-tests makes a fresh bucket for nearly every test (CreateBucket) and deletes it afterwards (its teardown
empties and deletes every bucket of its prefix). Loam's S3 API does not create or delete buckets: they are
mounts of the Coordinator. This plugin maps the two and changes nothing else:

- before any CreateBucket that a test sends for a name of the run's prefix, it mounts an empty UFS root at
  `/<bucket>` through the Coordinator's REST API — a directory (`file://`), or with `LOAM_UFS_S3_ENDPOINT` a
  new bucket of that S3 server (`s3://`) — and waits until the worker's S3 API sees it; the CreateBucket
  then goes to Loam, which answers it as S3 answers the owner re-creating its bucket (`200`);
- s3-tests' teardown (`nuke_bucket`, which would list object versions and delete the bucket) unmounts the
  bucket through the Coordinator and removes its directory.

Tests that are about creating or deleting buckets are out of scope (`scope.py`).
"""

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

COORDINATOR = os.environ["LOAM_COORDINATOR"]
TOKEN = Path(os.environ["LOAM_TOKEN_FILE"]).read_text().strip()
BUCKETS = Path(os.environ["LOAM_BUCKET_ROOT"])
# An S3 server (moto) to hold the buckets instead of directories, and its keys.
UFS_S3 = os.environ.get("LOAM_UFS_S3_ENDPOINT") or None
UFS_S3_OPTIONS = {
    "s3a.accessKeyId": "testing",
    "s3a.secretKey": "testing",
    "alluxio.underfs.s3.endpoint": UFS_S3 or "",
    "alluxio.underfs.s3.endpoint.region": "us-east-1",
    "alluxio.underfs.s3.disable.dns.buckets": "true",
}


def _mount_api(method, body):
    req = urllib.request.Request(
        f"{COORDINATOR}/api/v1/mount",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _bucket_seen(s3, name):
    try:
        s3.head_bucket(Bucket=name)
        return True
    except Exception:  # noqa: BLE001 - not yet
        return False


def mount(s3, name):
    """Mounts a fresh directory as bucket `name` (nothing when it is mounted or cannot be a mount); `s3`
    signs the HeadBucket that waits for the worker to see it."""
    if UFS_S3:
        import boto3

        ufs = boto3.client("s3", endpoint_url=UFS_S3, aws_access_key_id="testing", aws_secret_access_key="testing",
                           region_name="us-east-1")
        ufs.create_bucket(Bucket=name)
        body = {"path": f"/{name}", "ufs": f"s3://{name}/", "options": UFS_S3_OPTIONS}
    else:
        d = BUCKETS / name
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        body = {"path": f"/{name}", "ufs": f"file://{d}"}
    if _mount_api("POST", body) not in (200, 409):
        return  # a name Loam cannot mount: the CreateBucket goes on and gets Loam's answer
    deadline = time.monotonic() + 15
    while not _bucket_seen(s3, name) and time.monotonic() < deadline:
        time.sleep(0.02)


def unmount(name):
    _mount_api("DELETE", {"path": f"/{name}"})
    shutil.rmtree(BUCKETS / name, ignore_errors=True)


def pytest_configure(config):
    import botocore.client
    import s3tests.functional as f

    make_call = botocore.client.BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        # Only the run's buckets: names a test makes up (bucket-naming tests, out of scope) stay unmounted.
        name = api_params.get("Bucket")
        # (Not for the UFS's own S3 server, whose CreateBucket `mount` sends.)
        to_loam = self.meta.endpoint_url != UFS_S3
        if operation_name == "CreateBucket" and to_loam and isinstance(name, str) and name.startswith(f.get_prefix()):
            mount(self, name)
        return make_call(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _make_api_call

    def nuke_bucket(client, bucket):
        unmount(bucket)

    f.nuke_bucket = nuke_bucket
