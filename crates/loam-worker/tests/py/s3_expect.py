"""The AWS CLI's botocore and `Expect: 100-continue` over one kept-alive connection.

Run by crates/loam-worker/tests/worker/s3_expect.rs with the test venv's python and the environment of
s3_boto3.py; bucket "data" is the file:// UFS under LOAM_UFS_DIR.

botocore sends `Expect: 100-continue` with every PutObject and UploadPart whose body is a file, empty
ones included. When a final answer arrives in place of the `100 Continue` (an empty body, which is never
continued, or a refusal before the body is read), the botocore the AWS CLI carries (awscli/botocore,
older than boto3's) keeps that answer's status line for the connection, and the next continued upload
on it takes the old status, then reads its own status line where its headers should be: no ETag, and a
body read until the connection closes (`KeyError: 'ETag'` in `aws s3 cp`). The client here is that
botocore, never retries and has one connection, so each upload below follows an answer without a `100`
on the same connection, unless the worker closed it.

Prints "ok: ..." lines and exits 0, or fails with an assertion that names what differed.
"""

import hashlib
import io
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import awscli  # noqa: E402,F401  (makes `botocore` the CLI's own copy)
import botocore  # noqa: E402
import botocore.session  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

assert os.path.dirname(botocore.__file__).startswith(os.path.dirname(awscli.__file__)), botocore.__file__
ENDPOINT = os.environ["LOAM_S3_ENDPOINTS"].split(",")[0]
UFS_DIR = os.environ["LOAM_UFS_DIR"]
ONE_TRY = Config(
    s3={"addressing_style": "path"},
    retries={"total_max_attempts": 1, "mode": "standard"},
    max_pool_connections=1,
    read_timeout=20,  # the old failure waits for the connection to close
)
BODY = bytes(range(256)) * 4096  # 1 MiB


def put(s3, key, data):
    """PutObject of a file-like body (so botocore sends Expect: 100-continue); its answer is its own."""
    r = s3.put_object(Bucket="data", Key=key, Body=io.BytesIO(data))
    assert r.get("ETag") == '"' + hashlib.md5(data).hexdigest() + '"', f"PutObject {key}: {r}"
    with open(os.path.join(UFS_DIR, key), "rb") as f:
        assert f.read() == data, key


def main():
    s3 = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=os.environ["LOAM_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["LOAM_S3_SECRET_KEY"],
        region_name="us-east-1",
        config=ONE_TRY,
    )
    put(s3, "expect/empty", b"")
    put(s3, "expect/one", BODY)
    put(s3, "expect/two", b"hello")
    print(f"ok: after an empty upload (botocore {botocore.__version__})")

    try:
        s3.put_object(Bucket="data", Key="expect/refused", Body=io.BytesIO(BODY), ServerSideEncryption="AES256")
        raise AssertionError("PutObject with SSE was accepted")
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 501, e.response
    assert not os.path.exists(os.path.join(UFS_DIR, "expect/refused")), "the refused upload wrote nothing"
    put(s3, "expect/three", BODY)
    print("ok: after a refused upload")

    up = s3.create_multipart_upload(Bucket="data", Key="expect/parts")["UploadId"]
    put(s3, "expect/four", b"")
    r = s3.upload_part(Bucket="data", Key="expect/parts", UploadId=up, PartNumber=1, Body=io.BytesIO(BODY))
    assert r.get("ETag") == '"' + hashlib.md5(BODY).hexdigest() + '"', f"UploadPart: {r}"
    s3.abort_multipart_upload(Bucket="data", Key="expect/parts", UploadId=up)
    print("ok: a part after an empty upload")


if __name__ == "__main__":
    main()
