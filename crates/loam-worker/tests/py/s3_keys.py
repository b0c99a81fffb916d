"""Exact S3 keys through the workers' S3 API, with boto3: keys that differ only in whitespace are different
objects, `%`, `+` and unicode round-trip, keys no UFS path can hold are refused with a 400 and write nothing,
and a file where a directory is (or the other way round) is a 409 on a file:// bucket.

Run by crates/loam-worker/tests/worker/s3_keys.rs with the test venv's python, with the environment of
s3_boto3.py (whose helpers it uses). Prints "ok: ..." lines and exits 0, or fails with an assertion.
"""

import os

from botocore.exceptions import ClientError
from s3_boto3 import ENDPOINTS, FileUfs, MotoUfs, client, error_code, get, keys_of, pattern, prefixes_of


def check_whitespace(clients, ufs):
    """`report`, `report ` and ` report` are three objects: written, read, overwritten and deleted apart."""
    b, s3 = ufs.bucket, clients[0]
    bodies = {"ws/report": b"plain", "ws/report ": b"trailing space", "ws/ report": b"leading space"}
    for key, body in bodies.items():
        s3.put_object(Bucket=b, Key=key, Body=body)
    for key, body in bodies.items():
        assert ufs.read(key) == body, f"the UFS holds {key!r} exactly"
        for i, c in enumerate(clients):
            assert get(c, b, key) == body, f"{key!r} through worker {i}"
    assert keys_of(s3.list_objects_v2(Bucket=b, Prefix="ws/")) == sorted(bodies), "three objects listed"

    # Overwrite one through another worker, after every worker has read (and cached) all three.
    clients[1].put_object(Bucket=b, Key="ws/report ", Body=b"new bytes")
    for i, c in enumerate(clients):
        assert get(c, b, "ws/report ") == b"new bytes", f"the overwritten key through worker {i}"
        assert get(c, b, "ws/report") == b"plain", f"its neighbour is untouched, through worker {i}"

    clients[2].delete_object(Bucket=b, Key="ws/ report")
    assert ufs.read("ws/ report") is None and ufs.read("ws/report") == b"plain"
    for c in clients:
        assert error_code(c.get_object, Bucket=b, Key="ws/ report") == ("NoSuchKey", 404)
        assert get(c, b, "ws/report") == b"plain" and get(c, b, "ws/report ") == b"new bytes"
    s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "ws/report "}]})
    assert ufs.read("ws/report ") is None and ufs.read("ws/report") == b"plain"
    assert keys_of(s3.list_objects_v2(Bucket=b, Prefix="ws/")) == ["ws/report"]
    print(f"ok: whitespace keys in {b}")


def check_special_characters(clients, ufs):
    """`%`, `+`, `&`, `=` and unicode keys are listed, read, copied and deleted as sent."""
    b, s3 = ufs.bucket, clients[0]
    keys = ["sp/100% done.txt", "sp/a+b=c&d.txt", "sp/ünïcödé ✓ 日本.bin", "sp/%2F not a slash"]
    for n, key in enumerate(keys):
        s3.put_object(Bucket=b, Key=key, Body=pattern(1000 + n, key))
    assert keys_of(s3.list_objects_v2(Bucket=b, Prefix="sp/")) == sorted(keys)
    for key in keys:
        assert ufs.read(key) == pattern(1000 + keys.index(key), key), f"the UFS holds {key!r}"
        for i, c in enumerate(clients):
            assert get(c, b, key) == pattern(1000 + keys.index(key), key), f"{key!r} through worker {i}"
    s3.copy_object(Bucket=b, Key="sp/copy ✓ +", CopySource={"Bucket": b, "Key": keys[1]})
    assert ufs.read("sp/copy ✓ +") == pattern(1001, keys[1])
    s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in keys + ["sp/copy ✓ +"]]})
    assert keys_of(s3.list_objects_v2(Bucket=b, Prefix="sp/")) == []
    print(f"ok: special characters in {b}")


def nothing_under(s3, b, prefix):
    page = s3.list_objects_v2(Bucket=b, Prefix=prefix)
    return keys_of(page) == [] and prefixes_of(page) == []


def check_unrepresentable(s3, ufs, file_system):
    """Keys no UFS path can hold are a 400 and write nothing."""
    b = ufs.bucket
    refused = {
        "bad/a//b": "InvalidArgument",
        "bad//lead": "InvalidArgument",
        "bad/../escape": "InvalidArgument",
        "bad/x/./y": "InvalidArgument",
        "bad/" + "k" * 1100: "KeyTooLongError",
    }
    if file_system:
        refused["bad/" + "n" * 256 + "/x"] = "KeyTooLongError"
    for key, code in refused.items():
        assert error_code(s3.put_object, Bucket=b, Key=key, Body=b"x") == (code, 400), key[:40]
        assert error_code(s3.copy_object, Bucket=b, Key=key, CopySource={"Bucket": b, "Key": "read/obj.bin"})[1] == 400
    assert nothing_under(s3, b, "bad/"), "a refused key wrote nothing"
    # A key ending in '/' is a folder: an empty body makes it, bytes cannot go in it.
    s3.put_object(Bucket=b, Key="bad/folder/", Body=b"")
    assert error_code(s3.put_object, Bucket=b, Key="bad/folder2/", Body=b"bytes") == ("InvalidArgument", 400)
    assert prefixes_of(s3.list_objects_v2(Bucket=b, Prefix="bad/", Delimiter="/")) == ["bad/folder/"]
    s3.delete_object(Bucket=b, Key="bad/folder/")
    print(f"ok: unrepresentable keys in {b}")


def invalid_uri(fn, **kwargs):
    """Asserts fn answers S3's 400 InvalidURI, with S3's message where the answer has a body (not HEAD)."""
    try:
        fn(**kwargs)
    except ClientError as e:
        err, status = e.response["Error"], e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 400, (fn.__name__, status, err)
        if fn.__name__ != "head_object":
            assert err["Code"] == "InvalidURI", (fn.__name__, err)
            assert err["Message"] == "Couldn't parse the specified URI.", (fn.__name__, err)
        return
    raise AssertionError(f"{fn.__name__} succeeded; 400 InvalidURI was expected")


def check_unparseable(clients, ufs):
    """A key with a C1 control character (U+0080..U+009F; ceph/s3-tests' '\xae\x8a-', sent as %C2%AE%C2%8A-) is
    S3's 400 InvalidURI on every operation that names it, through every worker: nothing read, written or deleted."""
    b, s3 = ufs.bucket, clients[0]
    there, absent = "c1/\xae\x8a-", "c1/new\x85"
    ufs.write(there, b"written straight into the UFS")
    for c in clients:
        invalid_uri(c.get_object, Bucket=b, Key=there)
        invalid_uri(c.head_object, Bucket=b, Key=there)
        invalid_uri(c.get_object, Bucket=b, Key=absent)
    invalid_uri(s3.put_object, Bucket=b, Key=absent, Body=b"x")
    invalid_uri(s3.delete_object, Bucket=b, Key=there)
    invalid_uri(s3.copy_object, Bucket=b, Key=absent, CopySource={"Bucket": b, "Key": "read/obj.bin"})
    invalid_uri(s3.copy_object, Bucket=b, Key="c1/copy", CopySource={"Bucket": b, "Key": there})
    invalid_uri(s3.create_multipart_upload, Bucket=b, Key=absent)
    up = s3.create_multipart_upload(Bucket=b, Key="c1/mp")["UploadId"]
    invalid_uri(s3.upload_part, Bucket=b, Key=absent, UploadId=up, PartNumber=1, Body=b"part")
    invalid_uri(s3.list_parts, Bucket=b, Key=absent, UploadId=up)
    parts = {"Parts": [{"PartNumber": 1, "ETag": '"0"'}]}
    invalid_uri(s3.complete_multipart_upload, Bucket=b, Key=absent, UploadId=up, MultipartUpload=parts)
    invalid_uri(s3.abort_multipart_upload, Bucket=b, Key=absent, UploadId=up)
    s3.abort_multipart_upload(Bucket=b, Key="c1/mp", UploadId=up)
    assert ufs.read(there) == b"written straight into the UFS", "not deleted"
    for key in [absent, "c1/copy", "c1/mp"]:
        assert ufs.read(key) is None, f"{key!r} not written"
    print(f"ok: unparseable keys in {b}")


def check_conflicts(s3):
    """file://: a file where a directory is, or a directory where a file is: 409 PathConflict, nothing written."""
    ufs = FileUfs()
    b = ufs.bucket
    s3.put_object(Bucket=b, Key="cf/file", Body=b"a file")
    s3.put_object(Bucket=b, Key="cf/dir/child", Body=b"a child")
    conflict = ("PathConflict", 409)
    assert error_code(s3.put_object, Bucket=b, Key="cf/file/under", Body=b"x") == conflict
    assert error_code(s3.put_object, Bucket=b, Key="cf/file/deeper/still", Body=b"x") == conflict
    assert error_code(s3.put_object, Bucket=b, Key="cf/file/", Body=b"") == conflict
    assert error_code(s3.put_object, Bucket=b, Key="cf/dir", Body=b"x") == conflict
    src = {"Bucket": b, "Key": "cf/file"}
    assert error_code(s3.copy_object, Bucket=b, Key="cf/file/copy", CopySource=src) == conflict
    up = s3.create_multipart_upload(Bucket=b, Key="cf/file/mp")["UploadId"]
    etag = s3.upload_part(Bucket=b, Key="cf/file/mp", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    code = error_code(s3.complete_multipart_upload, Bucket=b, Key="cf/file/mp", UploadId=up, MultipartUpload=parts)
    assert code[0] == "PathConflict", code
    assert ufs.read("cf/file") == b"a file" and ufs.read("cf/dir/child") == b"a child"
    assert os.path.isdir(os.path.join(ufs_dir(), "cf/dir")), "the directory is untouched"
    assert keys_of(s3.list_objects_v2(Bucket=b, Prefix="cf/")) == ["cf/dir/child", "cf/file"]
    print("ok: file/directory conflicts")


def ufs_dir():
    return os.environ["LOAM_UFS_DIR"]


def main():
    clients = [client(e) for e in ENDPOINTS]
    ufss = [(FileUfs(), True)]
    if os.environ.get("LOAM_MOTO_ENDPOINT"):
        ufss.append((MotoUfs(), False))
    for ufs, file_system in ufss:
        ufs.write("read/obj.bin", b"copy source")
        check_whitespace(clients, ufs)
        check_special_characters(clients, ufs)
        check_unrepresentable(clients[0], ufs, file_system)
        check_unparseable(clients, ufs)
    check_conflicts(clients[0])


if __name__ == "__main__":
    main()
