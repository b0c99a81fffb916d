//! The dev overlay run for real (issue 15 item 3): `deploy/k8s/overlays/dev` rendered with `kubectl
//! kustomize`, every container started as a kubelet would start it (`kubelet`: its own network namespace
//! and address, its exact command, arguments, environment, user and mounted files, chrooted into its
//! image: the Loam image `scripts/build-image.sh` built from the binary under test, etcd's from Debian's
//! `etcd`), names resolved as cluster DNS would and Services translated as kube-proxy would. Then every
//! readiness and liveness probe is sent as the kubelet sends it, and the walk-through of
//! docs/KUBERNETES.md runs from a client host: mount an S3 bucket (moto on a host of its own, as an
//! in-cluster object store), load it, and read every file through the S3 Service, the unmodified `alluxio`
//! client and `loam fs`, each byte-compared with the original.

mod kubelet;
mod render;

use super::repo;
use kubelet::{Image, Node, containers};
use render::Render;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the whole overlay may take to become ready (etcd's first election, the Coordinators' and the
/// workers' waits for it included).
const READY_CAP: Duration = Duration::from_secs(180);
/// The in-cluster object store the walk-through mounts.
const UFS_HOST: &str = "object-store";
const UFS_PORT: u16 = 9000;
const CLIENT: &str = "client";

/// The Loam image's root filesystem, built from the binary under test.
fn loam_image(dir: &Path) -> Image {
    let binary = dir.join("loam");
    let out = Command::new("objcopy").args(["--strip-all", super::LOAM]).arg(&binary).output().unwrap();
    assert!(out.status.success(), "objcopy: {}", String::from_utf8_lossy(&out.stderr));
    let root = dir.join("loam-root");
    let tag = format!("localhost/loam-k8s-test:{}", std::process::id());
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-image.sh"))
        .arg("--binary")
        .arg(&binary)
        .args(["--tag", &tag])
        .arg("--output")
        .arg(&root)
        .output()
        .unwrap();
    let _ = Command::new("podman").args(["rmi", "-f", &tag]).output();
    assert!(out.status.success(), "build-image.sh: {}", String::from_utf8_lossy(&out.stderr));
    Image {
        matches: "/loam:".into(),
        root,
        entrypoint: vec!["loam".into()],
        env: vec![("PATH".into(), "/usr/local/bin".into())],
    }
}

/// etcd's image: Debian's `etcd` and the libraries it links, at `/usr/local/bin/etcd` as in etcd's own.
fn etcd_image(dir: &Path) -> Image {
    let root = dir.join("etcd-root");
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    // etcd's image has etcdctl too: docs/KUBERNETES.md backs etcd up with it.
    for program in ["etcd", "etcdctl"] {
        let from = format!("/usr/bin/{program}");
        std::fs::copy(&from, bin.join(program)).expect("Debian's etcd (scripts/setup-test-deps.sh)");
        let ldd = Command::new("ldd").arg(&from).output().unwrap();
        for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
            let to = root.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(lib, &to).unwrap();
        }
    }
    for d in ["etc", "tmp", "var/lib/etcd"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/:/nonexistent\netcd:x:65532:65532::/:/nonexistent\n")
        .unwrap();
    Image {
        matches: "etcd".into(),
        root,
        entrypoint: vec!["etcd".into()],
        env: vec![("PATH".into(), "/usr/local/bin".into())],
    }
}

/// The files of the walk-through's dataset: empty, one byte, page edges, several pages.
fn dataset() -> Vec<(String, Vec<u8>)> {
    [0usize, 1, (1 << 20) - 1, 1 << 20, (3 << 20) + 17]
        .iter()
        .enumerate()
        .map(|(i, len)| (format!("train/part-{i}.bin"), loam_testsupport::data::pattern(*len, i as u8)))
        .collect()
}

/// More files, so that every worker holds some: what the drain must move.
fn more_files() -> Vec<(String, Vec<u8>)> {
    (0..30).map(|i| (format!("more/f{i:02}"), loam_testsupport::data::pattern(1000 + 3217 * i, i as u8))).collect()
}

/// `program args` on host `i`, to its end; panics with its output when it fails.
fn on(node: &Node, i: usize, program: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let out = node
        .net
        .command(i, "timeout")
        .arg("120")
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", node.dir.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        node.logs()
    );
    out.stdout
}

/// `curl` on host `i` with the admin token: the status (0: no answer) and the body as JSON (`Null` if none).
fn api(node: &Node, i: usize, token: &str, method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let mut cmd = node.net.command(i, "curl");
    cmd.args(["-s", "--max-time", "5", "-X", method, "-w", "\n%{http_code}"]).args([
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "content-type: application/json",
    ]);
    if let Some(b) = body {
        cmd.args(["-d", b]);
    }
    let out = cmd.arg(url).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), serde_json::from_str(json).unwrap_or_default())
}

/// Waits until every container's readiness probe passes (a container without one: its liveness probe,
/// else being started); panics with every log when one does not within [`READY_CAP`].
fn wait_ready(node: &mut Node) -> Duration {
    let start = Instant::now();
    loop {
        // Every container waits for what it needs (etcd, the Coordinator, a Secret file) and says why: none
        // exits, so the kubelet never has to restart one.
        let restarted = node.restart_exited();
        assert!(restarted.is_empty(), "{restarted:?} exited:\n{}", node.logs());
        let mut waiting = Vec::new();
        for (i, pod) in node.pods.iter().enumerate() {
            for c in pod.spec["containers"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap();
                if let Some(Err(why)) = node.probe(i, name, "readinessProbe") {
                    waiting.push(format!("{}/{name}: {why}", pod.name));
                }
            }
        }
        if waiting.is_empty() {
            return start.elapsed();
        }
        assert!(start.elapsed() < READY_CAP, "not ready within {READY_CAP:?}: {waiting:#?}\n{}", node.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_dev_overlay_runs_and_serves_the_walk_through() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("\n\n*** SKIPPED: network namespaces, mounts and chroot need root ***\n");
        return;
    }
    let images = tempfile::tempdir().unwrap();
    let render = Render::of(&repo().join("deploy/k8s/overlays/dev"));
    let ns = render.namespace();
    let mut node = Node::new(render, vec![loam_image(images.path()), etcd_image(images.path())], &[UFS_HOST, CLIENT]);
    let (ufs, client) = (node.extra(UFS_HOST), node.extra(CLIENT));

    // The object store: moto on its own host, a bucket with the dataset (written with boto3 from the client).
    let venv = loam_testsupport::s3_server::venv_dir();
    let log = node.dir.path().join("object-store.log");
    let moto = venv.join("bin/moto_server");
    let args: Vec<String> =
        ["netns", "exec", &node.net.host(ufs).ns.clone(), moto.to_str().unwrap(), "-H", "0.0.0.0", "-p", "9000"]
            .map(String::from)
            .to_vec();
    let _moto =
        loam_testsupport::process::Server::start_until(Path::new("/usr/sbin/ip"), &args, &log, || true).unwrap();
    let ufs_url = format!("http://{UFS_HOST}:{UFS_PORT}");
    let originals = node.dir.path().join("originals");
    for (name, bytes) in dataset().into_iter().chain(more_files()) {
        let p = originals.join(&name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let python = venv.join("bin/python3");
    let upload = "import boto3,os,sys,time\nfrom botocore.config import Config\n\
        s3=boto3.client('s3',endpoint_url=sys.argv[1],aws_access_key_id='k',aws_secret_access_key='s',region_name='us-east-1')\n\
        for _ in range(100):\n  try: s3.create_bucket(Bucket='datasets'); break\n  except Exception: time.sleep(0.2)\n\
        for d,_,fs in os.walk(sys.argv[2]):\n  for f in fs:\n    p=os.path.join(d,f); s3.upload_file(p,'datasets',os.path.relpath(p,sys.argv[2]))\n";
    on(&node, client, python.to_str().unwrap(), &["-c", upload, &ufs_url, originals.to_str().unwrap()], &[]);

    // Every pod, and the probes as the kubelet sends them.
    node.start_all();
    let took = wait_ready(&mut node);
    eprintln!("every container of the dev overlay was ready after {took:?}");
    for (i, pod) in node.pods.iter().enumerate() {
        for c in containers(&pod.spec) {
            let name = c["name"].as_str().unwrap();
            for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(r) = node.probe(i, name, kind) {
                    let what = r.unwrap_or_else(|e| panic!("{}/{name} {kind}: {e}\n{}", pod.name, node.logs()));
                    eprintln!("{}/{name} {kind}: {what}", pod.name);
                }
            }
        }
    }

    // The walk-through, from the client host, through the Services' names.
    let tokens = String::from_utf8(node.keys("Secret", "loam-tokens")["auth-tokens"].clone()).unwrap();
    let admin = tokens.lines().find_map(|l| l.strip_prefix("admin ")).expect("an admin token").trim().to_string();
    let coordinator = format!("http://loam-coordinator.{ns}.svc.cluster.local:19999");
    let env = [("LOAM_COORDINATOR", coordinator.as_str()), ("LOAM_TOKEN", admin.as_str())];
    let loam = super::LOAM;
    let endpoint = format!("s3.endpoint={ufs_url}");
    on(
        &node,
        client,
        loam,
        &[
            "mount",
            "add",
            "/data",
            "s3://datasets/",
            "-o",
            &endpoint,
            "-o",
            "s3a.accessKeyId=k",
            "-o",
            "s3a.secretKey=s",
        ],
        &env,
    );
    let job = on(&node, client, loam, &["job", "load", "--path", "/data", "--sync"], &env);
    assert!(String::from_utf8_lossy(&job).contains("SUCCEEDED"), "{}", String::from_utf8_lossy(&job));

    let keys = node.keys("Secret", "loam-s3-keys");
    let (access, secret) = (
        String::from_utf8(keys["access-key"].clone()).unwrap(),
        String::from_utf8(keys["secret-key"].clone()).unwrap(),
    );
    let s3 = format!("http://loam-s3.{ns}.svc.cluster.local:29998");
    let workers: Vec<String> = node
        .pods
        .iter()
        .filter(|p| p.owner == "StatefulSet/loam-worker")
        .map(|p| format!("{}.loam-worker.{ns}.svc.cluster.local", p.name))
        .collect();
    let read_s3 = "import boto3,sys\n\
        s3=boto3.client('s3',endpoint_url=sys.argv[1],aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3],region_name='us-east-1')\n\
        sys.stdout.buffer.write(s3.get_object(Bucket='data',Key=sys.argv[4])['Body'].read())\n";
    let read_alluxio = "import sys\nfrom alluxio import AlluxioFileSystem\n\
        fs=AlluxioFileSystem(worker_hosts=sys.argv[1],etcd_refresh_workers_interval=0)\n\
        sys.stdout.buffer.write(fs.read(sys.argv[2]))\n";
    for (name, bytes) in dataset() {
        let via_s3 = on(&node, client, python.to_str().unwrap(), &["-c", read_s3, &s3, &access, &secret, &name], &[]);
        assert!(via_s3 == bytes, "{name} through the S3 Service: {} bytes, want {}", via_s3.len(), bytes.len());
        let via_fs = on(&node, client, loam, &["fs", "cat", &format!("/data/{name}")], &env);
        assert!(via_fs == bytes, "{name} through loam fs: {} bytes, want {}", via_fs.len(), bytes.len());
        let uri = format!("s3://datasets/{name}");
        let via_alluxio =
            on(&node, client, python.to_str().unwrap(), &["-c", read_alluxio, &workers.join(","), &uri], &[]);
        assert!(via_alluxio == bytes, "{name} through alluxio: {} bytes, want {}", via_alluxio.len(), bytes.len());
    }

    // The node's FUSE mount, as the FUSE container sees it (its mount namespace and root).
    let fuse = node.pods.iter().position(|p| p.owner == "DaemonSet/loam-fuse").expect("the FUSE DaemonSet");
    let pid = node.pid(fuse, "fuse").to_string();
    let mnt = node.root(fuse, "fuse").join("mnt/loam");
    for (name, bytes) in dataset() {
        let path = mnt.join("data").join(&name);
        // The mount table is followed with a TTL: the mount made above may take a moment to appear.
        let deadline = Instant::now() + Duration::from_secs(60);
        let out = loop {
            let out =
                Command::new("timeout").args(["60", "nsenter", "-t", &pid, "-m", "cat"]).arg(&path).output().unwrap();
            if out.status.success() || Instant::now() > deadline {
                break out;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{} through FUSE: {err}\n{}", path.display(), node.logs());
        assert!(out.stdout == bytes, "{name} through FUSE: {} bytes, want {}", out.stdout.len(), bytes.len());
    }

    // The backup of docs/KUBERNETES.md: a snapshot taken inside an etcd member with its own certificate.
    let etcd0 = node.pods.iter().position(|p| p.name == "loam-etcd-0").expect("etcd member 0");
    let tls = ["--cacert", "/etc/etcd/tls/ca.crt", "--cert", "/etc/etcd/tls/tls.crt", "--key", "/etc/etcd/tls/tls.key"];
    let mut save: Vec<String> = ["etcdctl", "--endpoints", "https://127.0.0.1:2379"].map(String::from).to_vec();
    save.extend(tls.map(String::from));
    save.extend(["snapshot", "save", "/var/lib/etcd/snapshot.db"].map(String::from));
    let out = node.exec(etcd0, "etcd", &save);
    assert!(out.status.success(), "etcdctl snapshot save: {}", String::from_utf8_lossy(&out.stderr));
    let status = node.exec(
        etcd0,
        "etcd",
        &["etcdctl", "snapshot", "status", "/var/lib/etcd/snapshot.db", "-w", "json"].map(String::from),
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("etcdctl snapshot status JSON");
    assert!(status["totalKey"].as_u64().is_some_and(|n| n > 0), "the snapshot holds the cluster's keys: {status}");

    // The leader Coordinator dies (`kill -9`) during a load: the other one leads within the lease TTL, the
    // API answers again through the Service within 15 s, and the load ends SUCCEEDED counting each byte once.
    let (status, who) = api(&node, client, &admin, "GET", &format!("{coordinator}/api/v1/coordinators"), None);
    assert_eq!(status, 200, "{who}");
    let leader_url = who["leader"].as_str().expect("a leader").to_string();
    let leader = (0..node.pods.len())
        .find(|i| leader_url.contains(&format!("//{}:", node.addr(*i))))
        .unwrap_or_else(|| panic!("no pod is the leader {leader_url}"));
    on(&node, client, loam, &["job", "free", "--path", "/data", "--sync"], &env);
    let total: u64 = dataset().iter().chain(&more_files()).map(|(_, b)| b.len() as u64).sum();
    // 256 KiB/s per worker: the load lasts a few seconds, long enough to outlive its leader.
    let body = r#"{"paths": ["/data"], "options": {"bandwidth": 262144}}"#;
    let (status, v) = api(&node, client, &admin, "POST", &format!("{coordinator}/api/v1/load"), Some(body));
    assert_eq!(status, 200, "{v}");
    let id = v["id"].as_str().expect("a job id").to_string();
    node.kill_pod(leader);
    let killed = Instant::now();
    let progress = format!("{coordinator}/api/v1/load?id={id}");
    let (mut read_again, mut new_leader) = (None, None);
    let end = loop {
        let (status, v) = api(&node, client, &admin, "GET", &progress, None);
        if status == 200 {
            read_again.get_or_insert(killed.elapsed());
        }
        // Writes are answered again once another Coordinator leads.
        let (_, who) = api(&node, client, &admin, "GET", &format!("{coordinator}/api/v1/coordinators"), None);
        if who["leader"].as_str().is_some_and(|l| l != leader_url) {
            new_leader.get_or_insert(killed.elapsed());
        }
        if status == 200 && v["state"] != "RUNNING" && new_leader.is_some() {
            break v;
        }
        assert!(killed.elapsed() < Duration::from_secs(120), "the load did not end: {v}\n{}", node.logs());
        std::thread::sleep(Duration::from_millis(200));
    };
    let (read_again, new_leader) = (read_again.expect("answered"), new_leader.expect("a new leader"));
    eprintln!(
        "leader {} killed: reads answered again after {read_again:?}, another Coordinator led after {new_leader:?}, the load ended {}",
        node.pods[leader].name, end["state"]
    );
    assert!(new_leader <= Duration::from_secs(15), "no Coordinator led for {new_leader:?}");
    assert_eq!(end["state"], "SUCCEEDED", "{end}");
    assert_eq!(end["loadedBytes"].as_u64(), Some(total), "every byte loaded once: {end}");
    node.start_pod(leader);
    wait_ready(&mut node);

    // A worker leaves as a scale-down takes it: the kubelet runs its preStop hook (`loam worker drain`),
    // then stops it. Every cached file stays cached, on its owner among the workers that are left.
    let last = node.pods.iter().rposition(|p| p.owner == "StatefulSet/loam-worker").expect("a worker");
    let drained = node.pre_stop(last, "worker");
    let report = String::from_utf8_lossy(&drained.stdout);
    assert!(
        drained.status.success(),
        "preStop of {}: {report}{}",
        node.pods[last].name,
        String::from_utf8_lossy(&drained.stderr)
    );
    eprintln!("preStop of {}: {report}", node.pods[last].name);
    let moved = report.split(": ").nth(2).and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<u64>().ok());
    assert!(moved.is_some_and(|n| n > 0), "the drained worker moved files: {report}");
    node.kill_pod(last);
    for (name, bytes) in dataset().into_iter().chain(more_files()).filter(|(_, b)| !b.is_empty()) {
        let stat = on(&node, client, loam, &["fs", "stat", &format!("/data/{name}")], &env);
        let stat = String::from_utf8_lossy(&stat);
        assert!(stat.contains("cached:   100%"), "{name} after the drain:\n{stat}");
        let via_fs = on(&node, client, loam, &["fs", "--no-ufs-fallback", "cat", &format!("/data/{name}")], &env);
        assert!(via_fs == bytes, "{name} after the drain: {} bytes, want {}", via_fs.len(), bytes.len());
    }
}
