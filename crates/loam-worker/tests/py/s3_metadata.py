"""Object metadata through the workers' S3 API, seen through boto3: stored with the bytes, answered on GET
and HEAD by every worker, GetObject's response-* overrides, CopyObject's COPY and REPLACE directives.

Run by crates/loam-worker/tests/worker/s3_metadata.rs with the test venv's python, with the environment
of s3_boto3.py; bucket "data" is the file:// UFS under LOAM_UFS_DIR, "s3data" a moto bucket (when
LOAM_MOTO_ENDPOINT is set).

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import base64
import datetime
import hashlib
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from botocore.exceptions import ClientError  # noqa: E402
from s3_boto3 import ENDPOINTS, UFS_DIR, FileUfs, MotoUfs, client, get  # noqa: E402

EXPIRES = datetime.datetime(2037, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
UNICODE = "grüße ✓"
# boto3 sends header values as Latin-1; S3 (and s3s) read RFC 2047 encoded words as the Unicode they encode.
UNICODE_WORD = "=?UTF-8?B?" + base64.b64encode(UNICODE.encode()).decode() + "?="
HEADERS = {
    "ContentType": "text/plain; charset=utf-8",
    "CacheControl": "max-age=60, public",
    "ContentDisposition": 'attachment; filename="a b.txt"',
    "ContentEncoding": "identity",
    "ContentLanguage": "de-CH",
    "Expires": EXPIRES,
}


def decoded(value):
    """A metadata value as the client meant it (RFC 2047 words decoded)."""
    if value.startswith("=?UTF-8?B?") and value.endswith("?="):
        return base64.b64decode(value[10:-2]).decode()
    return value


def check_headers(head, want_headers, want_user, etag, where):
    for field, value in want_headers.items():
        assert head.get(field) == value, f"{where}: {field} = {head.get(field)!r}, want {value!r}"
    user = {k: decoded(v) for k, v in head.get("Metadata", {}).items()}
    assert user == want_user, f"{where}: user metadata {user!r}, want {want_user!r}"
    assert head["ETag"] == f'"{etag}"', f"{where}: ETag {head['ETag']}, want the MD5 {etag}"


def error(fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__}({kwargs}) succeeded; a refusal was expected")


def metadata(ufs):
    w0, w1 = client(ENDPOINTS[0]), client(ENDPOINTS[-1])
    b, k = ufs.bucket, "meta/obj.txt"
    body = b"metadata travels with the bytes\n"
    md5 = hashlib.md5(body).hexdigest()
    user_sent = {"Mixed-Case": "v1", "uni": UNICODE_WORD}
    user = {"mixed-case": "v1", "uni": UNICODE}
    put = w0.put_object(Bucket=b, Key=k, Body=body, Metadata=user_sent, **HEADERS)
    assert put["ETag"] == f'"{md5}"', put
    for i, w in enumerate((w1, w0)):
        check_headers(w.head_object(Bucket=b, Key=k), HEADERS, user, md5, f"{b} HEAD via worker {i}")
        got = w.get_object(Bucket=b, Key=k)
        assert got["Body"].read() == body
        check_headers(got, HEADERS, user, md5, f"{b} GET via worker {i}")
    print(f"ok: {b}: every header and x-amz-meta-* round-trips through every worker")

    overrides = {
        "ResponseContentType": "application/x-override",
        "ResponseCacheControl": "no-store",
        "ResponseContentDisposition": "inline",
        "ResponseContentLanguage": "fr",
        "ResponseContentEncoding": "identity",
        "ResponseExpires": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
    }
    got = w1.get_object(Bucket=b, Key=k, **overrides)
    assert got["Body"].read() == body
    for field, value in overrides.items():
        assert got[field[len("Response"):]] == value, (field, got[field[len("Response"):]])
    print(f"ok: {b}: response-* overrides")

    # COPY (the default) keeps the source's metadata; REPLACE takes the request's.
    w0.copy_object(Bucket=b, Key="meta/copy", CopySource={"Bucket": b, "Key": k})
    check_headers(w1.head_object(Bucket=b, Key="meta/copy"), HEADERS, user, md5, f"{b} COPY")
    w0.copy_object(
        Bucket=b, Key="meta/replaced", CopySource={"Bucket": b, "Key": k}, MetadataDirective="REPLACE",
        ContentType="image/png", Metadata={"only": "this"},
    )
    head = w1.head_object(Bucket=b, Key="meta/replaced")
    check_headers(head, {"ContentType": "image/png"}, {"only": "this"}, md5, f"{b} REPLACE")
    assert "CacheControl" not in head and "Expires" not in head, head
    assert get(w1, b, "meta/replaced") == body
    # Onto itself: REPLACE changes the metadata (S3's way), COPY is S3's 400.
    code = error(w0.copy_object, Bucket=b, Key=k, CopySource={"Bucket": b, "Key": k})
    assert code == ("InvalidRequest", 400), code
    w0.copy_object(
        Bucket=b, Key=k, CopySource={"Bucket": b, "Key": k}, MetadataDirective="REPLACE",
        CacheControl="no-cache", Metadata={"second": "2"},
    )
    for i, w in enumerate((w1, w0)):
        head = w.head_object(Bucket=b, Key=k)
        check_headers(head, {"CacheControl": "no-cache", "ContentType": "binary/octet-stream"}, {"second": "2"}, md5,
                      f"{b} self-copy via worker {i}")
        assert "ContentLanguage" not in head, head
    assert get(w1, b, k) == body
    print(f"ok: {b}: CopyObject COPY, REPLACE and onto itself")

    # An overwrite without metadata clears it.
    w1.put_object(Bucket=b, Key=k, Body=b"plain")
    for i, w in enumerate((w0, w1)):
        head = w.head_object(Bucket=b, Key=k)
        check_headers(head, {"ContentType": "binary/octet-stream"}, {}, hashlib.md5(b"plain").hexdigest(),
                      f"{b} overwrite via worker {i}")
        assert "CacheControl" not in head and "Expires" not in head, head
    print(f"ok: {b}: an overwrite without metadata clears it")

    # Loam's reserved key and S3's 2 KB limit: 400, nothing written.
    for meta, want in (({"loam-meta": "x"}, "InvalidArgument"), ({"big": "x" * 2100}, "MetadataTooLarge")):
        code = error(w0.put_object, Bucket=b, Key="meta/refused", Body=b"x", Metadata=meta)
        assert code == (want, 400), code
        assert error(w1.head_object, Bucket=b, Key="meta/refused")[1] == 404
    print(f"ok: {b}: reserved and oversized metadata are refused")


def outside_rewrite():
    """A file rewritten outside Loam has none of the metadata stored for the version before."""
    w0, w1 = client(ENDPOINTS[0]), client(ENDPOINTS[-1])
    k = "meta/outside"
    w0.put_object(Bucket="data", Key=k, Body=b"v1", ContentType="text/csv", Metadata={"a": "b"})
    # Not read through Loam before the rewrite: a worker trusts what it read for max_age (docs/SEMANTICS.md).
    path = os.path.join(UFS_DIR, k)
    assert b"text/csv" in os.getxattr(path, "user.loam.meta"), "the record is an xattr of the file"
    with open(path, "r+b") as f:  # in place: the xattr stays, the version (length, time) changes
        f.write(b"version 2")
    for i, w in enumerate((w0, w1)):
        head = w.head_object(Bucket="data", Key=k)
        assert head["ContentLength"] == 9 and head["ContentType"] == "binary/octet-stream", (i, head)
        assert head.get("Metadata", {}) == {}, (i, head)
        assert get(w, "data", k) == b"version 2"
    print("ok: data: an outside rewrite drops the stale metadata")


def conditions(ufs):
    """GET/HEAD conditions (RFC 9110 precedence): 412, and 304 with ETag and Last-Modified."""
    w0, w1 = client(ENDPOINTS[0]), client(ENDPOINTS[-1])
    b, k = ufs.bucket, "cond/obj"
    body = b"conditional"
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    w0.put_object(Bucket=b, Key=k, Body=body)
    modified = w1.head_object(Bucket=b, Key=k)["LastModified"]
    past, future = modified - datetime.timedelta(days=1), modified + datetime.timedelta(days=1)
    cases = [
        ({"IfMatch": '"nope"'}, 412),
        ({"IfMatch": etag}, 200),
        ({"IfUnmodifiedSince": past}, 412),
        ({"IfMatch": etag, "IfUnmodifiedSince": past}, 200),  # If-Match decides
        ({"IfNoneMatch": etag}, 304),
        ({"IfNoneMatch": "*"}, 304),
        ({"IfModifiedSince": future}, 304),
        ({"IfModifiedSince": modified}, 304),
        ({"IfModifiedSince": past}, 200),
        ({"IfNoneMatch": '"other"', "IfModifiedSince": future}, 200),  # If-None-Match decides
    ]
    for w in (w0, w1):
        for op in (w.get_object, w.head_object):
            for cond, want in cases:
                try:
                    got = op(Bucket=b, Key=k, **cond)
                    status, headers = 200, got["ResponseMetadata"]["HTTPHeaders"]
                except ClientError as e:
                    status, headers = e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["ResponseMetadata"]["HTTPHeaders"]
                assert status == want, f"{b} {op.__name__} {cond}: {status}, want {want}"
                if status == 304:
                    assert headers.get("etag") == etag and headers.get("last-modified"), (cond, headers)
    print(f"ok: {b}: GET and HEAD conditions")


if __name__ == "__main__":
    metadata(FileUfs())
    outside_rewrite()
    conditions(FileUfs())
    if os.environ.get("LOAM_MOTO_ENDPOINT"):
        metadata(MotoUfs())
        conditions(MotoUfs())
