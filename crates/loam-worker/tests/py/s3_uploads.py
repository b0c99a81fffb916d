"""Checked uploads and multipart uploads through the workers' S3 API, seen through boto3 and raw signed HTTP.

Run by crates/loam-worker/tests/worker/s3_uploads.rs with the test venv's python (awscrt installed, for
boto3's CRC32C and CRC64NVME), with the environment of s3_boto3.py (whose helpers it uses); bucket "data"
is the file:// UFS under LOAM_UFS_DIR, bucket "s3data" a moto bucket.

Modes (argv[1]):

  checks     boto3's default CRC32 and each ChecksumAlgorithm are verified and echoed; a wrong Content-MD5,
             checksum header, signed payload hash, chunk signature or trailer checksum is refused with S3's
             error, and nothing changes: the UFS holds the old bytes (no temporary file beside them), and
             every worker serves them; the same for UploadPart. A chunked PutObject without a length is
             stored and checked as any; a chunked UploadPart is 411

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import base64
import datetime
import hashlib
import hmac
import os
import sys
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import requests  # noqa: E402
from botocore import httpchecksum  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from s3_boto3 import ACCESS_KEY, ENDPOINTS, SECRET_KEY, UFS_DIR, FileUfs, MotoUfs, client, get, pattern  # noqa: E402

REGION = "us-east-1"
ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]


def checksum(algorithm, data):
    """base64 of `algorithm`'s digest of data, as botocore computes it."""
    h = httpchecksum._CHECKSUM_CLS[algorithm.lower()]()
    h.update(data)
    return base64.b64encode(h.digest()).decode()


def refusal(fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__} succeeded; a refusal was expected")


def unchanged(clients, ufs, key, old):
    """`key` holds `old` in the UFS (None: absent) and through every worker; on file:// nothing else is
    beside it (no temporary sibling)."""
    assert ufs.read(key) == old, f"{ufs.bucket}/{key}: the UFS holds {ufs.read(key)!r:.60}, not {old!r:.60}"
    for i, s3 in enumerate(clients):
        if old is None:
            try:
                s3.head_object(Bucket=ufs.bucket, Key=key)
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
                continue
            raise AssertionError(f"{key} is visible through worker {i}")
        assert get(s3, ufs.bucket, key) == old, f"{key} through worker {i}"
    if isinstance(ufs, FileUfs):
        d = os.path.join(UFS_DIR, os.path.dirname(key))
        names = os.listdir(d) if os.path.isdir(d) else []
        temps = [n for n in names if n.startswith(".") or n.endswith(".tmp")]
        assert not temps, f"temporary files beside {key} in the UFS: {temps}"


def check_boto3(clients, ufs):
    s3, b = clients[0], ufs.bucket
    data = pattern(200_000, "checked")
    # boto3 sends a CRC32 of every PutObject by default; the answer echoes it.
    r = s3.put_object(Bucket=b, Key="checked/default", Body=data)
    assert r.get("ChecksumCRC32") == checksum("CRC32", data), r
    for a in ALGORITHMS:
        k = f"checked/{a.lower()}"
        r = s3.put_object(Bucket=b, Key=k, Body=data, ChecksumAlgorithm=a)
        field = "ChecksumCRC64NVME" if a == "CRC64NVME" else f"Checksum{a}"
        assert r.get(field) == checksum(a, data), (a, r)
        assert r.get("ChecksumType") == "FULL_OBJECT", r
        unchanged(clients, ufs, k, data)

    k = "checked/old"
    s3.put_object(Bucket=b, Key=k, Body=b"old bytes")
    other_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    wrong_crc = checksum("CRC32", b"other")
    for want, kwargs in [
        (("BadDigest", 400), {"ContentMD5": other_md5}),
        (("InvalidDigest", 400), {"ContentMD5": "not-an-md5"}),
        (("BadDigest", 400), {"ChecksumCRC32": wrong_crc}),
        (("BadDigest", 400), {"ChecksumSHA256": checksum("SHA256", b"other")}),
        (("InvalidRequest", 400), {"ChecksumCRC32": "AAAA"}),
    ]:
        got = refusal(s3.put_object, Bucket=b, Key=k, Body=data, **kwargs)
        assert got == want, (kwargs, got)
        unchanged(clients, ufs, k, b"old bytes")
        got = refusal(s3.put_object, Bucket=b, Key="checked/new", Body=data, **kwargs)
        assert got == want, (kwargs, got)
        unchanged(clients, ufs, "checked/new", None)
    good_md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3.put_object(Bucket=b, Key=k, Body=data, ContentMD5=good_md5)
    unchanged(clients, ufs, k, data)

    # A part with a wrong digest is not stored; the upload goes on.
    up = s3.create_multipart_upload(Bucket=b, Key="checked/mp")["UploadId"]
    got = refusal(s3.upload_part, Bucket=b, Key="checked/mp", UploadId=up, PartNumber=1, Body=data, ContentMD5=other_md5)
    assert got == ("BadDigest", 400), got
    got = refusal(s3.upload_part, Bucket=b, Key="checked/mp", UploadId=up, PartNumber=1, Body=data, ChecksumSHA1=checksum("SHA1", b"x"))
    assert got == ("BadDigest", 400), got
    assert s3.list_parts(Bucket=b, Key="checked/mp", UploadId=up).get("Parts", []) == []
    r = s3.upload_part(Bucket=b, Key="checked/mp", UploadId=up, PartNumber=1, Body=data, ChecksumAlgorithm="SHA1")
    assert r.get("ChecksumSHA1") == checksum("SHA1", data), r
    s3.abort_multipart_upload(Bucket=b, Key="checked/mp", UploadId=up)
    unchanged(clients, ufs, "checked/mp", None)
    print(f"ok: boto3 checksums and digests in {b}")


# --- Raw signed requests: SigV4 by botocore, chunk signatures and trailers by hand ---------------------


def signed(method, url, headers, body):
    """`requests`' answer to a request signed by botocore's SigV4Auth over `headers` (whose
    x-amz-content-sha256 is taken as given) and the seed signature."""
    req = AWSRequest(method=method, url=url, headers=headers, data=body)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION).add_auth(req)
    auth = req.headers["Authorization"]
    return req, auth.rsplit("Signature=", 1)[1]


def send(req, body):
    prepared = requests.Request(req.method, req.url, headers=dict(req.headers.items()), data=body).prepare()
    return requests.Session().send(prepared, timeout=60)


def code_of(resp):
    text = resp.text
    start = text.find("<Code>")
    return (text[start + 6 : text.find("</Code>")] if start >= 0 else ""), resp.status_code


def signing_key(date):
    k = hmac.new(f"AWS4{SECRET_KEY}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def chunked_signed(chunks, amz_date, seed):
    """An aws-chunked body whose chunks are signed in a chain from `seed`."""
    key = signing_key(amz_date[:8])
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    prev, out = seed, b""
    for c in list(chunks) + [b""]:
        sts = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{prev}\n{empty}\n{hashlib.sha256(c).hexdigest()}"
        prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out += f"{len(c):x};chunk-signature={prev}\r\n".encode() + c + b"\r\n"
    return out


def check_raw(clients, ufs):
    b, base = ufs.bucket, ENDPOINTS[0]
    k = "raw/old"
    clients[0].put_object(Bucket=b, Key=k, Body=b"old bytes")
    url = f"{base}/{b}/{k}"
    data = pattern(100_000, "raw")

    # The signed payload hash is another body's.
    headers = {"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()}
    req, _ = signed("PUT", url, headers, data)
    assert code_of(send(req, data)) == ("XAmzContentSHA256Mismatch", 400)
    unchanged(clients, ufs, k, b"old bytes")
    # The right one, and UNSIGNED-PAYLOAD, pass.
    req, _ = signed("PUT", url, {"x-amz-content-sha256": hashlib.sha256(data).hexdigest()}, data)
    assert send(req, data).status_code == 200
    unchanged(clients, ufs, k, data)
    req, _ = signed("PUT", url, {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"old bytes")
    assert send(req, b"old bytes").status_code == 200
    unchanged(clients, ufs, k, b"old bytes")

    # A chunk-signed body, then the same with its second chunk tampered with.
    chunks = [data[:65536], data[65536:]]
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    length = len(chunked_signed(chunks, amz_date, "0" * 64))
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-decoded-content-length": str(len(data)),
        "content-encoding": "aws-chunked",
        "content-length": str(length),
        "x-amz-date": amz_date,
    }
    req, seed = signed("PUT", url, headers, b"")
    body = chunked_signed(chunks, amz_date, seed)
    tampered = bytearray(body)
    tampered[body.index(chunks[1][:32]) + 10] ^= 1
    assert code_of(send(req, bytes(tampered))) == ("SignatureDoesNotMatch", 403)
    unchanged(clients, ufs, k, b"old bytes")
    r = send(req, body)
    assert r.status_code == 200, r.text
    unchanged(clients, ufs, k, data)
    clients[0].put_object(Bucket=b, Key=k, Body=b"old bytes")

    # An unsigned aws-chunked body with a CRC32 trailer: right, then wrong.
    def trailer_put(crc):
        body = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
        headers = {
            "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "x-amz-decoded-content-length": str(len(data)),
            "x-amz-trailer": "x-amz-checksum-crc32",
            "content-encoding": "aws-chunked",
            "content-length": str(len(body)),
        }
        req, _ = signed("PUT", url, headers, b"")
        return send(req, body)

    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert code_of(trailer_put(checksum("CRC32", b"other"))) == ("BadDigest", 400)
    unchanged(clients, ufs, k, b"old bytes")
    r = trailer_put(crc)
    assert r.status_code == 200 and r.headers.get("x-amz-checksum-crc32") == crc, (r.status_code, r.headers, r.text)
    unchanged(clients, ufs, k, data)
    print("ok: raw signed bodies")


def check_chunked(clients, ufs):
    """A PutObject sent with `Transfer-Encoding: chunked` and no Content-Length (not aws-chunked) is stored,
    as RGW and MinIO store it, and checked as any PUT; UploadPart keeps AWS's 411 MissingContentLength."""
    b, base, s3 = ufs.bucket, ENDPOINTS[0], clients[0]
    k = "chunked/obj"
    url = f"{base}/{b}/{k}"
    data = pattern(300_000, "chunked")

    def pieces(body):
        # A generator: `requests` sends it chunked, without a Content-Length.
        return (body[i : i + 65536] for i in range(0, len(body), 65536))

    def put(body, headers):
        req, _ = signed("PUT", url, headers, b"")
        assert "content-length" not in {h.lower() for h in req.headers}, req.headers
        return send(req, pieces(body))

    # boto3 with the header added before signing, as ceph/s3-tests does it.
    te = client(base)
    te.meta.events.register_first("before-sign.*.*", lambda request, **kw: request.headers.add_header("Transfer-Encoding", "chunked"))
    assert te.put_object(Bucket=b, Key=k, Body=b"bar")["ResponseMetadata"]["HTTPStatusCode"] == 200
    unchanged(clients, ufs, k, b"bar")
    sha = hashlib.sha256(data).hexdigest()
    assert code_of(put(data, {"x-amz-content-sha256": hashlib.sha256(b"other").hexdigest()})) == ("XAmzContentSHA256Mismatch", 400)
    unchanged(clients, ufs, k, b"bar")
    md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert code_of(put(data, {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-md5": md5})) == ("BadDigest", 400)
    unchanged(clients, ufs, k, b"bar")
    wrong = {"x-amz-content-sha256": sha, "x-amz-checksum-crc32": checksum("CRC32", b"other")}
    assert code_of(put(data, wrong)) == ("BadDigest", 400)
    unchanged(clients, ufs, k, b"bar")
    r = put(data, {"x-amz-content-sha256": sha, "x-amz-checksum-crc32": checksum("CRC32", data)})
    assert r.status_code == 200 and r.headers.get("x-amz-checksum-crc32") == checksum("CRC32", data), (r.status_code, r.text)
    assert r.headers.get("etag") == f'"{hashlib.md5(data).hexdigest()}"' or b == "s3data", r.headers
    unchanged(clients, ufs, k, data)
    # UploadPart needs its length, as on AWS.
    up = s3.create_multipart_upload(Bucket=b, Key="chunked/mp")["UploadId"]
    req, _ = signed("PUT", f"{url}?partNumber=1&uploadId={up}".replace(k, "chunked/mp"), {"x-amz-content-sha256": sha}, b"")
    assert code_of(send(req, pieces(data))) == ("MissingContentLength", 411)
    assert s3.list_parts(Bucket=b, Key="chunked/mp", UploadId=up).get("Parts", []) == []
    s3.abort_multipart_upload(Bucket=b, Key="chunked/mp", UploadId=up)
    print(f"ok: chunked PutObject in {b}")


def check_chunked_refused(ufs):
    """By default (`s3-unsized-puts` off) a chunked PutObject without a length is AWS's 411
    MissingContentLength, and nothing is written: no body is spooled before its signature is checked."""
    b, base = ufs.bucket, ENDPOINTS[0]
    k = "chunked/refused"
    req, _ = signed("PUT", f"{base}/{b}/{k}", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, b"")
    assert code_of(send(req, iter([b"abc", b"def"]))) == ("MissingContentLength", 411)
    assert not os.path.exists(os.path.join(UFS_DIR, k)), "a refused chunked PUT wrote an object"
    try:
        client(base).head_object(Bucket=b, Key=k)
        raise AssertionError("a refused chunked PUT is readable")
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("404", "NoSuchKey"), e.response
    print(f"ok: chunked PutObject refused in {b}")


def refused():
    check_chunked_refused(FileUfs())


def checks():
    clients = [client(e) for e in ENDPOINTS]
    for ufs in [FileUfs(), MotoUfs()]:
        check_boto3(clients, ufs)
        check_chunked(clients, ufs)
    check_raw(clients, FileUfs())


if __name__ == "__main__":
    {"checks": checks, "refused": refused}[sys.argv[1]]()
