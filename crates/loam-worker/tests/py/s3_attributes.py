"""Stored checksums on GET/HEAD (ChecksumMode), GetObjectAttributes and conditional
CompleteMultipartUpload through the workers' S3 API, seen through boto3.

Run by crates/loam-worker/tests/worker/s3_uploads.rs with the environment of s3_boto3.py; bucket "data"
is the file:// UFS under LOAM_UFS_DIR, bucket "s3data" a moto bucket (which keeps only the checksums known
before the body: there the others are absent, as docs/S3-COMPATIBILITY.md says).

Modes (argv[1:], run in order):

  checksums   GET/HEAD with and without ChecksumMode for each algorithm, ranges, partNumber, multipart
  attributes  GetObjectAttributes: every attribute, ObjectParts paging, errors, who may call it
  conditional CompleteMultipartUpload with If-None-Match / If-Match: 412 and nothing written, the
              idempotent repeat, and two uploads racing through two workers, in both buckets

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import base64
import os
import sys
import threading
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from s3_boto3 import ACCESS_KEY, CONFIG, ENDPOINTS, MIB, SECRET_KEY, FileUfs, MotoUfs, client, get, pattern  # noqa: E402
from s3_multipart import upload  # noqa: E402
from s3_uploads import ALGORITHMS, checksum, refusal  # noqa: E402

B = "data"
FIELDS = ["ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256"]


def field(a):
    return "ChecksumCRC64NVME" if a == "CRC64NVME" else f"Checksum{a}"


def sums(r):
    """The checksum fields of an answer, and the raw x-amz-checksum-* headers (none must hide)."""
    headers = {k: v for k, v in r["ResponseMetadata"]["HTTPHeaders"].items() if k.startswith("x-amz-checksum")}
    return {f: r[f] for f in FIELDS + ["ChecksumType"] if f in r}, headers


def plain_client(endpoint):
    """A client that does not ask for checksums (botocore asks on every GetObject by default)."""
    config = CONFIG.merge(Config(response_checksum_validation="when_required"))
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1", config=config
    )


def checksums():
    clients = [client(e) for e in ENDPOINTS]
    plain_clients = [plain_client(e) for e in ENDPOINTS]
    s3 = clients[0]
    data = pattern(300_000, "sums")
    for a in ALGORITHMS:
        k = f"sums/{a.lower()}"
        s3.put_object(Bucket=B, Key=k, Body=data, ChecksumAlgorithm=a)
        want = {field(a): checksum(a, data), "ChecksumType": "FULL_OBJECT"}
        for i, (c, p) in enumerate(zip(clients, plain_clients)):
            r = c.get_object(Bucket=B, Key=k, ChecksumMode="ENABLED")
            assert r["Body"].read() == data and sums(r)[0] == want, (a, i, sums(r))
            h = c.head_object(Bucket=B, Key=k, ChecksumMode="ENABLED")
            assert sums(h)[0] == want, (a, i, sums(h))
            for plain in (p.get_object(Bucket=B, Key=k), p.head_object(Bucket=B, Key=k)):
                assert sums(plain) == ({}, {}), ("no checksum without ChecksumMode", a, sums(plain))
        r = s3.get_object(Bucket=B, Key=k, ChecksumMode="ENABLED", Range="bytes=0-99")
        assert r["Body"].read() == data[:100] and sums(r) == ({}, {}), ("a range has no whole checksum", sums(r))
        r = s3.get_object(Bucket=B, Key=k, ChecksumMode="ENABLED", PartNumber=1)
        assert sums(r)[0] == want, ("part 1 of a single-part object is the object", sums(r))
    print("ok: checksums of single-part objects")

    parts = [pattern(5 * MIB, "s1"), pattern(5 * MIB, "s2"), pattern(77_777, "s3")]
    data = b"".join(parts)
    up, listed = upload(s3, "sums/mp-crc32", parts, ChecksumAlgorithm="CRC32")
    raw = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in listed)
    composite = base64.b64encode(zlib.crc32(raw).to_bytes(4, "big")).decode() + "-3"
    try:  # a composite checksum that is not the parts': BadDigest, nothing written, the upload stays
        s3.complete_multipart_upload(Bucket=B, Key="sums/mp-crc32", UploadId=up, MultipartUpload={"Parts": listed},
                                     ChecksumCRC32="AAAAAA==-3")
        raise AssertionError("a wrong composite checksum was accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "BadDigest", e.response
    assert "Contents" not in s3.list_objects_v2(Bucket=B, Prefix="sums/mp-crc32"), "nothing written"
    s3.complete_multipart_upload(Bucket=B, Key="sums/mp-crc32", UploadId=up, MultipartUpload={"Parts": listed},
                                 ChecksumCRC32=composite)
    for c in clients:
        h = c.head_object(Bucket=B, Key="sums/mp-crc32", ChecksumMode="ENABLED")
        assert sums(h)[0] == {"ChecksumCRC32": composite, "ChecksumType": "COMPOSITE"}, sums(h)
        r = c.get_object(Bucket=B, Key="sums/mp-crc32", ChecksumMode="ENABLED")
        assert r["Body"].read() == data and r["ChecksumCRC32"] == composite, sums(r)
        for n in (1, 2, 3):
            # botocore checks the part's bytes against the part's checksum.
            r = c.get_object(Bucket=B, Key="sums/mp-crc32", ChecksumMode="ENABLED", PartNumber=n)
            assert r["Body"].read() == parts[n - 1] and r["ChecksumCRC32"] == listed[n - 1]["ChecksumCRC32"], (n, sums(r))
            assert r["ChecksumType"] == "COMPOSITE", ("a part answers the object's checksum type", n, sums(r))
            h = c.head_object(Bucket=B, Key="sums/mp-crc32", ChecksumMode="ENABLED", PartNumber=n)
            assert h["ChecksumCRC32"] == listed[n - 1]["ChecksumCRC32"] and h["PartsCount"] == 3, (n, sums(h))
    r = plain_clients[1].get_object(Bucket=B, Key="sums/mp-crc32", PartNumber=2)
    assert r["Body"].read() == parts[1] and sums(r) == ({}, {}), sums(r)
    up, listed = upload(s3, "sums/mp-crc64", parts[:2], ChecksumAlgorithm="CRC64NVME")
    s3.complete_multipart_upload(Bucket=B, Key="sums/mp-crc64", UploadId=up, MultipartUpload={"Parts": listed})
    h = clients[1].head_object(Bucket=B, Key="sums/mp-crc64", ChecksumMode="ENABLED")
    want = {"ChecksumCRC64NVME": checksum("CRC64NVME", b"".join(parts[:2])), "ChecksumType": "FULL_OBJECT"}
    assert sums(h)[0] == want, sums(h)
    print("ok: checksums of multipart objects")

    # An S3 UFS keeps the checksums known before the body: a header's, a multipart upload's (composite, or
    # full-object combined from the parts' CRCs) and the parts' (where they fit S3's 2 KB of user
    # metadata), answered through every worker. (Not a trailer's: computed while the body streams.)
    s3.put_object(Bucket="s3data", Key="sums/on-s3", Body=data[:1000], ChecksumAlgorithm="SHA256")
    for c in clients:
        r = c.get_object(Bucket="s3data", Key="sums/on-s3", ChecksumMode="ENABLED")
        assert r["Body"].read() == data[:1000], "read back"
        assert sums(r)[0] == {"ChecksumSHA256": checksum("SHA256", data[:1000]), "ChecksumType": "FULL_OBJECT"}, sums(r)
    up, listed = upload(s3, "sums/mp-on-s3", parts, bucket="s3data", ChecksumAlgorithm="CRC32")
    s3.complete_multipart_upload(Bucket="s3data", Key="sums/mp-on-s3", UploadId=up, MultipartUpload={"Parts": listed})
    raw = b"".join(base64.b64decode(p["ChecksumCRC32"]) for p in listed)
    composite = base64.b64encode(zlib.crc32(raw).to_bytes(4, "big")).decode() + "-3"
    for c in clients:
        h = c.head_object(Bucket="s3data", Key="sums/mp-on-s3", ChecksumMode="ENABLED")
        assert sums(h)[0] == {"ChecksumCRC32": composite, "ChecksumType": "COMPOSITE"}, sums(h)
        for n in (1, 2, 3):
            r = c.get_object(Bucket="s3data", Key="sums/mp-on-s3", ChecksumMode="ENABLED", PartNumber=n)
            assert r["Body"].read() == parts[n - 1] and r["PartsCount"] == 3, (n, sums(r))
            assert sums(r)[0] == {"ChecksumCRC32": listed[n - 1]["ChecksumCRC32"], "ChecksumType": "COMPOSITE"}, (n, sums(r))
    for algorithm in ("CRC64NVME", "CRC32", "CRC32C"):
        key = f"sums/mp-full-{algorithm}-on-s3"
        up, listed = upload(s3, key, parts, bucket="s3data", ChecksumAlgorithm=algorithm, ChecksumType="FULL_OBJECT")
        r = s3.complete_multipart_upload(Bucket="s3data", Key=key, UploadId=up, MultipartUpload={"Parts": listed})
        want = {f"Checksum{algorithm}": checksum(algorithm, data), "ChecksumType": "FULL_OBJECT"}
        assert {k: r[k] for k in want} == want, (algorithm, r)
        for c in clients:
            assert sums(c.head_object(Bucket="s3data", Key=key, ChecksumMode="ENABLED"))[0] == want, algorithm
    print("ok: an S3 UFS answers the checksums known before the body")


ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def attributes():
    clients = [client(e) for e in ENDPOINTS]
    s3 = clients[0]
    data = pattern(1234, "attrs")
    s3.put_object(Bucket=B, Key="attrs/single", Body=data, ChecksumAlgorithm="SHA1")
    etag = s3.head_object(Bucket=B, Key="attrs/single")["ETag"]
    for c in clients:
        r = c.get_object_attributes(Bucket=B, Key="attrs/single", ObjectAttributes=ALL)
        assert r["ETag"] == etag.strip('"') and not r["ETag"].startswith('"'), ("ETag without quotes", r)
        assert r["Checksum"] == {"ChecksumSHA1": checksum("SHA1", data), "ChecksumType": "FULL_OBJECT"}, r
        assert r["StorageClass"] == "STANDARD" and r["ObjectSize"] == len(data), r
        assert "ObjectParts" not in r and "LastModified" in r, r
    r = s3.get_object_attributes(Bucket=B, Key="attrs/single", ObjectAttributes=["ObjectSize"])
    assert r["ObjectSize"] == len(data) and not {"ETag", "Checksum", "StorageClass"} & r.keys(), r

    parts = [pattern(5 * MIB, f"ap{n}") for n in range(1, 5)] + [pattern(999, "ap5")]
    up, listed = upload(s3, "attrs/mp", parts, ChecksumAlgorithm="CRC32C")
    s3.complete_multipart_upload(Bucket=B, Key="attrs/mp", UploadId=up, MultipartUpload={"Parts": listed})
    want = [(n, len(p), listed[n - 1]["ChecksumCRC32C"]) for n, p in enumerate(parts, 1)]
    seen, marker, pages = [], 0, 0
    while True:
        r = clients[2].get_object_attributes(Bucket=B, Key="attrs/mp", ObjectAttributes=ALL, MaxParts=2, PartNumberMarker=marker)
        op = r["ObjectParts"]
        pages += 1
        assert op["TotalPartsCount"] == 5 and op["MaxParts"] == 2 and op["PartNumberMarker"] == marker, op
        seen += [(p["PartNumber"], p["Size"], p["ChecksumCRC32C"]) for p in op.get("Parts", [])]
        if not op["IsTruncated"]:
            break
        assert op["NextPartNumberMarker"] == seen[-1][0], op
        marker = op["NextPartNumberMarker"]
    assert seen == want and pages == 3, (seen, pages)
    assert r["ETag"].endswith("-5") and r["ObjectSize"] == sum(map(len, parts)), r
    assert r["Checksum"]["ChecksumType"] == "COMPOSITE" and r["Checksum"]["ChecksumCRC32C"].endswith("-5"), r

    # Without checksums, a multipart object lists no parts (as S3), only their count.
    up, listed = upload(s3, "attrs/mp-plain", parts[3:])
    s3.complete_multipart_upload(Bucket=B, Key="attrs/mp-plain", UploadId=up, MultipartUpload={"Parts": listed})
    r = s3.get_object_attributes(Bucket=B, Key="attrs/mp-plain", ObjectAttributes=ALL)
    assert r["ObjectParts"] == {"TotalPartsCount": 2} and "Checksum" not in r, r
    # On an S3 UFS the part count is the completing worker's record.
    up, listed = upload(s3, "attrs/mp", parts[3:], bucket="s3data")
    s3.complete_multipart_upload(Bucket="s3data", Key="attrs/mp", UploadId=up, MultipartUpload={"Parts": listed})
    r = s3.get_object_attributes(Bucket="s3data", Key="attrs/mp", ObjectAttributes=ALL)
    assert r["ObjectParts"] == {"TotalPartsCount": 2} and r["ObjectSize"] == len(parts[3]) + len(parts[4]), r

    assert refusal(s3.get_object_attributes, Bucket=B, Key="attrs/missing", ObjectAttributes=ALL) == ("NoSuchKey", 404)
    assert refusal(s3.get_object_attributes, Bucket=B, Key="attrs/single", ObjectAttributes=["Size"]) == ("InvalidArgument", 400)
    assert refusal(s3.get_object_attributes, Bucket="nobucket", Key="k", ObjectAttributes=ALL)[1] == 404
    anonymous = client(ENDPOINTS[0], unsigned=True)
    assert refusal(anonymous.get_object_attributes, Bucket=B, Key="attrs/single", ObjectAttributes=ALL) == ("AccessDenied", 403)
    assert get(anonymous, B, "attrs/single") == data, "anonymous reads stay"
    print("ok: GetObjectAttributes")


def complete(s3, key, up, listed, bucket=B, **cond):
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": listed}, **cond)


def conditional_in(ufs):
    clients = [client(e) for e in ENDPOINTS]
    s3, bucket = clients[0], ufs.bucket
    a = [pattern(5 * MIB, "ca1"), pattern(100, "ca2")]
    b = [pattern(5 * MIB, "cb1"), pattern(200, "cb2")]
    up_a, listed_a = upload(s3, "cond/k", a, bucket=bucket)
    first = complete(s3, "cond/k", up_a, listed_a, bucket=bucket, IfNoneMatch="*")
    assert ufs.read("cond/k") == b"".join(a)
    again = complete(s3, "cond/k", up_a, listed_a, bucket=bucket, IfNoneMatch="*")
    assert again["ETag"] == first["ETag"], ("a repeated Complete answers the same", first, again)
    up_b, listed_b = upload(s3, "cond/k", b, bucket=bucket)
    assert refusal(complete, s3=s3, bucket=bucket, key="cond/k", up=up_b, listed=listed_b, IfNoneMatch="*") == ("PreconditionFailed", 412)
    assert refusal(complete, s3=s3, bucket=bucket, key="cond/k", up=up_b, listed=listed_b, IfMatch='"0123456789abcdef0123456789abcdef-2"') == ("PreconditionFailed", 412)
    for c in clients:
        assert get(c, bucket, "cond/k") == b"".join(a), "nothing written"
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="cond/k", UploadId=up_b)["Parts"]] == [1, 2], "the upload stays"
    r = complete(s3, "cond/k", up_b, listed_b, bucket=bucket, IfMatch=first["ETag"])
    assert ufs.read("cond/k") == b"".join(b) and r["ETag"] != first["ETag"], r
    up_c, listed_c = upload(s3, "cond/missing", a, bucket=bucket)
    assert refusal(complete, s3=s3, bucket=bucket, key="cond/missing", up=up_c, listed=listed_c, IfMatch=first["ETag"]) == ("NoSuchKey", 404)
    assert ufs.read("cond/missing") is None
    s3.abort_multipart_upload(Bucket=bucket, Key="cond/missing", UploadId=up_c)
    print(f"ok: conditional Complete in {bucket}")

    # Two uploads to one key, each completed through its own worker at once: one object, one winner. In
    # odd rounds worker 0's object is much larger, so that the other usually lands while it is being
    # written: then the loser passed the early check and the UFS refuses its write (the 412 comes inside
    # the kept-alive answer).
    winners = set()
    for round_ in range(4):
        key = f"cond/race/{round_}"
        bodies = [[pattern(5 * MIB, f"r{round_}w{w}"), pattern(300 + w, f"r{round_}t{w}")] for w in (0, 1)]
        if round_ % 2:
            bodies = [[pattern(5 * MIB, f"r{round_}big{n}") for n in range(6)], [b"tiny"]]
        ups = [upload(clients[w], key, bodies[w], bucket=bucket) for w in (0, 1)]
        results = {}

        def run(w):
            try:
                complete(client(ENDPOINTS[w]), key, ups[w][0], ups[w][1], bucket=bucket, IfNoneMatch="*")
                results[w] = "ok"
            except ClientError as e:
                results[w] = e.response["Error"]["Code"]

        threads = [threading.Thread(target=run, args=(w,)) for w in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [w for w, r in results.items() if r == "ok"]
        assert len(won) == 1 and results[1 - won[0]] == "PreconditionFailed", results
        for c in clients:
            assert get(c, bucket, key) == b"".join(bodies[won[0]]), (key, results)
        lost = 1 - won[0]
        kept = clients[lost].list_parts(Bucket=bucket, Key=key, UploadId=ups[lost][0])["Parts"]
        assert len(kept) == len(bodies[lost]), ("the losing upload stays", results)
        winners.add(won[0])
    print(f"ok: conditional Completes racing through two workers in {bucket} (winners: {sorted(winners)})")


def conditional():
    conditional_in(FileUfs())
    # moto decides every condition here: If-None-Match: * on its PutObject and Complete (the 30 MiB race
    # object is a multipart upload there), If-Match on its PutObject (the If-Match objects are under the
    # 8 MiB that makes a multipart upload; moto ignores If-Match on Complete, see docs/SEMANTICS.md).
    conditional_in(MotoUfs())


if __name__ == "__main__":
    for mode in sys.argv[1:]:
        {"checksums": checksums, "attributes": attributes, "conditional": conditional}[mode]()
