"""What the workers' S3 API refuses, and the protocol details S3 clients rely on, seen through boto3 and
plain HTTP.

Run by crates/loam-worker/tests/worker/s3_protocol.rs with the test venv's python, with the environment
of s3_boto3.py (whose helpers it uses); bucket "data" is the file:// UFS under LOAM_UFS_DIR, and the
workers allow anonymous reads.

Modes (argv[1]):

  refusals  encryption, object lock, ACLs, tagging and versions are refused with S3's error (or 501), a
            request id, and nothing written: the object is absent from the UFS and from every worker
  protocol  request ids on every answer and in error documents, NoSuchKey without server paths,
            DeleteObjects at most 1,000 keys, presigned URLs at most 7 days, listing encodings, empty
            delimiters, owners, ListBuckets pages (needs the moto bucket "s3data" too), SigV2 with
            x-amz-date

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import base64
import datetime
import email.utils
import hashlib
import hmac
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from s3_boto3 import (  # noqa: E402
    ACCESS_KEY,
    CONFIG,
    ENDPOINTS,
    SECRET_KEY,
    UFS_DIR,
    FileUfs,
    client,
    get,
    keys_of,
    prefixes_of,
)

B = "data"
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}


def refusal(fn, **kwargs):
    """(code, status, request id) of the error fn raises; fails if it succeeds."""
    try:
        fn(**kwargs)
    except ClientError as e:
        meta = e.response["ResponseMetadata"]
        return e.response["Error"]["Code"], meta["HTTPStatusCode"], meta.get("RequestId", "")
    raise AssertionError(f"{fn.__name__}({kwargs}) succeeded; a refusal was expected")


def absent_everywhere(clients, ufs, key):
    assert ufs.read(key) is None, f"{key} was written to the UFS"
    for i, s3 in enumerate(clients):
        try:
            s3.head_object(Bucket=B, Key=key)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
            continue
        raise AssertionError(f"{key} is visible through worker {i}")


def expect(clients, ufs, want, fn, key=None, **kwargs):
    """fn(**kwargs) is refused with `want` (code, status), with a request id, and `key` is nowhere."""
    code, status, rid = refusal(fn, **kwargs)
    assert (code, status) == want, f"{fn.__name__} {kwargs}: got {(code, status)}, want {want}"
    assert len(rid) == 16, f"{fn.__name__}: request id {rid!r}"
    if key is not None:
        absent_everywhere(clients, ufs, key)


def refusals():
    clients = [client(e) for e in ENDPOINTS]
    s3, ufs = clients[0], FileUfs()
    n = [0]

    def key():
        n[0] += 1
        return f"refused/k{n[0]}"

    put = s3.put_object
    not_impl, lock = ("NotImplemented", 501), ("InvalidRequest", 400)
    no_acl = ("AccessControlListNotSupported", 400)
    for want, extra in [
        (not_impl, {"ServerSideEncryption": "AES256"}),
        (not_impl, {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "my-key"}),
        (not_impl, SSE_C),
        (lock, {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": datetime.datetime(2100, 1, 1)}),
        (lock, {"ObjectLockLegalHoldStatus": "ON"}),
        (no_acl, {"ACL": "public-read"}),
        (no_acl, {"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'}),
        (not_impl, {"Tagging": "secret=yes"}),
    ]:
        k = key()
        expect(clients, ufs, want, put, key=k, Bucket=B, Key=k, Body=b"plain text", **extra)
    k = key()
    expect(clients, ufs, not_impl, s3.create_multipart_upload, key=k, Bucket=B, Key=k, ServerSideEncryption="AES256")
    expect(clients, ufs, lock, s3.create_multipart_upload, key=k, Bucket=B, Key=k, ObjectLockLegalHoldStatus="ON")
    print("ok: refused writes wrote nothing")

    # What is allowed: a private ACL is what every object has anyway.
    s3.put_object(Bucket=B, Key="allowed/private", Body=b"mine", ACL="private")
    assert ufs.read("allowed/private") == b"mine"
    src = "allowed/src"
    s3.put_object(Bucket=B, Key=src, Body=b"source bytes")
    k = key()
    copy = s3.copy_object
    expect(clients, ufs, not_impl, copy, key=k, Bucket=B, Key=k, CopySource={"Bucket": B, "Key": src}, ServerSideEncryption="AES256")
    expect(clients, ufs, no_acl, copy, key=k, Bucket=B, Key=k, CopySource={"Bucket": B, "Key": src}, ACL="public-read-write")
    bad_version = {"Bucket": B, "Key": src, "VersionId": "3HL4kqtJlcpXroDTDmJ"}
    expect(clients, ufs, ("InvalidArgument", 400), copy, key=k, Bucket=B, Key=k, CopySource=bad_version)
    source_sse_c = {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": "k" * 32}
    expect(clients, ufs, lock, copy, key=k, Bucket=B, Key=k, CopySource={"Bucket": B, "Key": src}, **source_sse_c)
    print("ok: refused copies wrote nothing")

    # Reads of an object stored without encryption, with SSE-C: S3's 400 InvalidRequest.
    for i, c in enumerate(clients):
        expect(clients, ufs, ("InvalidRequest", 400), c.get_object, Bucket=B, Key=src, **SSE_C)
        expect(clients, ufs, ("InvalidRequest", 400), c.get_object, Bucket=B, Key=src, Range="bytes=0--1", **SSE_C)
        code, status, _ = refusal(c.head_object, Bucket=B, Key=src, **SSE_C)
        assert status == 400, f"HEAD with SSE-C through worker {i}: {code} {status}"
        expect(clients, ufs, ("InvalidArgument", 400), c.get_object, Bucket=B, Key=src, VersionId="v1")
        assert get(c, B, src, VersionId="null") == b"source bytes", "the only version is null"
    print("ok: reads with encryption or version ids")

    # Deletes that ask for versions or object lock delete nothing.
    expect(clients, ufs, ("InvalidArgument", 400), s3.delete_object, Bucket=B, Key=src, VersionId="v1")
    expect(clients, ufs, lock, s3.delete_object, Bucket=B, Key=src, BypassGovernanceRetention=True)
    out = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": src, "VersionId": "v1"}]})
    assert [(e["Key"], e["Code"]) for e in out.get("Errors", [])] == [(src, "InvalidArgument")], out
    assert ufs.read(src) == b"source bytes", "refused deletes deleted nothing"
    s3.delete_object(Bucket=B, Key=src, VersionId="null")
    assert ufs.read(src) is None, "versionId=null names the object"
    print("ok: refused deletes deleted nothing")

    # The ACL, tagging, versioning, lock and encryption operations: 501, with a request id.
    obj = "allowed/private"
    for fn, kwargs in [
        (s3.put_object_acl, {"Bucket": B, "Key": obj, "ACL": "public-read"}),
        (s3.put_bucket_acl, {"Bucket": B, "ACL": "public-read"}),
        (s3.put_object_tagging, {"Bucket": B, "Key": obj, "Tagging": {"TagSet": [{"Key": "a", "Value": "b"}]}}),
        (s3.put_bucket_tagging, {"Bucket": B, "Tagging": {"TagSet": [{"Key": "a", "Value": "b"}]}}),
        (s3.put_bucket_versioning, {"Bucket": B, "VersioningConfiguration": {"Status": "Enabled"}}),
        (s3.put_bucket_encryption, {"Bucket": B, "ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}}),
        (s3.put_object_lock_configuration, {"Bucket": B, "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}}),
        (s3.put_object_legal_hold, {"Bucket": B, "Key": obj, "LegalHold": {"Status": "ON"}}),
        (s3.put_object_retention, {"Bucket": B, "Key": obj, "Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": datetime.datetime(2100, 1, 1)}}),
    ]:
        expect(clients, ufs, not_impl, fn, **kwargs)
    assert ufs.read(obj) == b"mine"
    print("ok: unsupported operations are 501")


def raw(url, method="GET"):
    """(status, headers, body) of an unsigned request."""
    return raw_request(urllib.request.Request(url, method=method))


def raw_request(req):
    """(status, headers, body) of a request."""
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def protocol():
    clients = [client(e) for e in ENDPOINTS]
    s3, ufs = clients[0], FileUfs()

    # Request ids: on every answer, new per request; in error documents, the same as the header.
    ids = set()
    for c in clients:
        for meta in (c.list_buckets()["ResponseMetadata"], c.list_objects_v2(Bucket=B)["ResponseMetadata"]):
            assert len(meta["RequestId"]) == 16 and meta["HostId"], meta
            ids.add(meta["RequestId"])
    assert len(ids) == 2 * len(clients), ids
    quoted = urllib.parse.quote("no such/key ü")
    status, headers, body = raw(f"{ENDPOINTS[0]}/{B}/{quoted}")
    assert status == 404 and "<Code>NoSuchKey</Code>" in body, body
    rid = headers["x-amz-request-id"]
    assert len(rid) == 16 and f"<RequestId>{rid}</RequestId>" in body, (dict(headers), body)
    assert headers["x-amz-id-2"] and f"<HostId>{headers['x-amz-id-2']}</HostId>" in body, body
    assert "<Key>no such/key ü</Key>" in body and f"<Resource>/{B}/no such/key ü</Resource>" in body, body
    assert UFS_DIR not in body and "file://" not in body, f"a server path in the error: {body}"
    status, headers, _ = raw(f"{ENDPOINTS[1]}/{B}/{quoted}", method="HEAD")
    assert status == 404 and len(headers["x-amz-request-id"]) == 16, dict(headers)
    status, headers, body = raw(f"{ENDPOINTS[0]}/nobucket/k")
    assert status == 404 and "<Code>NoSuchBucket</Code>" in body and headers["x-amz-request-id"] in body, body
    print("ok: request ids and error documents")

    # DeleteObjects: at most 1,000 keys; more is MalformedXML and deletes nothing.
    for i in range(3):
        s3.put_object(Bucket=B, Key=f"del/k{i}", Body=b"x")
    too_many = [{"Key": f"del/k{i}"} for i in range(1001)]
    code, status, rid = refusal(s3.delete_objects, Bucket=B, Delete={"Objects": too_many})
    assert (code, status) == ("MalformedXML", 400) and len(rid) == 16, (code, status, rid)
    assert all(ufs.read(f"del/k{i}") == b"x" for i in range(3)), "nothing deleted"
    out = s3.delete_objects(Bucket=B, Delete={"Objects": too_many[:1000], "Quiet": True})
    assert not out.get("Errors") and all(ufs.read(f"del/k{i}") is None for i in range(3)), out
    print("ok: DeleteObjects takes at most 1000 keys")

    # Presigned URLs: 7 days at most, SigV4 (X-Amz-Expires) and SigV2 (boto3's default here: Expires).
    s3.put_object(Bucket=B, Key="presigned/obj", Body=b"signed bytes")
    week, obj = 7 * 24 * 3600, {"Bucket": B, "Key": "presigned/obj"}
    v4 = boto3.client(
        "s3", endpoint_url=ENDPOINTS[0], aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", config=CONFIG.merge(Config(signature_version="s3v4")),
    )
    url = v4.generate_presigned_url("get_object", Params=obj, ExpiresIn=week)
    assert "X-Amz-Expires=604800" in url and raw(url)[::2] == (200, "signed bytes"), "a week is allowed"
    assert raw(s3.generate_presigned_url("get_object", Params=obj, ExpiresIn=24 * 3600))[::2] == (200, "signed bytes")
    for signer, too_long in ((v4, week + 1), (s3, 30 * 24 * 3600)):
        url = signer.generate_presigned_url("get_object", Params=obj, ExpiresIn=too_long)
        status, headers, body = raw(url)
        assert status == 400 and "<Code>AuthorizationQueryParametersError</Code>" in body, (url, status, body)
        assert headers["x-amz-request-id"] in body, body
        put = signer.generate_presigned_url("put_object", Params={"Bucket": B, "Key": "presigned/put"}, ExpiresIn=too_long)
        status, _, body = raw_request(urllib.request.Request(put, data=b"should not land", method="PUT"))
        assert status == 400 and "AuthorizationQueryParametersError" in body, (put, status, body)
        assert ufs.read("presigned/put") is None, "the refused presigned PUT wrote nothing"
    print("ok: presigned URLs live at most 7 days")

    # Listing encodings: boto3 asks for encoding-type=url and decodes what S3 encodes; V1's Prefix is
    # returned as sent.
    for k in ["enc/a b+c", "enc/a b/d", "enc/x\ny"]:
        s3.put_object(Bucket=B, Key=k, Body=b"e")
    v1 = s3.list_objects(Bucket=B, Prefix="enc/a b")
    assert v1["Prefix"] == "enc/a b" and keys_of(v1) == ["enc/a b+c", "enc/a b/d"], v1
    v1 = s3.list_objects(Bucket=B, Prefix="enc/a b", Delimiter="/", Marker="enc/a b+")
    assert v1["Marker"] == "enc/a b+" and keys_of(v1) == ["enc/a b+c"] and prefixes_of(v1) == ["enc/a b/"], v1
    v1 = s3.list_objects(Bucket=B, Prefix="enc/x\n")
    assert v1["Prefix"] == "enc/x\n" and keys_of(v1) == ["enc/x\ny"], v1
    v1 = s3.list_objects(Bucket=B, Prefix="enc/a b", EncodingType="url")
    assert v1["Prefix"] == "enc/a b" and keys_of(v1) == ["enc/a%20b%2Bc", "enc/a%20b/d"], v1
    v2 = s3.list_objects_v2(Bucket=B, Prefix="enc/a b", Delimiter="/", EncodingType="url")
    assert v2["Prefix"] == "enc/a%20b" and keys_of(v2) == ["enc/a%20b%2Bc"] and prefixes_of(v2) == ["enc/a%20b/"], v2
    v2 = s3.list_objects_v2(Bucket=B, Prefix="enc/a b", StartAfter="enc/a b+")
    assert v2["Prefix"] == "enc/a b" and v2["StartAfter"] == "enc/a b+" and keys_of(v2) == ["enc/a b+c", "enc/a b/d"], v2
    print("ok: listing encodings")

    # An empty delimiter is none; owners in V1 always, in V2 with FetchOwner.
    for listed in (s3.list_objects(Bucket=B, Prefix="enc/", Delimiter=""), s3.list_objects_v2(Bucket=B, Prefix="enc/", Delimiter="")):
        assert "Delimiter" not in listed and len(keys_of(listed)) == 3 and not prefixes_of(listed), listed
    assert all(o["Owner"]["ID"] for o in s3.list_objects(Bucket=B, Prefix="enc/")["Contents"])
    assert all("Owner" not in o for o in s3.list_objects_v2(Bucket=B, Prefix="enc/")["Contents"])
    assert all("Owner" not in o for o in s3.list_objects_v2(Bucket=B, Prefix="enc/", FetchOwner=False)["Contents"])
    owned = s3.list_objects_v2(Bucket=B, Prefix="enc/", FetchOwner=True)["Contents"]
    assert all(o["Owner"]["ID"] and o["Owner"]["DisplayName"] for o in owned), owned
    assert s3.list_buckets()["Owner"]["ID"] == owned[0]["Owner"]["ID"]
    print("ok: empty delimiters and owners")

    # ListBuckets pages: max-buckets, continuation tokens, prefix (buckets "data" and "s3data").
    names = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    assert names == ["data", "s3data"], names
    first = s3.list_buckets(MaxBuckets=1)
    assert [b["Name"] for b in first["Buckets"]] == ["data"] and first["ContinuationToken"], first
    rest = s3.list_buckets(MaxBuckets=1, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == ["s3data"] and "ContinuationToken" not in rest, rest
    only = s3.list_buckets(Prefix="s3")
    assert [b["Name"] for b in only["Buckets"]] == ["s3data"] and only["Prefix"] == "s3", only
    print("ok: ListBuckets pages")

    # SigV2: with Date (boto3's "s3" signer) and with x-amz-date instead, which then signs an empty Date.
    v2 = boto3.client(
        "s3", endpoint_url=ENDPOINTS[0], aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", config=CONFIG.merge(Config(signature_version="s3")),
    )
    assert get(v2, B, "presigned/obj") == b"signed bytes", "SigV2 with Date"
    date = email.utils.formatdate(usegmt=True)
    to_sign = f"GET\n\n\n\nx-amz-date:{date}\n/{B}/presigned/obj"
    sig = base64.b64encode(hmac.new(SECRET_KEY.encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    req = urllib.request.Request(f"{ENDPOINTS[1]}/{B}/presigned/obj", headers={"x-amz-date": date, "Authorization": f"AWS {ACCESS_KEY}:{sig}"})
    with urllib.request.urlopen(req) as r:
        assert r.read() == b"signed bytes", "SigV2 with x-amz-date"
    req = urllib.request.Request(f"{ENDPOINTS[1]}/{B}/presigned/obj", headers={"x-amz-date": date, "Authorization": f"AWS {ACCESS_KEY}:{sig[:-4]}AAA="})
    assert raw_request(req)[0] == 403, "a wrong SigV2 signature is refused"
    print("ok: SigV2 with x-amz-date")

    # Buckets are mounts: CreateBucket of a mounted name is S3's owner re-create (200, nothing changes);
    # of another name 501 saying how to mount it; DeleteBucket of a non-empty bucket BucketNotEmpty, of an
    # empty one 501; what CreateBucket cannot be (ACLs, object lock, a region) is refused.
    assert s3.create_bucket(Bucket=B)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ufs.read("presigned/obj") == b"signed bytes", "re-creating a bucket keeps its objects"
    code, status, rid = refusal(s3.create_bucket, Bucket="newbucket")
    assert (code, status) == ("NotImplemented", 501) and len(rid) == 16, (code, status)
    assert "newbucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert refusal(s3.create_bucket, Bucket=B, ACL="public-read")[:2] == ("AccessControlListNotSupported", 400)
    assert refusal(s3.create_bucket, Bucket=B, ObjectLockEnabledForBucket=True)[:2] == ("NotImplemented", 501)
    where = {"LocationConstraint": "eu-west-1"}
    assert refusal(s3.create_bucket, Bucket=B, CreateBucketConfiguration=where)[:2] == ("InvalidLocationConstraint", 400)
    assert refusal(s3.delete_bucket, Bucket=B)[:2] == ("BucketNotEmpty", 409)
    assert refusal(s3.delete_bucket, Bucket="nobucket")[:2] == ("NoSuchBucket", 404)
    for k in keys_of(s3.list_objects(Bucket="s3data")):
        s3.delete_object(Bucket="s3data", Key=k)
    assert refusal(s3.delete_bucket, Bucket="s3data")[:2] == ("NotImplemented", 501)
    assert "s3data" in [b["Name"] for b in s3.list_buckets()["Buckets"]], "the mount stays"
    print("ok: buckets are mounts")

    # Reads of configuration Loam does not do answer what S3 answers a bucket without it.
    assert "Status" not in s3.get_bucket_versioning(Bucket=B)
    for acl in (s3.get_bucket_acl(Bucket=B), s3.get_object_acl(Bucket=B, Key="presigned/obj")):
        assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"] and acl["Owner"]["ID"], acl
        assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"], acl
    assert s3.get_object_tagging(Bucket=B, Key="presigned/obj")["TagSet"] == []
    assert refusal(s3.get_object_tagging, Bucket=B, Key="no/such")[:2] == ("NoSuchKey", 404)
    assert refusal(s3.get_object_acl, Bucket=B, Key="presigned/obj", VersionId="v1")[:2] == ("InvalidArgument", 400)
    for fn, want in ((s3.get_bucket_tagging, ("NoSuchTagSet", 404)), (s3.get_bucket_policy, ("NoSuchBucketPolicy", 404)),
                     (s3.get_bucket_lifecycle_configuration, ("NoSuchLifecycleConfiguration", 404)),
                     (s3.get_bucket_cors, ("NoSuchCORSConfiguration", 404)),
                     (s3.get_object_lock_configuration, ("ObjectLockConfigurationNotFoundError", 404)),
                     (s3.get_bucket_encryption, ("ServerSideEncryptionConfigurationNotFoundError", 400))):
        got = refusal(fn, Bucket=B)[:2]
        assert got == want, (fn, got)
        assert refusal(fn, Bucket="nobucket")[:2] == ("NoSuchBucket", 404), fn
    for i in range(3):
        s3.put_object(Bucket=B, Key=f"ver/k{i}", Body=b"v" * i)
    pages, kwargs = [], {"Bucket": B, "Prefix": "ver/", "MaxKeys": 2}
    while True:
        page = s3.list_object_versions(**kwargs)
        pages.append(page)
        if not page["IsTruncated"]:
            break
        kwargs.update(KeyMarker=page["NextKeyMarker"], VersionIdMarker=page["NextVersionIdMarker"])
    versions = [v for p in pages for v in p.get("Versions", [])]
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in versions] == [
        (f"ver/k{i}", "null", True, i) for i in range(3)
    ], versions
    assert len(pages) == 2 and not any(p.get("DeleteMarkers") for p in pages), pages
    print("ok: configuration reads as for a bucket without it")


if __name__ == "__main__":
    {"refusals": refusals, "protocol": protocol}[sys.argv[1]]()
