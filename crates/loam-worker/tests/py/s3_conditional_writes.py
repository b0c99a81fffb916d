"""Conditional writes through the workers' S3 API, seen through boto3: PutObject If-None-Match: * and
If-Match, DeleteObject If-Match, CopyObject's x-amz-copy-source-if-* conditions, and races of conditional
PUTs through different workers (exactly one wins a round).

Run by crates/loam-worker/tests/worker/s3_conditional_writes.rs with the test venv's python, with the
environment of s3_boto3.py; bucket "data" is the file:// UFS under LOAM_UFS_DIR, "s3data" a moto bucket
(when LOAM_MOTO_ENDPOINT is set).

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import datetime
import hashlib
import os
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from s3_boto3 import ACCESS_KEY, CONFIG, ENDPOINTS, SECRET_KEY, FileUfs, MotoUfs, client, get  # noqa: E402

RACERS = 6
ROUNDS = 5


def md5(body):
    return f'"{hashlib.md5(body).hexdigest()}"'


def refused(fn, want_status, want_code, **kwargs):
    """Calls fn, which must fail with want_status/want_code and a request id."""
    try:
        fn(**kwargs)
    except ClientError as e:
        status, code = e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
        assert (status, code) == (want_status, want_code), f"{fn.__name__} {kwargs}: {status} {code}"
        assert e.response["ResponseMetadata"].get("RequestId"), f"{fn.__name__}: no request id: {e.response}"
        return
    raise AssertionError(f"{fn.__name__}({kwargs}) succeeded; {want_status} {want_code} was expected")


def everywhere(ufs, key, want):
    """The UFS and every worker hold `want` under key (None: nothing)."""
    assert ufs.read(key) == want, f"{ufs.bucket}/{key} in the UFS: {ufs.read(key)!r}, want {want!r}"
    for e in ENDPOINTS:
        w = client(e)
        if want is None:
            refused(w.head_object, 404, "404", Bucket=ufs.bucket, Key=key)
        else:
            assert get(w, ufs.bucket, key) == want, f"{e} serves another {ufs.bucket}/{key}"


def put_and_delete(ufs):
    w0, w1 = client(ENDPOINTS[0]), client(ENDPOINTS[-1])
    b, k = ufs.bucket, "condw/obj"
    assert w0.put_object(Bucket=b, Key=k, Body=b"one", IfNoneMatch="*")["ETag"] == md5(b"one")
    everywhere(ufs, k, b"one")
    refused(w1.put_object, 412, "PreconditionFailed", Bucket=b, Key=k, Body=b"two", IfNoneMatch="*")
    everywhere(ufs, k, b"one")
    refused(w1.put_object, 412, "PreconditionFailed", Bucket=b, Key=k, Body=b"two", IfNoneMatch=md5(b"one"))
    everywhere(ufs, k, b"one")
    refused(w1.put_object, 404, "NoSuchKey", Bucket=b, Key="condw/none", Body=b"x", IfMatch="*")
    refused(w1.put_object, 412, "PreconditionFailed", Bucket=b, Key=k, Body=b"two", IfMatch=md5(b"other"))
    everywhere(ufs, k, b"one")
    refused(w1.put_object, 404, "NoSuchKey", Bucket=b, Key="condw/none", Body=b"x", IfMatch=md5(b"one"))
    everywhere(ufs, "condw/none", None)
    etag = w1.head_object(Bucket=b, Key=k)["ETag"]
    assert w1.put_object(Bucket=b, Key=k, Body=b"three", IfMatch=etag)["ETag"] == md5(b"three")
    everywhere(ufs, k, b"three")
    assert w0.put_object(Bucket=b, Key=k, Body=b"four", IfNoneMatch=md5(b"other"))["ETag"] == md5(b"four")
    everywhere(ufs, k, b"four")
    assert w1.put_object(Bucket=b, Key=k, Body=b"three", IfMatch="*")["ETag"] == md5(b"three")
    everywhere(ufs, k, b"three")
    print(f"ok: {b}: PutObject If-None-Match and If-Match")
    refused(w0.delete_object, 412, "PreconditionFailed", Bucket=b, Key=k, IfMatch=etag)
    everywhere(ufs, k, b"three")
    refused(w0.delete_object, 404, "NoSuchKey", Bucket=b, Key="condw/none", IfMatch=etag)
    w0.delete_object(Bucket=b, Key=k, IfMatch=md5(b"three"))
    everywhere(ufs, k, None)
    print(f"ok: {b}: DeleteObject If-Match")


def copy_source_conditions(ufs):
    w0, w1 = client(ENDPOINTS[0]), client(ENDPOINTS[-1])
    b, src = ufs.bucket, "condw/src"
    w0.put_object(Bucket=b, Key=src, Body=b"source")
    etag = md5(b"source")
    modified = w1.head_object(Bucket=b, Key=src)["LastModified"]
    past, future = modified - datetime.timedelta(days=1), modified + datetime.timedelta(days=1)
    cases = [
        ({"CopySourceIfMatch": etag}, 200),
        ({"CopySourceIfMatch": md5(b"other")}, 412),
        ({"CopySourceIfNoneMatch": etag}, 412),
        ({"CopySourceIfNoneMatch": md5(b"other")}, 200),
        ({"CopySourceIfModifiedSince": past}, 200),
        ({"CopySourceIfModifiedSince": future}, 412),
        ({"CopySourceIfUnmodifiedSince": future}, 200),
        ({"CopySourceIfUnmodifiedSince": past}, 412),
        # S3's combinations: if-match true decides over if-unmodified-since false ...
        ({"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past}, 200),
        # ... and if-none-match false over if-modified-since true.
        ({"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": past}, 412),
    ]
    for i, (cond, want) in enumerate(cases):
        dst = f"condw/copy-{i}"
        if want == 200:
            w1.copy_object(Bucket=b, Key=dst, CopySource={"Bucket": b, "Key": src}, **cond)
            everywhere(ufs, dst, b"source")
        else:
            refused(w1.copy_object, 412, "PreconditionFailed", Bucket=b, Key=dst, CopySource={"Bucket": b, "Key": src}, **cond)
            everywhere(ufs, dst, None)
    print(f"ok: {b}: CopyObject copy-source conditions")


def race(ufs, key, bodies, condition):
    """Each racer PUTs its body through its own worker once all are ready; returns the statuses."""
    barrier = threading.Barrier(len(bodies))
    statuses = [None] * len(bodies)
    # No retries: a retried conditional PUT would meet its own first attempt's effect (one 200 lost to 412).
    clients = [
        boto3.client(
            "s3", endpoint_url=ENDPOINTS[i % len(ENDPOINTS)], aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
            config=CONFIG.merge(Config(retries={"max_attempts": 1, "mode": "standard"})),
        )
        for i in range(len(bodies))
    ]

    def run(i):
        barrier.wait()
        try:
            clients[i].put_object(Bucket=ufs.bucket, Key=key, Body=bodies[i], **condition)
            statuses[i] = 200
        except ClientError as e:
            statuses[i] = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        except Exception as e:  # noqa: BLE001 - reported in the assertion below
            statuses[i] = repr(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [i for i, s in enumerate(statuses) if s == 200]
    assert len(won) == 1, f"{ufs.bucket}/{key} {condition}: {statuses}"
    assert all(s == (412, "PreconditionFailed") for s in statuses if s != 200), statuses
    everywhere(ufs, key, bodies[won[0]])
    return won[0]


def races(ufs):
    w0 = client(ENDPOINTS[0])
    for r in range(ROUNDS):
        key = f"condw/race-{r}"
        race(ufs, key, [f"created by {i} in round {r}".encode() for i in range(RACERS)], {"IfNoneMatch": "*"})
        etag = w0.head_object(Bucket=ufs.bucket, Key=key)["ETag"]
        race(ufs, key, [f"replaced by {i} in round {r}".encode() for i in range(RACERS)], {"IfMatch": etag})
    print(f"ok: {ufs.bucket}: racing conditional PUTs through {len(ENDPOINTS)} workers: one wins each round")


if __name__ == "__main__":
    uf = [FileUfs()] + ([MotoUfs()] if os.environ.get("LOAM_MOTO_ENDPOINT") else [])
    for u in uf:
        put_and_delete(u)
        copy_source_conditions(u)
        races(u)
