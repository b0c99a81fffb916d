"""Drives the workers' S3 API with boto3, the real client, and checks what it sees.

Run by crates/loam-worker/tests/s3_api.rs with the test venv's python. Settings come from the environment:

  LOAM_S3_ENDPOINTS   comma-separated S3 endpoints of the workers (http://127.0.0.1:PORT)
  LOAM_S3_ACCESS_KEY, LOAM_S3_SECRET_KEY   the key pair the workers accept
  LOAM_UFS_DIR        root of the file:// UFS mounted as bucket "data"
  LOAM_MOTO_ENDPOINT, LOAM_MOTO_BUCKET, LOAM_MOTO_ACCESS_KEY, LOAM_MOTO_SECRET_KEY
                      the moto S3 server and bucket mounted as "s3data" (optional)

Modes (argv[1]):

  suite   listing, head, whole and ranged reads compared with the UFS originals, writes read back through
          other workers, overwrite, delete, copy, multipart, signatures and anonymous reads
  ranges  LOAM_BIG_KEY in bucket "data" is LOAM_BIG_SIZE bytes whose 8-byte little-endian words hold their
          own offsets; reads LOAM_RANGE_COUNT random ranges through every endpoint and checks them

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import hashlib
import os
import random
import struct
import sys
import tempfile

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINTS = os.environ["LOAM_S3_ENDPOINTS"].split(",")
ACCESS_KEY = os.environ["LOAM_S3_ACCESS_KEY"]
SECRET_KEY = os.environ["LOAM_S3_SECRET_KEY"]
UFS_DIR = os.environ["LOAM_UFS_DIR"]
CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"})
MIB = 1 << 20


def client(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, unsigned=False):
    config = CONFIG.merge(Config(signature_version=UNSIGNED)) if unsigned else CONFIG
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=config,
    )


def error_code(fn, *args, **kwargs):
    """The S3 error code (and HTTP status) fn raises; fails if it succeeds."""
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__}{args}{kwargs} succeeded; an error was expected")


def pattern(n, seed):
    """n deterministic bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


class FileUfs:
    """Bucket "data": originals are written to and read from the file:// UFS directly."""

    bucket = "data"

    def write(self, key, data):
        path = os.path.join(UFS_DIR, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def read(self, key):
        try:
            with open(os.path.join(UFS_DIR, key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None


class MotoUfs:
    """Bucket "s3data": originals live in a moto bucket, written and read with moto's own endpoint."""

    bucket = "s3data"

    def __init__(self):
        self.s3 = client(
            os.environ["LOAM_MOTO_ENDPOINT"], os.environ["LOAM_MOTO_ACCESS_KEY"], os.environ["LOAM_MOTO_SECRET_KEY"]
        )
        self.name = os.environ["LOAM_MOTO_BUCKET"]

    def write(self, key, data):
        self.s3.put_object(Bucket=self.name, Key=key, Body=data)

    def read(self, key):
        try:
            return self.s3.get_object(Bucket=self.name, Key=key)["Body"].read()
        except ClientError as e:
            if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise


def get(s3, bucket, key, **kwargs):
    return s3.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def keys_of(page):
    return [o["Key"] for o in page.get("Contents", [])]


def prefixes_of(page):
    return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


def check_listing(s3, ufs):
    b = ufs.bucket
    ufs.write("dir/a.txt", b"alpha")
    ufs.write("dir/b.bin", pattern(3000, "b"))
    ufs.write("dir/sub/c.txt", b"gamma")
    ufs.write("dir/odd name+%.txt", b"odd")
    for i in range(25):
        ufs.write(f"many/f{i:02}", pattern(10 + i, f"many{i}"))

    page = s3.list_objects_v2(Bucket=b, Prefix="dir/", Delimiter="/")
    assert keys_of(page) == ["dir/a.txt", "dir/b.bin", "dir/odd name+%.txt"], page
    assert prefixes_of(page) == ["dir/sub/"], page
    assert page["KeyCount"] == 4 and not page["IsTruncated"], page
    sizes = {o["Key"]: o["Size"] for o in page["Contents"]}
    assert sizes["dir/b.bin"] == 3000 and sizes["dir/a.txt"] == 5, sizes

    page = s3.list_objects_v2(Bucket=b, Prefix="dir/")
    assert keys_of(page) == ["dir/a.txt", "dir/b.bin", "dir/odd name+%.txt", "dir/sub/c.txt"], page
    page = s3.list_objects_v2(Bucket=b, Prefix="dir/s")
    assert keys_of(page) == ["dir/sub/c.txt"], page
    page = s3.list_objects_v2(Bucket=b, Prefix="dir/s", Delimiter="/")
    assert keys_of(page) == [] and prefixes_of(page) == ["dir/sub/"], page
    page = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert {"dir/", "many/"} <= set(prefixes_of(page)), page

    # Pages of 7, continued by tokens, in key order, with nothing lost or repeated.
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=b, Prefix="many/", MaxKeys=7, **kwargs)
        pages += 1
        seen += keys_of(page)
        assert page["KeyCount"] == len(keys_of(page)), page
        if not page["IsTruncated"]:
            break
        assert len(keys_of(page)) == 7, page
        token = page["NextContinuationToken"]
    assert seen == [f"many/f{i:02}" for i in range(25)], seen
    assert pages == 4, pages
    paginated = [k for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="many/", PaginationConfig={"PageSize": 10}) for k in keys_of(p)]
    assert paginated == seen, paginated
    page = s3.list_objects_v2(Bucket=b, Prefix="many/", StartAfter="many/f10")
    assert keys_of(page) == [f"many/f{i:02}" for i in range(11, 25)], page
    v1 = s3.list_objects(Bucket=b, Prefix="many/", MaxKeys=5, Marker="many/f03")
    assert keys_of(v1) == [f"many/f{i:02}" for i in range(4, 9)] and v1["IsTruncated"], v1
    assert error_code(s3.list_objects_v2, Bucket="nope")[0] == "NoSuchBucket"
    print(f"ok: listing of {b}")


def check_reads(clients, ufs):
    b = ufs.bucket
    data = pattern(300_000, "read")
    ufs.write("read/obj.bin", data)
    for i, s3 in enumerate(clients):
        head = s3.head_object(Bucket=b, Key="read/obj.bin")
        assert head["ContentLength"] == len(data), head
        assert head["ETag"].strip('"'), head
        assert head["LastModified"] is not None and head["ContentType"], head
        assert get(s3, b, "read/obj.bin") == data, f"whole object through worker {i}"
        r = s3.get_object(Bucket=b, Key="read/obj.bin", Range="bytes=1000-70999")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206, r
        assert r["ContentRange"] == f"bytes 1000-70999/{len(data)}", r
        assert r["Body"].read() == data[1000:71000], f"bytes=a-b through worker {i}"
        assert get(s3, b, "read/obj.bin", Range="bytes=299000-") == data[299000:]
        assert get(s3, b, "read/obj.bin", Range="bytes=-12345") == data[-12345:]
        assert get(s3, b, "read/obj.bin", Range="bytes=299990-400000") == data[299990:]
        # Past the end: S3's 416 InvalidRange.
        assert error_code(s3.get_object, Bucket=b, Key="read/obj.bin", Range=f"bytes={len(data)}-")[0] == "InvalidRange"
        # A range that is no byte range (s3fs sends bytes=0--1 for an empty read) is ignored: the whole object.
        r = s3.get_object(Bucket=b, Key="read/obj.bin", Range="bytes=0--1")
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r["Body"].read() == data, "ignored range"
        etag = head["ETag"]
        assert get(s3, b, "read/obj.bin", IfMatch=etag) == data
        assert error_code(s3.get_object, Bucket=b, Key="read/obj.bin", IfMatch='"other"')[1] == 412
        assert error_code(s3.get_object, Bucket=b, Key="read/obj.bin", IfNoneMatch=etag)[1] == 304
        assert error_code(s3.head_object, Bucket=b, Key="read/none")[1] == 404
        assert error_code(s3.get_object, Bucket=b, Key="read/none")[0] == "NoSuchKey"
        assert error_code(s3.get_object, Bucket=b, Key="read")[0] == "NoSuchKey", "a directory is no object"
        assert error_code(s3.head_bucket, Bucket="nope")[1] == 404
    ufs.write("read/empty", b"")
    assert get(clients[0], b, "read/empty") == b""
    assert get(clients[0], b, "read/empty", Range="bytes=-10") == b""
    print(f"ok: reads of {b} through {len(clients)} workers")


def check_writes(clients, ufs):
    b = ufs.bucket
    first, second = pattern(200_000, "v1"), pattern(150_000, "v2")
    clients[0].put_object(Bucket=b, Key="w/obj", Body=first)
    assert ufs.read("w/obj") == first, "PUT writes through to the UFS"
    for i, s3 in enumerate(clients):
        assert get(s3, b, "w/obj") == first, f"fresh bytes through worker {i}"
        assert get(s3, b, "w/obj", Range="bytes=100-199") == first[100:200]
    # Every worker has read (and its owner cached) the first version; the overwrite goes through another.
    clients[-1].put_object(Bucket=b, Key="w/obj", Body=second)
    assert ufs.read("w/obj") == second
    for i, s3 in enumerate(clients):
        assert s3.head_object(Bucket=b, Key="w/obj")["ContentLength"] == len(second), f"head after overwrite, worker {i}"
        assert get(s3, b, "w/obj") == second, f"no stale bytes through worker {i}"
    clients[1 % len(clients)].delete_object(Bucket=b, Key="w/obj")
    assert ufs.read("w/obj") is None, "DELETE deletes in the UFS"
    for s3 in clients:
        assert error_code(s3.head_object, Bucket=b, Key="w/obj")[1] == 404
        assert error_code(s3.get_object, Bucket=b, Key="w/obj")[0] == "NoSuchKey"
    clients[0].delete_object(Bucket=b, Key="w/obj")  # deleting what is gone succeeds, as on S3

    clients[0].put_object(Bucket=b, Key="w/src", Body=first)
    out = clients[0].copy_object(Bucket=b, Key="w/copy", CopySource={"Bucket": b, "Key": "w/src"})
    assert out["CopyObjectResult"]["ETag"], out
    for s3 in clients:
        assert get(s3, b, "w/copy") == first
    assert error_code(clients[0].copy_object, Bucket=b, Key="w/c2", CopySource={"Bucket": b, "Key": "w/none"})[0] == "NoSuchKey"
    out = clients[0].delete_objects(Bucket=b, Delete={"Objects": [{"Key": "w/src"}, {"Key": "w/copy"}, {"Key": "w/none"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["w/copy", "w/none", "w/src"], out
    assert ufs.read("w/src") is None and ufs.read("w/copy") is None
    print(f"ok: writes to {b}")


def check_multipart(clients, ufs):
    b = ufs.bucket
    s3 = clients[0]
    sizes = [5 * MIB, 5 * MIB, 2 * MIB + 12345]
    parts = [pattern(n, f"part{i}") for i, n in enumerate(sizes)]
    whole = b"".join(parts)
    up = s3.create_multipart_upload(Bucket=b, Key="mp/big.bin")
    uid = up["UploadId"]
    etags = []
    for i, p in enumerate(parts):
        r = s3.upload_part(Bucket=b, Key="mp/big.bin", UploadId=uid, PartNumber=i + 1, Body=p)
        assert r["ETag"].strip('"') == hashlib.md5(p).hexdigest(), r
        etags.append(r["ETag"])
    listed = s3.list_parts(Bucket=b, Key="mp/big.bin", UploadId=uid)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3], listed
    assert [p["Size"] for p in listed["Parts"]] == sizes, listed
    bad = [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]
    assert error_code(s3.complete_multipart_upload, Bucket=b, Key="mp/big.bin", UploadId=uid, MultipartUpload={"Parts": bad})[0] == "InvalidPartOrder"
    bad = [{"PartNumber": 1, "ETag": etags[1]}]
    assert error_code(s3.complete_multipart_upload, Bucket=b, Key="mp/big.bin", UploadId=uid, MultipartUpload={"Parts": bad})[0] == "InvalidPart"
    done = [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]
    out = s3.complete_multipart_upload(Bucket=b, Key="mp/big.bin", UploadId=uid, MultipartUpload={"Parts": done})
    assert out["ETag"], out
    assert hashlib.sha256(ufs.read("mp/big.bin")).digest() == hashlib.sha256(whole).digest(), "the UFS holds the parts"
    for i, c in enumerate(clients):
        assert hashlib.sha256(get(c, b, "mp/big.bin")).digest() == hashlib.sha256(whole).digest(), f"worker {i}"
    assert error_code(s3.list_parts, Bucket=b, Key="mp/big.bin", UploadId=uid)[0] == "NoSuchUpload", "completed"

    up = s3.create_multipart_upload(Bucket=b, Key="mp/aborted")
    s3.upload_part(Bucket=b, Key="mp/aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 100)
    s3.abort_multipart_upload(Bucket=b, Key="mp/aborted", UploadId=up["UploadId"])
    assert error_code(s3.upload_part, Bucket=b, Key="mp/aborted", UploadId=up["UploadId"], PartNumber=2, Body=b"y")[0] == "NoSuchUpload"
    assert ufs.read("mp/aborted") is None
    too_small = s3.create_multipart_upload(Bucket=b, Key="mp/small")
    e1 = s3.upload_part(Bucket=b, Key="mp/small", UploadId=too_small["UploadId"], PartNumber=1, Body=b"a")["ETag"]
    e2 = s3.upload_part(Bucket=b, Key="mp/small", UploadId=too_small["UploadId"], PartNumber=2, Body=b"b")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}
    assert error_code(s3.complete_multipart_upload, Bucket=b, Key="mp/small", UploadId=too_small["UploadId"], MultipartUpload=parts)[0] == "EntityTooSmall"

    # boto3's managed transfer: concurrent part uploads, then concurrent ranged downloads.
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "up.bin"), os.path.join(tmp, "down.bin")
        with open(src, "wb") as f:
            f.write(whole)
        s3.upload_file(src, b, "mp/managed.bin", Config=transfer)
        clients[-1].download_file(b, "mp/managed.bin", dst, Config=transfer)
        with open(dst, "rb") as f:
            assert f.read() == whole, "managed upload, then download through another worker"
    print(f"ok: multipart to {b}")


def check_auth(endpoint, bucket):
    wrong_secret = client(endpoint, secret_key="not-the-secret")
    assert error_code(wrong_secret.list_objects_v2, Bucket=bucket) == ("SignatureDoesNotMatch", 403)
    assert error_code(wrong_secret.put_object, Bucket=bucket, Key="auth/x", Body=b"x")[1] == 403
    unknown = client(endpoint, access_key="nobody")
    assert error_code(unknown.get_object, Bucket=bucket, Key="read/obj.bin") == ("InvalidAccessKeyId", 403)
    anon = client(endpoint, unsigned=True)
    assert anon.get_object(Bucket=bucket, Key="read/obj.bin")["Body"].read(), "anonymous read is on"
    assert anon.list_objects_v2(Bucket=bucket, Prefix="read/")["KeyCount"] >= 1
    assert anon.list_buckets()["Buckets"]
    assert error_code(anon.put_object, Bucket=bucket, Key="auth/x", Body=b"x") == ("AccessDenied", 403)
    assert error_code(anon.delete_object, Bucket=bucket, Key="read/obj.bin") == ("AccessDenied", 403)
    print("ok: signatures and anonymous reads")


def suite():
    clients = [client(e) for e in ENDPOINTS]
    ufses = [FileUfs()]
    if os.environ.get("LOAM_MOTO_ENDPOINT"):
        ufses.append(MotoUfs())
    names = [bk["Name"] for bk in clients[0].list_buckets()["Buckets"]]
    assert sorted(names) == sorted(u.bucket for u in ufses), names
    for u in ufses:
        clients[0].head_bucket(Bucket=u.bucket)
        check_listing(clients[0], u)
        check_reads(clients, u)
        check_writes(clients, u)
        check_multipart(clients, u)
    check_auth(ENDPOINTS[0], "data")


def words(start, end):
    """Bytes [start, end) of the big file: 8-byte little-endian words holding their own offsets."""
    first, last = start // 8, (end + 7) // 8
    raw = struct.pack(f"<{last - first}Q", *range(first * 8, last * 8, 8))
    return raw[start - first * 8 : end - first * 8]


def ranges():
    key, size = os.environ["LOAM_BIG_KEY"], int(os.environ["LOAM_BIG_SIZE"])
    count = int(os.environ["LOAM_RANGE_COUNT"])
    rng = random.Random(int(os.environ.get("LOAM_RANGE_SEED", "7")))
    clients = [client(e) for e in ENDPOINTS]
    assert clients[0].head_object(Bucket="data", Key=key)["ContentLength"] == size
    total = 0
    for n in range(count):
        s3 = clients[n % len(clients)]
        kind = rng.random()
        if kind < 0.1:
            length = rng.randint(1, 256 * 1024)
            r, want = f"bytes=-{length}", (size - length, size)
        elif kind < 0.2:
            start = rng.randrange(size - 1024 * 1024, size)
            r, want = f"bytes={start}-", (start, size)
        else:
            start, length = rng.randrange(0, size), rng.randint(1, 2 * 1024 * 1024)
            r, want = f"bytes={start}-{start + length - 1}", (start, min(size, start + length))
        got = get(s3, "data", key, Range=r)
        assert len(got) == want[1] - want[0], f"{r}: {len(got)} bytes"
        assert got == words(*want), f"{r}: the bytes differ from the pattern"
        total += len(got)
    print(f"ok: {count} ranges, {total} bytes of a {size}-byte object")


if __name__ == "__main__":
    {"suite": suite, "ranges": ranges}[sys.argv[1]]()
