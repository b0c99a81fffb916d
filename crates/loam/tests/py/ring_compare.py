"""Prints which worker the unmodified Alluxio Python client (alluxio==1.0.0) picks for each key.

Usage: python ring_compare.py ETCD_HOST ETCD_PORT < keys.json
  stdin:  a JSON list of keys (full UFS URIs)
  stdout: a JSON object {key: "host:port"} of each key's primary worker (HttpServerPort)

The ring is built once from etcd's liveness prefix (no background refresh) with the 5 virtual nodes the
Python clients hard-code; the Rust test compares it with the ring its own client builds from the same etcd.
"""

import json
import sys

from alluxio.worker_ring import ConsistentHashProvider


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    keys = json.load(sys.stdin)
    ring = ConsistentHashProvider(
        etcd_hosts=host,
        etcd_port=port,
        etcd_refresh_workers_interval=0,
        hash_node_per_worker=5,
    )
    out = {}
    for key in keys:
        workers = ring.get_multiple_workers(key, 1)
        if len(workers) != 1:
            print(f"no worker for {key!r}: {workers!r}", file=sys.stderr)
            return 1
        out[key] = f"{workers[0].host}:{workers[0].http_server_port}"
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
