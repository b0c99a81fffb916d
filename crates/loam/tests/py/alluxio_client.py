"""Drives the unmodified Alluxio Python client (alluxio==1.0.0) against a Loam cluster found through etcd,
comparing every byte it reads with the UFS original.

Usage: python alluxio_client.py ETCD_HOST ETCD_PORT < plan.json
  stdin: {"dir": "<UFS URI of the test directory>",
          "files": {"<UFS URI>": "<local path of the original>", ...},
          "workers": ["http://host:port", ...]}
  stdout: a JSON object counting what was checked
  exit status: 0 when everything matched; otherwise 1, with the first mismatch on stderr

The phases, in order (the first touches a cold cluster: nothing has asked a worker about these files):
  1. `read` of every file: the client sends only page reads by path id, no ufsFullPath and no metadata
     call first, so the worker must resolve the id itself.
  2. `read_range` at seeded random offsets and lengths, page edges, past EOF, and to EOF (length None,
     which asks `get_file_status` first).
  3. `listdir` of the directory and `get_file_status` of each file.
  4. `write_page` (the client's only write call: it caches a page) of a full page, then a read.
  5. The worker write endpoints the 1.0.0 client has no calls for (chunk, mkdir, touch, mv, copy, rm),
     sent with `requests` to a worker that is *not* the file's primary; after each, the client's reads
     (which go to the primary, which cached the old bytes) must see the change.
"""

import hashlib
import json
import os
import random
import sys

import requests
from alluxio import AlluxioFileSystem
from byte_checks import PAGE, check, original, run, send_token_on, token_headers


def path_id(uri):
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()


def fails(fn):
    """Whether `fn()` raises (the client raises on every error status)."""
    try:
        fn()
    except Exception:
        return True
    return False


def ranges(length, rng):
    """(offset, length) pairs: edges, past EOF, and random ones."""
    out = [(0, 1), (0, PAGE), (PAGE - 1, 2), (PAGE, 1), (length, 10), (length + PAGE, 5)]
    if length > 0:
        out += [(length - 1, 1), (length - 1, 100), (max(0, length - 3), PAGE * 2)]
    for _ in range(8):
        off = rng.randrange(0, max(1, length + 100))
        out.append((off, rng.randrange(1, 3 * PAGE)))
    return out


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    plan = json.load(sys.stdin)
    files = plan["files"]
    fs = AlluxioFileSystem(etcd_hosts=host, etcd_port=port, etcd_refresh_workers_interval=0)
    counts = {"reads": 0, "ranges": 0, "listed": 0, "statuses": 0, "page_writes": 0, "write_ops": 0}
    rng = random.Random(20240611)

    # 1. Cold whole-file reads.
    for uri, local in files.items():
        want = original(local)
        got = fs.read(uri)
        check(got == want, f"read {uri}: {len(got)} bytes, want {len(want)} (or different bytes)")
        counts["reads"] += 1

    # 2. Ranges.
    for uri, local in files.items():
        want = original(local)
        for off, n in ranges(len(want), rng):
            got = fs.read_range(uri, off, n)
            check(got == want[off:off + n], f"read_range({uri}, {off}, {n}): {len(got)} bytes")
            counts["ranges"] += 1
        off = len(want) // 2
        got = fs.read_range(uri, off, None)
        check(got == want[off:], f"read_range({uri}, {off}, None): {len(got)} bytes")
        counts["ranges"] += 1

    # 3. Listing and status.
    listed = {s.ufs_path: s for s in fs.listdir(plan["dir"])}
    for uri, local in files.items():
        check(uri in listed, f"listdir misses {uri}: {sorted(listed)}")
        s = listed[uri]
        check(s.type == "file" and s.length == os.path.getsize(local), f"listdir entry of {uri}: {s}")
        counts["listed"] += 1
        st = fs.get_file_status(uri)
        check(st.length == os.path.getsize(local) and st.ufs_path == uri, f"get_file_status({uri}): {st}")
        counts["statuses"] += 1

    # 4. write_page: a full page of a file with more than one.
    big = next(u for u, p in files.items() if os.path.getsize(p) > PAGE)
    # It is a write: refused without a token (nothing cached), accepted with one.
    check(fails(lambda: fs.write_page(big, 0, original(files[big])[:PAGE])), f"anonymous write_page of {big}")
    send_token_on("/page/")
    check(fs.write_page(big, 0, original(files[big])[:PAGE]), f"write_page of {big}")
    check(fs.read(big) == original(files[big]), f"read of {big} after write_page")
    counts["page_writes"] += 1

    # 5. Write endpoints through a worker other than the file's primary.
    def other_worker(uri):
        h, p = fs._get_preferred_worker_address(uri)
        primary = f"http://{h}:{p}"
        return next(w for w in plan["workers"] if w != primary)

    def post(op, uri, query, body=None):
        w = other_worker(uri)
        anonymous = requests.post(f"{w}/v1/{op}/{path_id(uri)}?{query}")
        check(anonymous.status_code == 401, f"anonymous {op} on {w}: {anonymous.status_code} {anonymous.text}")
        r = requests.post(f"{w}/v1/{op}/{path_id(uri)}?{query}", data=body, headers=token_headers())
        check(r.status_code == 200 and r.json() == {"success": True}, f"{op} {query} on {w}: {r.status_code} {r.text}")
        counts["write_ops"] += 1

    target, target_local = next((u, p) for u, p in files.items() if 0 < os.path.getsize(p) <= 2 * PAGE)
    new = bytes(rng.randrange(256) for _ in range(PAGE + 7))
    # A generator body goes out with chunked transfer encoding.
    post("chunk", target, f"ufsFullPath={target}", iter([new[:1000], new[1000:]]))
    check(original(target_local) == new, "the chunk write reached the UFS")
    check(fs.read(target) == new, f"read of {target} after an overwrite through another worker")

    base = plan["dir"]
    post("mkdir", f"{base}/made", f"ufsFullPath={base}/made")
    post("touch", f"{base}/made/empty", f"ufsFullPath={base}/made/empty")
    check(fs.read(f"{base}/made/empty") == b"", "a touched file reads empty")
    post("copy", target, f"srcPath={target}&dstPath={base}/made/copy")
    check(fs.read(f"{base}/made/copy") == new, "read of the copy")
    moved = f"{base}/made/moved"
    post("mv", target, f"srcPath={target}&dstPath={moved}")
    check(fs.read(moved) == new, "read of the moved file")
    check(fails(lambda: fs.read(target)), f"{target} is gone after mv, yet reads")
    names = {s.name for s in fs.listdir(f"{base}/made")}
    check(names == {"empty", "copy", "moved"}, f"listdir after the writes: {names}")
    post("rm", f"{base}/made", f"ufsFullPath={base}/made&recursive=True")
    check(fails(lambda: fs.read(moved)), f"{moved} is gone after rm, yet reads")

    json.dump(counts, sys.stdout)
    return 0


if __name__ == "__main__":
    run(main)
