"""The unmodified alluxiofs==1.1.17 on the client host of the partition tests
(crates/loam/tests/e2e/partitions/alluxiofs.rs): three Loam workers, each on a host of its own with the
default ports, listed in the client's `worker_hosts`. Every byte read is compared with the UFS original.

Usage: python alluxiofs_partitions.py run < commands
  stdin: the plan (first line), then one phase a line: `healthy`, `etcd_cut`, `client_cut`, `done`
  stdout: `OK <phase> <json>` once a phase's checks passed; after `done`, a JSON summary
  exit status: 0 when everything matched; otherwise 1, with the first mismatch on stderr

plan: {"workers": [host, ...], "http_port": 28080, "victim": host, "ufs_dir": the local root of the file://
       mount, "ufs_uri": its URI}

The client picks an entry worker by hashing the path over its list (Python's `hash`, fixed for the
process), asks it `/v1/node` for the owner, and reads `GET http://<owner>:29998<cluster path>`; a call that
fails is retried on the `file` target filesystem and recorded (see alluxiofs_client.py). The script writes
one file for each (owner, entry) pair of the three workers, so every worker owns files and is asked for
owners. Each phase uses a fresh client (fresh error counts, no pooled connection):

  healthy     every file read (cat_file whole and a range, open().read()) by the workers: no fallback.
  etcd_cut    the victim cut from etcd: OFFLINE on the other workers' rings, still reachable from here.
              Once the live workers name live owners for the victim's files (waited for), every file is
              read as in `healthy`, without a fallback: an entry that is live names a live owner; the
              victim, as an entry, names the owner on the ring it kept (itself, while cut off) and serves.
  client_cut  the victim cut from the client host (still ONLINE, still the owner of its files), with
              `http_max_retries=1`: a file whose entry or owner is the victim is read with `cat_file`,
              which falls back to `file` (right bytes, error recorded); `open().read()` of one the victim
              owns has no fallback: it raises or reads right. Every other file is served without a
              fallback. The output gives how long each fallen-back read took (a connect to the cut host
              waits for the client host's `tcp_syn_retries`).
"""

import json
import logging
import os
import random
import sys
import time

from alluxiofs_client import client, fell_back, outcome, owner_of, served
from byte_checks import PAGE, check, run

LOG = logging.getLogger("alluxiofs_partitions")


def write_files(plan, fs):
    """One file per (owner, entry) pair: {uri: (bytes, owner, entry)}."""
    port, workers = plan["http_port"], plan["workers"]
    alive = next(w for w in workers if w != plan["victim"])
    rng = random.Random(13)
    files = {}
    for i in range(5000):
        uri = f"{plan['ufs_uri']}/afs/p{i}.bin"
        key = (owner_of(alive, port, uri), fs.alluxio.loadbalancer.get_worker(uri).host)
        if key in {(o, e) for _, o, e in files.values()}:
            continue
        # Sizes around a page, some past it, so reads cross a page edge.
        data = rng.randbytes(PAGE // 3 + rng.randrange(PAGE))
        local = os.path.join(plan["ufs_dir"], "afs", f"p{i}.bin")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(data)
        files[uri] = (data, *key)
        if len(files) == len(workers) ** 2:
            return files
    check(False, f"no file for every (owner, entry) pair: {sorted(files.values())}")


def read_all(fs, uri, want, what):
    """cat_file whole and a range (across a page edge when there is one), and open().read(): served, right."""
    check(served(fs, f"{what}: cat_file({uri})", lambda: fs.cat_file(uri)) == want, f"{what}: cat_file({uri})")
    start, end = (PAGE - 7, PAGE + 9) if len(want) > PAGE + 9 else (len(want) // 3, 2 * len(want) // 3)
    got = served(fs, f"{what}: cat_file({uri}, {start}, {end})", lambda: fs.cat_file(uri, start, end))
    check(got == want[start:end], f"{what}: cat_file({uri}, {start}, {end}): {len(got)} bytes")
    got = served(fs, f"{what}: open({uri}).read()", lambda: fs.open(uri, "rb").read())
    check(got == want, f"{what}: open({uri}).read(): {len(got)} bytes")


def healthy(plan, files):
    fs = client(plan, "file")
    for uri, (want, _, _) in files.items():
        read_all(fs, uri, want, "healthy")
    return {"files": len(files), "owners": sorted({o for _, o, _ in files.values()})}


def etcd_cut(plan, files):
    port, victim = plan["http_port"], plan["victim"]
    alive = [w for w in plan["workers"] if w != victim]
    theirs = [uri for uri, (_, owner, _) in files.items() if owner == victim]
    deadline = time.time() + 30
    while any(owner_of(w, port, uri) == victim for w in alive for uri in theirs):
        check(time.time() < deadline, "the live workers still name the victim as an owner")
        time.sleep(0.1)
    fs = client(plan, "file")
    for uri, (want, _, _) in files.items():
        read_all(fs, uri, want, "victim cut from etcd")
    return {
        "victim_names_for_its_files": sorted({owner_of(victim, port, uri) for uri in theirs}),
        "live_workers_name": sorted({owner_of(w, port, uri) for w in alive for uri in theirs}),
    }


def client_cut(plan, files):
    victim = plan["victim"]
    fs = client(plan, "file", http_max_retries=1)
    out = {"fell_back_seconds": {}, "served": 0}
    entry_cut = next(u for u, (_, _, e) in files.items() if e == victim)
    owner_cut = next(u for u, (_, o, e) in files.items() if o == victim and e != victim)
    for role, uri in [("entry_is_victim", entry_cut), ("owner_is_victim", owner_cut)]:
        t = time.time()
        got = fell_back(fs, f"cat_file({role})", lambda: fs.cat_file(uri))
        out["fell_back_seconds"][role] = round(time.time() - t, 1)
        check(got == files[uri][0], f"cat_file({role}) through the fallback: {len(got)} bytes")
    t = time.time()
    out["open_read_owner_is_victim"] = outcome(lambda: fs.open(owner_cut, "rb").read(), files[owner_cut][0], "open")
    out["open_read_seconds"] = round(time.time() - t, 1)
    for uri, (want, owner, entry) in files.items():
        if victim not in (owner, entry):
            got = served(fs, f"cat_file({uri}) with the victim cut off", lambda: fs.cat_file(uri))
            check(got == want, f"cat_file({uri}) with the victim cut off: {len(got)} bytes")
            out["served"] += 1
    return out


def main():
    logging.basicConfig(level=logging.ERROR)
    plan = json.loads(sys.stdin.readline())
    files = write_files(plan, client(plan, "file"))
    phases = {"healthy": healthy, "etcd_cut": etcd_cut, "client_cut": client_cut}
    done = []
    for line in sys.stdin:
        phase = line.strip()
        if phase == "done":
            break
        print(f"OK {phase} {json.dumps(phases[phase](plan, files))}", flush=True)
        done.append(phase)
    print(json.dumps({"phases": done, "files": len(files)}), flush=True)
    return 0


if __name__ == "__main__":
    run(main)
