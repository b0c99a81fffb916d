"""A verified reader of the chaos soak (crates/loam-chaos, docs/RELIABILITY.md): reads whole files in a loop,
forever, and prints one JSON line per read. The soak compares each line with the versions it wrote.

Usage: python chaos_reader.py MODE SEED < plan.json
  MODE s3:      boto3 GetObject on one worker's S3 API; plan {"endpoint", "access_key", "secret_key",
                "bucket", "keys": [...]}
  MODE alluxio: the unmodified alluxio==1.0.0 client, workers found through etcd (refreshed every second);
                plan {"etcd_host", "etcd_port", "uris": [...]}
  stdout, per read: {"i": <index in the list>, "len": n, "sha256": hex, "head": hex of the first 8 bytes,
                     "pages": [sha256 hex of each 1 MiB page]}
                    or {"i": <index>, "err": "<what failed>"}

No retries in the clients (boto3 max_attempts 1): every failed request is reported, so the soak can measure
how long errors last.
"""

import hashlib
import json
import random
import sys


PAGE = 1 << 20


def report(i, body=None, err=None):
    if err is not None:
        line = {"i": i, "err": err[:300]}
    else:
        line = {"i": i, "len": len(body), "sha256": hashlib.sha256(body).hexdigest(), "head": body[:8].hex(),
                "pages": [hashlib.sha256(body[o:o + PAGE]).hexdigest() for o in range(0, len(body), PAGE)]}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def s3_reader(plan):
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=plan["endpoint"],
        aws_access_key_id=plan["access_key"],
        aws_secret_access_key=plan["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"},
                      connect_timeout=5, read_timeout=20),
    )
    keys = plan["keys"]

    def read(i):
        return client.get_object(Bucket=plan["bucket"], Key=keys[i])["Body"].read()

    return len(keys), read


def alluxio_reader(plan):
    from alluxio import AlluxioFileSystem

    fs = AlluxioFileSystem(etcd_hosts=plan["etcd_host"], etcd_port=int(plan["etcd_port"]),
                           etcd_refresh_workers_interval=1)
    uris = plan["uris"]
    return len(uris), lambda i: fs.read(uris[i])


def main():
    mode, seed = sys.argv[1], int(sys.argv[2])
    plan = json.load(sys.stdin)
    count, read = {"s3": s3_reader, "alluxio": alluxio_reader}[mode](plan)
    rng = random.Random(seed)
    while True:
        i = rng.randrange(count)
        try:
            body = read(i)
        except Exception as e:  # every failure is a data point, never the end of the reader
            report(i, err=f"{type(e).__name__}: {e}")
            continue
        report(i, body=body)


if __name__ == "__main__":
    main()
