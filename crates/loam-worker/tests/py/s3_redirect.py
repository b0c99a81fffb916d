"""boto3 against a worker with redirect-to-owner on that does not own the object: a signed GET is proxied
(its signature covers the Host header, so it is never redirected); an unsigned GET is answered 307, which
botocore does not follow (it handles S3 redirects by region only). Run by tests/worker/non_owner.rs."""

import os
import sys

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint, signed):
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    if not signed:
        cfg = cfg.merge(Config(signature_version=UNSIGNED))
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=os.environ["LOAM_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["LOAM_S3_SECRET_KEY"],
        config=cfg,
    )


def main():
    key, other = os.environ["LOAM_KEY"], os.environ["LOAM_OTHER"]
    body = client(other, True).get_object(Bucket="data", Key=key)["Body"].read()
    print(f"ok: signed GET proxied, {len(body)} bytes")
    try:
        client(other, False).get_object(Bucket="data", Key=key)
        print("unsigned GET followed the redirect")
        sys.exit(1)
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        location = e.response["ResponseMetadata"]["HTTPHeaders"].get("location", "")
        if status != 307 or not location.startswith(os.environ["LOAM_OWNER"]):
            print(f"unexpected answer: {status} {location}")
            sys.exit(1)
        print("ok: unsigned GET answered 307")


if __name__ == "__main__":
    main()
