"""Drives the unmodified fsspec client alluxiofs==1.1.17 (`alluxiofs.AlluxioFileSystem`) against Loam workers
that each serve on their own loopback address with the default ports (HTTP 28080, S3 29998), as the client
needs: it asks a listed worker `/v1/node` for a file's owner and then reads ranges from port 29998 of the
host named there. Every byte read is compared with the UFS original.

Usage: python alluxiofs_client.py suite|failover < plan.json (the plans: `suite()` and `failover()`)
  stdout: a JSON object counting what was checked (failover: first the line "KILL <host>", see there)
  exit status: 0 when everything matched; otherwise 1, with the first mismatch on stderr

What the unmodified client does, and so what these checks rely on:
  - `worker_hosts` must carry the ports ("h1:28080,h2:28080"): with bare hosts 1.1.17's worker-list load
    balancer calls `.replace` on the integer port and the constructor raises AttributeError.
  - `ls(path)` (detail=False) always falls back to the target filesystem: it reads `.path` of the client's
    status objects, which have none. `ls(path, detail=True)` is served by the workers (`/v1/files`).
  - `info` is `/v1/info` on the owner; `open().read()` and `cat_file` read `GET http://<owner>:29998<name>`
    with a `Range` header, `name` being the cluster path of `info`; `read_bytes` is `/v1/chunk` on the owner.
  - `cat_file(path, start)` without an end sends `Range: bytes=<start>-<start - 2>`, which is no valid
    range: S3 (and Loam, and Alluxio's own S3 range parser) ignore it, so the whole object comes back.
  - A range starting at or past the end is S3's `416`: the client then falls back to the target
    filesystem (empty bytes from `file`), or raises when it has none.
  - One range may not exceed 20 MiB (the client's pycurl `MAXFILESIZE`), so the files here are smaller.
  - `load` submits through the owner's `/v1/load` and polls progress every 10 s: it runs on a thread
    beside the other checks. A load is a Coordinator write, never anonymous: the client sends no
    credentials, so a load without a token must fail, and the script then lets the requests library add
    `Authorization: Bearer $LOAM_TOKEN` to `/v1/load` calls (what a deployment's session hook or proxy does).
  - Whenever a call fails, the client retries it on the target filesystem and records the error in
    `get_error_metrics()`; the checks read that record, so a read the workers did not serve is never
    mistaken for one they did.
"""

import json
import logging
import os
import random
import sys
import threading
import time

import requests
from alluxiofs import AlluxioFileSystem
from byte_checks import PAGE, check, fails, original, run, send_token_on

LOG = logging.getLogger("alluxiofs_client")


def client(plan, target, **options):
    """An alluxiofs filesystem over the plan's workers; `target` is the fallback protocol (or None),
    `options` more of the client's settings (e.g. `http_max_retries`)."""
    hosts = ",".join(f"{h}:{plan['http_port']}" for h in plan["workers"])
    # A fresh instance each time (fsspec caches instances by their arguments), so error counts start at 0.
    return AlluxioFileSystem(
        worker_hosts=hosts, target_protocol=target, logger=LOG, skip_instance_cache=True, **options
    )


def fallbacks(fs):
    """How many calls failed on the workers and were retried on the target filesystem (or raised)."""
    return sum(fs.get_error_metrics()["error_counts"].values())


def served(fs, what, fn):
    """`fn()`, which the workers must serve without a fallback."""
    before = fallbacks(fs)
    out = fn()
    check(fallbacks(fs) == before, f"{what} was not served by the workers: {fs.get_error_metrics()['last_errors']}")
    return out


def fell_back(fs, what, fn):
    """`fn()`, which must fail on the workers and be answered by the target filesystem."""
    before = fallbacks(fs)
    out = fn()
    check(fallbacks(fs) > before, f"{what} was expected to fall back to the target filesystem")
    return out


def raises(fn):
    try:
        fn()
    except Exception:
        return True
    return False


def outcome(fn, want, what):
    """"read" when `fn()` returns `want`, "raised" when it raises; wrong bytes are a mismatch."""
    try:
        got = fn()
    except Exception:
        return "raised"
    check(got == want, f"{what} returned {len(got)} wrong bytes")
    return "read"


def ranges(size, rng):
    """(start, end) pairs inside the file, across page edges, and ending past EOF."""
    out = [(0, 1), (0, size), (size - 1, size), (max(0, size - 3), size + 100), (max(0, size - 1), size + PAGE)]
    if size > PAGE:
        out += [(PAGE - 1, PAGE + 1), (PAGE, PAGE + 1), (PAGE - 5, 2 * PAGE + 5)]
    for _ in range(6):
        start = rng.randrange(0, size)
        out.append((start, start + rng.randrange(1, 3 * PAGE)))
    return out


def check_mount(fs, m, rng, counts):
    """ls, info, open().read(), cat_file and read_bytes of every file of mount `m`."""
    target = m["target"]
    listed = served(fs, f"ls {m['dir']}", lambda: fs.ls(m["dir"], detail=True))
    by_uri = {e["ufs_path"]: e for e in listed}
    check(set(by_uri) == set(m["files"]), f"ls {m['dir']}: {sorted(by_uri)}, want {sorted(m['files'])}")
    for uri, local in m["files"].items():
        want = original(local)
        name = m["cluster_dir"] + "/" + uri.rsplit("/", 1)[1]
        e = by_uri[uri]
        check(e["type"] == "file" and e["size"] == len(want) and e["name"] == name, f"ls entry of {uri}: {e}")
        counts["listed"] += 1

        info = served(fs, f"info {uri}", lambda: fs.info(uri))
        check(info["type"] == "file" and info["size"] == len(want), f"info {uri}: {info}")
        check(info["name"] == name and info["ufs_path"] == uri, f"info {uri}: {info}")
        counts["infos"] += 1

        got = served(fs, f"open({uri}).read()", lambda: fs.open(uri, "rb").read())
        check(got == want, f"open({uri}).read(): {len(got)} bytes, want {len(want)}")
        if want:
            with fs.open(uri, "rb") as f:
                for _ in range(3):
                    off = rng.randrange(0, len(want))
                    n = rng.randrange(1, 2 * PAGE)
                    f.seek(off)
                    part = served(fs, f"seek/read of {uri}", lambda: f.read(n))
                    check(part == want[off : off + n], f"open({uri}) seek({off}) read({n}): {len(part)} bytes")
        counts["opens"] += 1

        got = served(fs, f"cat_file({uri})", lambda: fs.cat_file(uri))
        check(got == want, f"cat_file({uri}): {len(got)} bytes, want {len(want)}")
        counts["cats"] += 1
        if want:
            for start, end in ranges(len(want), rng):
                got = served(fs, f"cat_file({uri}, {start}, {end})", lambda: fs.cat_file(uri, start, end))
                check(got == want[start:end], f"cat_file({uri}, {start}, {end}): {len(got)} bytes")
                counts["cats"] += 1
            # The client's own Range for an open end is invalid, so the whole object comes back (see above).
            got = served(fs, f"cat_file({uri}, 1)", lambda: fs.cat_file(uri, 1))
            check(got == want, f"cat_file({uri}, 1) is the whole object: {len(got)} bytes")
        # A start at or past the end: S3's 416, which the client answers from its target filesystem.
        for start in (len(want), len(want) + PAGE):
            if target:
                got = fell_back(fs, f"cat_file({uri}, {start})", lambda: fs.cat_file(uri, start, start + 10))
                check(got == b"", f"cat_file({uri}, {start}, {start + 10}) past EOF: {got[:20]!r}")
            else:
                check(raises(lambda: fs.cat_file(uri, start, start + 10)), f"cat_file({uri}) past EOF did not fail")
            counts["past_eof"] += 1

        got = served(fs, f"read_bytes({uri})", lambda: fs.read_bytes(uri))
        check(got == want, f"read_bytes({uri}): {len(got)} bytes, want {len(want)}")
        counts["read_bytes"] += 1


def upload_to_moto(moto, files):
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=moto["endpoint"],
        aws_access_key_id=moto["access_key"],
        aws_secret_access_key=moto["secret_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    for uri, local in files.items():
        bucket, key = uri[len("s3://") :].split("/", 1)
        s3.upload_file(local, bucket, key)


def suite(plan):
    """plan: {"workers": [host, ...], "http_port": 28080, "moto": {endpoint, access_key, secret_key},
              "mounts": [{"target": "file" or null, "dir": UFS URI, "cluster_dir": "/data/afs",
                          "files": {UFS URI: local original}, "load_dir": UFS URI,
                          "load_files": {UFS URI: local original}}, ...]}
    S3 mounts' originals are uploaded to moto first. For each mount, `load` of its load_dir runs on a thread
    while every file of its dir is checked; then every loaded file must be wholly cached (in Alluxio 100%)
    on the worker that answers for it, and read back right."""
    counts = {k: 0 for k in ["listed", "infos", "opens", "cats", "past_eof", "read_bytes", "loaded"]}
    rng = random.Random(20250611)
    for m in plan["mounts"]:
        if m["dir"].startswith("s3://"):
            upload_to_moto(plan["moto"], {**m["files"], **m["load_files"]})
    for m in plan["mounts"]:
        fs = client(plan, m["target"])
        if not counts["loaded"]:
            check(fails(lambda: fs.alluxio.load(m["load_dir"])), f"an anonymous load({m['load_dir']}) is refused")
            send_token_on("/v1/load")
        loaded = {}
        loader = threading.Thread(target=lambda: loaded.update(ok=fs.alluxio.load(m["load_dir"])), daemon=True)
        loader.start()
        check_mount(fs, m, rng, counts)
        loader.join()
        check(loaded.get("ok") is True, f"load({m['load_dir']}) returned {loaded.get('ok')!r}")
        for uri, local in m["load_files"].items():
            st = fs.alluxio.get_file_status(uri)
            check(st.in_alluxio_percentage == 100, f"{uri} after load: {st.in_alluxio_percentage}% cached")
            got = served(fs, f"cat_file({uri}) after load", lambda: fs.cat_file(uri))
            check(got == original(local), f"cat_file({uri}) after load: {len(got)} bytes")
            counts["loaded"] += 1
    return counts


def owner_of(worker, port, uri):
    """The host that `worker` names as the owner of `uri` (`/v1/node`)."""
    r = requests.get(f"http://{worker}:{port}/v1/node", params={"path": uri}, timeout=30)
    r.raise_for_status()
    return r.json()["Host"]


def failover(plan):
    """plan: {"workers": [host, ...], "http_port": 28080, "victim": host, "etcd": [host, port],
              "ufs_dir": local root of the file:// mount, "ufs_uri": its URI}

    Three files are written into the UFS, chosen by where the two clients send them (alluxiofs asks the
    listed worker its hash picks, the "entry", for the owner; alluxio 1.0.0 reads from the owner on its
    own etcd-built ring):
      F: owned by the victim, entry alive;   G: entry is the victim;   H: neither.
    Both clients read all three (the victim caches F). Then the script prints "KILL <victim>" and waits
    for a line on stdin: the test kills the victim with SIGKILL and answers. Then:
      1. at once (the dead worker's lease may still hold it on the ring): alluxiofs's `cat_file` returns
         the right bytes, from the workers or else from its `file` fallback (which it must take while the
         ring still names the dead owner); reads of an opened file have no fallback, and alluxio 1.0.0 has
         none at all: those either read F right or raise, never return wrong bytes;
      2. once the lease expired (every live worker's /v1/node names a live owner for F, and the alluxio
         ring dropped the victim): the workers serve F to both clients again, without a fallback, and
         the new owner caches it; G keeps falling back (its listed entry is dead for this client)."""
    from alluxio import AlluxioFileSystem as EtcdClient

    port, victim = plan["http_port"], plan["victim"]
    alive = [w for w in plan["workers"] if w != victim]
    fs = client(plan, "file")
    etcd_host, etcd_port = plan["etcd"]
    ax = EtcdClient(etcd_hosts=etcd_host, etcd_port=etcd_port, etcd_refresh_workers_interval=1)
    rng = random.Random(7)

    def entry(uri):
        return fs.alluxio.loadbalancer.get_worker(uri).host

    wanted = {
        "F": lambda u: owner_of(alive[0], port, u) == victim and entry(u) != victim,
        "G": lambda u: entry(u) == victim,
        "H": lambda u: owner_of(alive[0], port, u) != victim and entry(u) != victim,
    }
    files = {}
    for i in range(10000):
        uri = f"{plan['ufs_uri']}/failover/f{i}.bin"
        role = next((r for r, ok in wanted.items() if r not in files and ok(uri)), None)
        if role:
            data = bytes(rng.randrange(256) for _ in range(PAGE + 4099 * (1 + len(files))))
            local = os.path.join(plan["ufs_dir"], "failover", f"f{i}.bin")
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as f:
                f.write(data)
            files[role] = (uri, data)
        if len(files) == len(wanted):
            break
    check(len(files) == len(wanted), f"no file for every role: {sorted(files)}")

    for role, (uri, want) in files.items():
        check(served(fs, f"cat_file({role})", lambda: fs.cat_file(uri)) == want, f"alluxiofs warm read of {role}")
        check(ax.read(uri) == want, f"alluxio warm read of {role}")

    print(f"KILL {victim}", flush=True)
    check(sys.stdin.readline().strip() == "killed", "the test did not confirm the kill")

    out = {}
    F, G, H = (files[r] for r in "FGH")
    listed_before = owner_of(entry(F[0]), port, F[0]) == victim
    f_before = fallbacks(fs)
    check(fs.cat_file(F[0]) == F[1], "alluxiofs read of F right after the kill")
    out["F_fell_back_at_once"] = fallbacks(fs) > f_before
    # An opened file reads outside the fallback wrapper: a dead owner is an IOError, never wrong bytes.
    out["F_open_read_at_once"] = outcome(lambda: fs.open(F[0], "rb").read(), F[1], "open(F).read() after the kill")
    listed_after = owner_of(entry(F[0]), port, F[0]) == victim
    out["F_owner_listed_throughout"] = listed_before and listed_after
    if listed_before and listed_after:
        check(out["F_fell_back_at_once"], "F's owner is dead and still on the ring, yet the workers served it")
    check(fell_back(fs, "alluxiofs read of G", lambda: fs.cat_file(G[0])) == G[1], "alluxiofs read of G")
    check(served(fs, "alluxiofs read of H", lambda: fs.cat_file(H[0])) == H[1], "alluxiofs read of H")
    out["alluxio_F_at_once"] = outcome(lambda: ax.read(F[0]), F[1], "alluxio read of F right after the kill")
    check(ax.read(H[0]) == H[1], "alluxio read of H right after the kill")

    deadline = time.time() + 120
    while True:
        owners = {owner_of(w, port, F[0]) for w in alive}
        if victim not in owners and ax._get_preferred_worker_address(F[0])[0] != victim:
            break
        check(time.time() < deadline, f"the victim is still on the ring: {owners}")
        time.sleep(0.2)

    new_owner = owner_of(alive[0], port, F[0])
    check(new_owner in alive, f"F's new owner {new_owner} is a live worker")
    check(served(fs, "alluxiofs read of F after the lease", lambda: fs.cat_file(F[0])) == F[1], "F after lease")
    check(served(fs, "open(F).read()", lambda: fs.open(F[0], "rb").read()) == F[1], "open(F) after the lease")
    for start, end in ranges(len(F[1]), rng):
        got = served(fs, f"cat_file(F, {start}, {end})", lambda: fs.cat_file(F[0], start, end))
        check(got == F[1][start:end], f"cat_file(F, {start}, {end}) after the lease: {len(got)} bytes")
    check(served(fs, "read_bytes(F)", lambda: fs.read_bytes(F[0])) == F[1], "read_bytes(F) after the lease")
    st = fs.alluxio.get_file_status(F[0])
    check(st.in_alluxio_percentage == 100, f"the new owner caches F: {st.in_alluxio_percentage}%")
    check(ax.read(F[0]) == F[1], "alluxio read of F after the lease")
    check(ax.read_range(F[0], PAGE - 3, 10) == F[1][PAGE - 3 : PAGE + 7], "alluxio read_range of F after the lease")
    check(fell_back(fs, "alluxiofs read of G after the lease", lambda: fs.cat_file(G[0])) == G[1], "G after lease")
    check(served(fs, "alluxiofs read of H after the lease", lambda: fs.cat_file(H[0])) == H[1], "H after lease")
    out["new_owner"] = new_owner
    out["checked"] = True
    return out


def main():
    logging.basicConfig(level=logging.ERROR)
    mode = sys.argv[1]
    plan = json.loads(sys.stdin.readline())
    out = suite(plan) if mode == "suite" else failover(plan)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    run(main)
