"""Multipart uploads through the workers' S3 API, seen through boto3.

Run by crates/loam-worker/tests/worker/s3_uploads.rs with the test venv's python (awscrt installed),
with the environment of s3_boto3.py (whose helpers it uses); bucket "data" is the file:// UFS under
LOAM_UFS_DIR, bucket "s3data" a moto bucket. Every request of one upload goes to the first worker (uploads
live where they were created); objects are read back through every worker.

Modes (argv[1:], run in order):

  complete  idempotent CompleteMultipartUpload, and what a completed upload no longer takes; composite
            and full-object checksums; boto3's upload_file; GetObject/HeadObject partNumber and PartsCount;
            part numbers out of range
  copy      UploadPartCopy with and without ranges, across buckets, and its range errors
  listing   ListParts and ListMultipartUploads paging (prefix, delimiter, markers, max)
  race      Complete racing a second Complete and an Abort ends with one consistent object
  expiry    (workers with a 2 s expiry) an abandoned upload and a completed upload's record go

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import base64
import os
import sys
import tempfile
import threading
import time
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from s3_boto3 import ENDPOINTS, MIB, FileUfs, MotoUfs, client, get, pattern  # noqa: E402
from s3_uploads import checksum, refusal  # noqa: E402

B = "data"


def upload(s3, key, parts, bucket=B, **create):
    """Creates an upload of `parts` (bytes each); returns (upload id, the Complete part list)."""
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    listed = []
    for i, p in enumerate(parts, 1):
        extra = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i, Body=p, **extra)
        entry = {"PartNumber": i, "ETag": r["ETag"]}
        for f in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
            if f in r:
                entry[f] = r[f]
        listed.append(entry)
    return up, listed


def everywhere(clients, key, want, bucket=B):
    for i, s3 in enumerate(clients):
        assert get(s3, bucket, key) == want, f"{bucket}/{key} through worker {i}"


def complete():
    clients = [client(e) for e in ENDPOINTS]
    s3 = clients[0]
    parts = [pattern(5 * MIB, "p1"), pattern(123_456, "p2")]
    data = b"".join(parts)
    up, listed = upload(s3, "mp/idem", parts)
    first = s3.complete_multipart_upload(Bucket=B, Key="mp/idem", UploadId=up, MultipartUpload={"Parts": listed})
    again = s3.complete_multipart_upload(Bucket=B, Key="mp/idem", UploadId=up, MultipartUpload={"Parts": listed})
    assert first["ETag"] == again["ETag"] and again["Key"] == "mp/idem", (first, again)
    everywhere(clients, "mp/idem", data)
    # A completed upload is no upload for anything else.
    assert refusal(s3.complete_multipart_upload, Bucket=B, Key="mp/idem", UploadId=up, MultipartUpload={"Parts": listed[:1]}) == ("NoSuchUpload", 404)
    assert refusal(s3.upload_part, Bucket=B, Key="mp/idem", UploadId=up, PartNumber=3, Body=b"x") == ("NoSuchUpload", 404)
    assert refusal(s3.list_parts, Bucket=B, Key="mp/idem", UploadId=up) == ("NoSuchUpload", 404)
    assert refusal(s3.abort_multipart_upload, Bucket=B, Key="mp/idem", UploadId=up) == ("NoSuchUpload", 404)
    everywhere(clients, "mp/idem", data)
    print("ok: idempotent Complete")

    # partNumber and PartsCount (through any worker: on file:// they are stored with the object).
    r = clients[2].get_object(Bucket=B, Key="mp/idem", PartNumber=2)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206 and r["PartsCount"] == 2, r
    assert r["Body"].read() == parts[1]
    assert r["ContentRange"] == f"bytes {len(parts[0])}-{len(data) - 1}/{len(data)}", r
    assert get(s3, B, "mp/idem", PartNumber=1) == parts[0]
    h = clients[1].head_object(Bucket=B, Key="mp/idem", PartNumber=1)
    assert h["ContentLength"] == len(parts[0]) and h["PartsCount"] == 2, h
    assert refusal(s3.get_object, Bucket=B, Key="mp/idem", PartNumber=3) == ("InvalidPartNumber", 416)
    assert refusal(s3.get_object, Bucket=B, Key="mp/idem", PartNumber=1, Range="bytes=0-1") == ("InvalidRequest", 400)
    s3.put_object(Bucket=B, Key="mp/single", Body=b"single part")
    r = s3.get_object(Bucket=B, Key="mp/single", PartNumber=1)
    assert r["Body"].read() == b"single part" and "PartsCount" not in r, r
    assert refusal(s3.get_object, Bucket=B, Key="mp/single", PartNumber=2) == ("InvalidPartNumber", 416)
    # Overwritten by a PutObject, the object is a single part again.
    s3.put_object(Bucket=B, Key="mp/idem", Body=b"replaced")
    assert refusal(s3.get_object, Bucket=B, Key="mp/idem", PartNumber=2) == ("InvalidPartNumber", 416)
    # On an S3 UFS the sizes are this worker's record (the UFS keeps no metadata written after the body).
    up, listed = upload(s3, "mp/on-s3", parts, bucket="s3data")
    s3.complete_multipart_upload(Bucket="s3data", Key="mp/on-s3", UploadId=up, MultipartUpload={"Parts": listed})
    r = s3.get_object(Bucket="s3data", Key="mp/on-s3", PartNumber=2)
    assert r["PartsCount"] == 2 and r["Body"].read() == parts[1], r
    everywhere(clients, "mp/on-s3", data, bucket="s3data")
    print("ok: partNumber and PartsCount")

    # Part numbers as S3 allows them.
    up = s3.create_multipart_upload(Bucket=B, Key="mp/numbers")["UploadId"]
    for n in (0, 10001):
        assert refusal(s3.upload_part, Bucket=B, Key="mp/numbers", UploadId=up, PartNumber=n, Body=b"x") == ("InvalidArgument", 400), n
    s3.upload_part(Bucket=B, Key="mp/numbers", UploadId=up, PartNumber=10000, Body=b"last")
    s3.abort_multipart_upload(Bucket=B, Key="mp/numbers", UploadId=up)
    print("ok: part numbers")

    # A part uploaded twice, listed twice (ceph/s3-tests' resend_first_finishes_last: [the replaced
    # upload's ETag, the stored one's]): the last entry of a repeated number counts, as RGW takes it.
    a, b_, two = pattern(5 * MIB, "A"), pattern(5 * MIB, "B"), pattern(5 * MIB, "2")
    for b in (B, "s3data"):
        up = s3.create_multipart_upload(Bucket=b, Key="mp/resent")["UploadId"]
        first = s3.upload_part(Bucket=b, Key="mp/resent", UploadId=up, PartNumber=1, Body=b_)["ETag"]
        stored = s3.upload_part(Bucket=b, Key="mp/resent", UploadId=up, PartNumber=1, Body=a)["ETag"]
        last = s3.upload_part(Bucket=b, Key="mp/resent", UploadId=up, PartNumber=2, Body=two)["ETag"]
        p1, p1_old, p2 = {"PartNumber": 1, "ETag": stored}, {"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": last}
        for wrong, code in [([p1, p1_old], "InvalidPart"), ([p2, p1], "InvalidPartOrder"), ([p1, p2, p1], "InvalidPartOrder")]:
            got = refusal(s3.complete_multipart_upload, Bucket=b, Key="mp/resent", UploadId=up, MultipartUpload={"Parts": wrong})
            assert got == (code, 400), (b, wrong, got)
        if b == B:
            assert FileUfs().read("mp/resent") is None, "nothing written by a refused Complete"
        s3.complete_multipart_upload(Bucket=b, Key="mp/resent", UploadId=up, MultipartUpload={"Parts": [p1_old, p1, p2]})
        everywhere(clients, "mp/resent", a + two, bucket=b)
    print("ok: a part listed twice")

    # Checksums: COMPOSITE (CRC32's default), and FULL_OBJECT (CRC64NVME's only kind).
    up, listed = upload(s3, "mp/crc32", parts, ChecksumAlgorithm="CRC32")
    r = s3.complete_multipart_upload(Bucket=B, Key="mp/crc32", UploadId=up, MultipartUpload={"Parts": listed})
    raw = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in listed)
    want = base64.b64encode(zlib.crc32(raw).to_bytes(4, "big")).decode() + "-2"
    assert r.get("ChecksumCRC32") == want and r.get("ChecksumType") == "COMPOSITE", r
    bad = [dict(listed[0], ChecksumCRC32=checksum("CRC32", b"other")), listed[1]]
    up, listed = upload(s3, "mp/crc32-bad", parts, ChecksumAlgorithm="CRC32")
    assert refusal(s3.complete_multipart_upload, Bucket=B, Key="mp/crc32-bad", UploadId=up, MultipartUpload={"Parts": bad}) == ("InvalidPart", 400)
    s3.abort_multipart_upload(Bucket=B, Key="mp/crc32-bad", UploadId=up)
    up, listed = upload(s3, "mp/crc64", parts, ChecksumAlgorithm="CRC64NVME")
    r = s3.complete_multipart_upload(Bucket=B, Key="mp/crc64", UploadId=up, MultipartUpload={"Parts": listed})
    assert r.get("ChecksumCRC64NVME") == checksum("CRC64NVME", data) and r.get("ChecksumType") == "FULL_OBJECT", r
    everywhere(clients, "mp/crc64", data)
    print("ok: multipart checksums")

    # boto3's own multipart upload (s3transfer: CRC32 parts, concurrent UploadPart, Complete).
    big = pattern(17 * MIB + 3, "transfer")
    with tempfile.NamedTemporaryFile() as f:
        f.write(big)
        f.flush()
        cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
        s3.upload_file(f.name, B, "mp/transfer", Config=cfg)
    everywhere(clients, "mp/transfer", big)
    assert s3.head_object(Bucket=B, Key="mp/transfer", PartNumber=1)["PartsCount"] == 4
    print("ok: boto3 upload_file")


def copy():
    clients = [client(e) for e in ENDPOINTS]
    s3, moto = clients[0], MotoUfs()
    src = pattern(7 * MIB + 11, "copy-src")
    FileUfs().write("cp/src", src)
    moto.write("cp/src", src)
    up = s3.create_multipart_upload(Bucket=B, Key="cp/dst")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=B, Key="cp/dst", UploadId=up, PartNumber=1, CopySource={"Bucket": B, "Key": "cp/src"}, CopySourceRange=f"bytes=0-{5 * MIB - 1}")
    p2 = s3.upload_part_copy(Bucket=B, Key="cp/dst", UploadId=up, PartNumber=2, CopySource={"Bucket": B, "Key": "cp/src"})
    p3 = s3.upload_part_copy(Bucket=B, Key="cp/dst", UploadId=up, PartNumber=3, CopySource={"Bucket": moto.bucket, "Key": "cp/src"}, CopySourceRange=f"bytes={5 * MIB}-{len(src) - 1}")
    listed = [{"PartNumber": i, "ETag": p["CopyPartResult"]["ETag"]} for i, p in enumerate([p1, p2, p3], 1)]
    for bad, want in [
        ("bytes=0-", ("InvalidArgument", 400)),
        ("bytes=-5", ("InvalidArgument", 400)),
        ("bytes=0-2,4-5", ("InvalidArgument", 400)),
        ("bytes=hello-world", ("InvalidArgument", 400)),
        (f"bytes=0-{len(src)}", ("InvalidRange", 416)),
        ("bytes=9-8", ("InvalidRange", 416)),
    ]:
        got = refusal(s3.upload_part_copy, Bucket=B, Key="cp/dst", UploadId=up, PartNumber=4, CopySource={"Bucket": B, "Key": "cp/src"}, CopySourceRange=bad)
        assert got == want, (bad, got)
    got = refusal(s3.upload_part_copy, Bucket=B, Key="cp/dst", UploadId=up, PartNumber=4, CopySource={"Bucket": B, "Key": "cp/missing"})
    assert got == ("NoSuchKey", 404), got
    parts = s3.list_parts(Bucket=B, Key="cp/dst", UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2, 3], "a refused copy stores no part"
    s3.complete_multipart_upload(Bucket=B, Key="cp/dst", UploadId=up, MultipartUpload={"Parts": listed})
    everywhere(clients, "cp/dst", src[: 5 * MIB] + src + src[5 * MIB :])
    print("ok: UploadPartCopy")


def listing():
    s3 = client(ENDPOINTS[0])
    up = s3.create_multipart_upload(Bucket=B, Key="lp/k")["UploadId"]
    for n in range(1, 6):
        s3.upload_part(Bucket=B, Key="lp/k", UploadId=up, PartNumber=n, Body=pattern(10 + n, f"lp{n}"))
    seen, marker, pages = [], 0, 0
    while True:
        r = s3.list_parts(Bucket=B, Key="lp/k", UploadId=up, MaxParts=2, PartNumberMarker=marker)
        pages += 1
        seen += [(p["PartNumber"], p["Size"]) for p in r.get("Parts", [])]
        if not r["IsTruncated"]:
            break
        assert r["NextPartNumberMarker"] == seen[-1][0], r
        marker = r["NextPartNumberMarker"]
    assert seen == [(n, 10 + n) for n in range(1, 6)] and pages == 3, (seen, pages)
    s3.abort_multipart_upload(Bucket=B, Key="lp/k", UploadId=up)

    keys = ["lmu/a", "lmu/a", "lmu/b", "lmu/dir/c", "lmu/dir/d", "other/x"]
    ids = [(k, s3.create_multipart_upload(Bucket=B, Key=k)["UploadId"]) for k in keys]
    r = s3.list_multipart_uploads(Bucket=B, Prefix="lmu/")
    got = [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
    assert got == ids[:5] and not r["IsTruncated"], got
    r = s3.list_multipart_uploads(Bucket=B, Prefix="lmu/", Delimiter="/")
    assert [u["Key"] for u in r.get("Uploads", [])] == ["lmu/a", "lmu/a", "lmu/b"], r
    assert [p["Prefix"] for p in r.get("CommonPrefixes", [])] == ["lmu/dir/"], r
    seen, kw, pages = [], {}, 0
    while True:
        r = s3.list_multipart_uploads(Bucket=B, Prefix="lmu/", MaxUploads=2, **kw)
        pages += 1
        seen += [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "UploadIdMarker": r["NextUploadIdMarker"]}
    assert seen == ids[:5] and pages == 3, (seen, pages)
    r = s3.list_multipart_uploads(Bucket=B, KeyMarker="lmu/a")
    assert [u["Key"] for u in r.get("Uploads", [])] == ["lmu/b", "lmu/dir/c", "lmu/dir/d", "other/x"], r
    for k, i in ids:
        s3.abort_multipart_upload(Bucket=B, Key=k, UploadId=i)
    assert s3.list_multipart_uploads(Bucket=B).get("Uploads", []) == []
    print("ok: ListParts and ListMultipartUploads")


def race():
    clients = [client(e) for e in ENDPOINTS]
    s3 = clients[0]
    parts = [pattern(5 * MIB, "r1"), pattern(1000, "r2")]
    data = b"".join(parts)
    outcomes = set()
    for round_ in range(4):
        key = f"race/{round_}"
        up, listed = upload(s3, key, parts)
        results = {}

        def run(name, fn, **kw):
            try:
                results[name] = ("ok", fn(**kw).get("ETag"))
            except ClientError as e:
                results[name] = (e.response["Error"]["Code"], None)

        calls = [
            ("complete1", client(ENDPOINTS[0]).complete_multipart_upload, {"MultipartUpload": {"Parts": listed}}),
            ("complete2", client(ENDPOINTS[0]).complete_multipart_upload, {"MultipartUpload": {"Parts": listed}}),
            ("abort", client(ENDPOINTS[0]).abort_multipart_upload, {}),
        ]
        if round_ % 2:
            calls.reverse()
        threads = [threading.Thread(target=run, args=(n, f), kwargs=dict(Bucket=B, Key=key, UploadId=up, **kw)) for n, f, kw in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        completed = [v for n, v in results.items() if n.startswith("complete") and v[0] == "ok"]
        if completed:
            assert results["abort"][0] == "NoSuchUpload", results
            assert len({etag for _, etag in completed}) == 1, results
            assert all(v[0] in ("ok", "NoSuchUpload") for v in results.values()), results
            everywhere(clients, key, data)
            outcomes.add("completed")
        else:
            assert results["abort"][0] == "ok", results
            assert all(results[n][0] == "NoSuchUpload" for n in ("complete1", "complete2")), results
            assert FileUfs().read(key) is None
            outcomes.add("aborted")
    print(f"ok: Complete racing Complete and Abort ({', '.join(sorted(outcomes))})")


def expiry():
    s3 = client(ENDPOINTS[0])
    up = s3.create_multipart_upload(Bucket=B, Key="exp/abandoned")["UploadId"]
    s3.upload_part(Bucket=B, Key="exp/abandoned", UploadId=up, PartNumber=1, Body=b"left behind")
    done, listed = upload(s3, "exp/done", [b"small"])
    s3.complete_multipart_upload(Bucket=B, Key="exp/done", UploadId=done, MultipartUpload={"Parts": listed})
    deadline = time.monotonic() + 120
    while True:
        try:
            s3.list_parts(Bucket=B, Key="exp/abandoned", UploadId=up)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NoSuchUpload", e.response
            break
        assert time.monotonic() < deadline, "the abandoned upload never expired"
        time.sleep(0.2)
    assert s3.list_multipart_uploads(Bucket=B).get("Uploads", []) == []
    while True:
        try:
            s3.complete_multipart_upload(Bucket=B, Key="exp/done", UploadId=done, MultipartUpload={"Parts": listed})
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NoSuchUpload", e.response
            break
        assert time.monotonic() < deadline, "the completed upload's record never expired"
        time.sleep(0.2)
    assert get(s3, B, "exp/done") == b"small", "the object stays"
    print("ok: uploads expire")


if __name__ == "__main__":
    for mode in sys.argv[1:]:
        {"complete": complete, "copy": copy, "listing": listing, "race": race, "expiry": expiry}[mode]()
