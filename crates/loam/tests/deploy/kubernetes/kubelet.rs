//! A kubelet and a kube-proxy for one rendered overlay, on network namespaces (`loam_testsupport::netns`):
//! each pod is a host of its own with its own address, and each container runs its exact command,
//! arguments, environment, user and mounted files, chrooted into its image's root filesystem.
//!
//! - **Images.** An image is a root filesystem on disk (the Loam image as `scripts/build-image.sh` built
//!   and exported it; etcd's as a root holding Debian's static `etcd` binary at the path the manifest
//!   names), matched by a part of the image reference.
//! - **Containers.** `ip netns exec <pod> unshare -m sh -c …`: in its own mount namespace the container's
//!   root is a bind of the image's root (read-only when `readOnlyRootFilesystem`), with `/dev`, `/proc`,
//!   the pod's `/etc/hosts` and every volume mount (`subPath`, `readOnly`) bound in, then `chroot
//!   --userspec` to the pod's or container's user and `fsGroup`, with exactly the container's environment
//!   (`value`, `fieldRef`, `secretKeyRef`, `configMapKeyRef`, `resourceFieldRef`, `envFrom`, `$(VAR)`
//!   expansion). Every step execs the next, so the server's pid is the process's.
//! - **Volumes.** ConfigMaps and Secrets (`items`, `defaultMode`, projected) are written from the render;
//!   `emptyDir` is a directory per pod; a claim of a StatefulSet's template is a directory per claim that
//!   outlives the pod (so a restarted pod finds its data); `hostPath` is a directory of the one node.
//!   Directories are owned by the user and `fsGroup`, as the kubelet does it.
//! - **Names.** Every host's `/etc/hosts` names what cluster DNS would: a StatefulSet pod as
//!   `<pod>.<service>.<namespace>.svc.cluster.local` and its shorter forms, a headless Service as its pods'
//!   addresses, and any other Service as its virtual address.
//! - **Services.** kube-proxy's nftables mode, as rules in every host: a Service's virtual address and port
//!   are translated to a random one of its pods, at the container port its `targetPort` names.
//! - **Probes** are sent as the kubelet sends them: `httpGet` and `tcpSocket` to the pod's address (from
//!   the pod's namespace), `exec` inside the container (`nsenter` into its namespaces and root).
//!
//! Not modelled: NetworkPolicies (they need a CNI that enforces them), resource limits (no cgroups
//! here), restarts by the kubelet (a test restarts a pod itself), the API server.

use super::render::{Pod, Render, selects};
use base64::Engine;
use loam_testsupport::netns::{Net, nft};
use loam_testsupport::process::{Server, log_path, tail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `ip` command.
const IP: &str = "/usr/sbin/ip";
/// The cluster's DNS domain.
const DOMAIN: &str = "svc.cluster.local";
/// The first Service virtual address's last byte (pods and other hosts are numbered from 1).
const FIRST_VIP: u8 = 200;

/// An image: references containing `matches` run from `root`, whose `ENTRYPOINT` is `entrypoint`.
pub struct Image {
    pub matches: String,
    pub root: PathBuf,
    pub entrypoint: Vec<String>,
    /// The image's `ENV` (`PATH` above all), under the container's own.
    pub env: Vec<(String, String)>,
}

/// One Service as kube-proxy sees it.
struct Service {
    name: String,
    /// `None`: headless.
    vip: Option<Ipv4Addr>,
    /// The pods it selects, by index.
    pods: Vec<usize>,
    /// `(port, targetPort)` of each TCP port (`targetPort` a number or a container port's name).
    ports: Vec<(u16, Value)>,
    /// `sessionAffinity: ClientIP`: a client always reaches the same pod.
    sticky: bool,
}

/// The node: its pods on their hosts, the extra hosts a test asked for (clients, a UFS), and the running
/// containers.
pub struct Node {
    pub net: Net,
    pub dir: tempfile::TempDir,
    pub render: Render,
    pub pods: Vec<Pod>,
    images: Vec<Image>,
    services: Vec<Service>,
    /// Names of the extra hosts, after the pods.
    extra: Vec<String>,
    /// The running containers: `(pod index, container name, server)`.
    running: Vec<(usize, String, Server)>,
    /// Pods killed and not started again: out of every Service's endpoints.
    down: std::collections::BTreeSet<usize>,
}

impl Node {
    /// The hosts of `render`'s pods plus `extra` hosts (named: they get `/etc/hosts` entries too), names
    /// and Services set up; nothing started.
    pub fn new(render: Render, images: Vec<Image>, extra: &[&str]) -> Self {
        let pods = render.pods();
        let net = Net::new(pods.len() + extra.len());
        let dir = tempfile::tempdir().expect("a directory for the node");
        let mut node = Self {
            net,
            dir,
            pods,
            images,
            services: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            running: Vec::new(),
            down: Default::default(),
            render,
        };
        node.services = node.read_services();
        node.write_names();
        node.program_proxy();
        node
    }

    /// The host index of extra host `name`.
    pub fn extra(&self, name: &str) -> usize {
        self.pods.len() + self.extra.iter().position(|e| e == name).unwrap_or_else(|| panic!("no host {name}"))
    }

    /// The address of host `i`.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.net.host(i).addr
    }

    fn read_services(&self) -> Vec<Service> {
        let mut vip = FIRST_VIP;
        self.render
            .of_kind("Service")
            .map(|s| {
                let headless = s["spec"]["clusterIP"] == "None";
                let selector = &s["spec"]["selector"];
                let pods =
                    (0..self.pods.len()).filter(|i| selects(selector, &self.pods[*i].labels)).collect::<Vec<_>>();
                let ports = s["spec"]["ports"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["protocol"].as_str().unwrap_or("TCP") == "TCP")
                            .map(|p| {
                                let port = p["port"].as_u64().expect("a Service port") as u16;
                                let target = match &p["targetPort"] {
                                    Value::Null => Value::from(port),
                                    t => t.clone(),
                                };
                                (port, target)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let vip = (!headless).then(|| {
                    vip += 1;
                    Ipv4Addr::new(10, 77, 0, vip - 1)
                });
                let sticky = s["spec"]["sessionAffinity"] == "ClientIP";
                Service {
                    name: s["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                    vip,
                    pods,
                    ports,
                    sticky,
                }
            })
            .collect()
    }

    /// The names cluster DNS would answer, as one `/etc/hosts`, for every host (`ip netns exec` binds
    /// `/etc/netns/<ns>/hosts` over `/etc/hosts` for programs run on the host's own root; containers get
    /// the same file bound into their root).
    fn write_names(&self) {
        let ns = self.render.namespace();
        let forms = |name: &str| {
            let (ns, d) = (&ns, DOMAIN);
            format!("{name}.{ns}.{d} {name}.{ns}.svc {name}.{ns} {name}")
        };
        let mut hosts = String::from("127.0.0.1 localhost\n");
        for (i, p) in self.pods.iter().enumerate() {
            let mut names = p.hostname.clone();
            if let Some(sub) = &p.subdomain {
                names = format!("{} {}", forms(&format!("{}.{sub}", p.hostname)), names);
            }
            let _ = writeln!(hosts, "{} {names}", self.addr(i));
        }
        for (k, e) in self.extra.iter().enumerate() {
            let _ = writeln!(hosts, "{} {}", self.addr(self.pods.len() + k), forms(e));
        }
        for s in &self.services {
            match s.vip {
                Some(vip) => {
                    let _ = writeln!(hosts, "{vip} {}", forms(&s.name));
                }
                None => {
                    for i in &s.pods {
                        let _ = writeln!(hosts, "{} {}", self.addr(*i), forms(&s.name));
                    }
                }
            }
        }
        std::fs::write(self.dir.path().join("hosts"), &hosts).expect("write the hosts file");
        for i in 0..self.pods.len() + self.extra.len() {
            let etc = Path::new("/etc/netns").join(&self.net.host(i).ns);
            std::fs::create_dir_all(&etc).expect("create /etc/netns/<ns>");
            std::fs::write(etc.join("hosts"), &hosts).expect("write /etc/netns/<ns>/hosts");
        }
    }

    /// kube-proxy's rules in every host: each Service port of a virtual address goes to a random one of its
    /// pods, at the target port.
    fn program_proxy(&self) {
        // Replaced whole, in one transaction (the empty table first, so that the delete always has one).
        let mut rules = String::from("table ip kube-proxy {}\ndelete table ip kube-proxy\n");
        rules.push_str("table ip kube-proxy {\n  chain output { type nat hook output priority -100;\n");
        for s in &self.services {
            let Some(vip) = s.vip else { continue };
            let up: Vec<usize> = s.pods.iter().copied().filter(|i| !self.down.contains(i)).collect();
            if up.is_empty() {
                continue;
            }
            for (port, target) in &s.ports {
                let to: Vec<String> = up
                    .iter()
                    .enumerate()
                    .map(|(k, i)| format!("{k} : {} . {}", self.addr(*i), self.container_port(*i, target)))
                    .collect();
                let n = to.len();
                // ClientIP affinity: the pod is a hash of the client's address, not a random one.
                let pick = if s.sticky { "jhash ip saddr" } else { "numgen random" };
                let _ = writeln!(
                    rules,
                    "    ip daddr {vip} tcp dport {port} dnat ip to {pick} mod {n} map {{ {} }}",
                    to.join(", ")
                );
            }
        }
        rules.push_str("  }\n}\n");
        for i in 0..self.pods.len() + self.extra.len() {
            nft(&self.net.host(i).ns, &rules);
        }
    }

    /// The port number `port` (a number, or the name of a container port) means in pod `i`.
    pub fn container_port(&self, i: usize, port: &Value) -> u16 {
        if let Some(n) = port.as_u64() {
            return n as u16;
        }
        let name = port.as_str().expect("a port number or name");
        containers(&self.pods[i].spec)
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("pod {} has no port named {name}", self.pods[i].name)) as u16
    }

    /// Starts every container of every pod (init containers first, each run to its end), without waiting
    /// for readiness: as on Kubernetes, the pods find each other as they come up.
    pub fn start_all(&mut self) {
        for i in 0..self.pods.len() {
            self.start_pod(i);
        }
    }

    /// Starts pod `i`'s containers (its volumes prepared; claims kept from an earlier run of the pod).
    pub fn start_pod(&mut self, i: usize) {
        if self.down.remove(&i) {
            self.program_proxy();
        }
        let pod = self.pods[i].clone();
        let volumes = self.prepare_volumes(i);
        for c in pod.spec["initContainers"].as_array().cloned().unwrap_or_default() {
            let (program, args) = self.container_command(i, &c, &volumes);
            let out = Command::new("timeout").arg("120").arg(program).args(&args).output().expect("run");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "init container {} of {}: {err}", c["name"], pod.name);
        }
        for c in pod.spec["containers"].as_array().cloned().unwrap_or_default() {
            let name = c["name"].as_str().unwrap_or("main").to_string();
            let (program, args) = self.container_command(i, &c, &volumes);
            let log = log_path(self.dir.path(), &format!("{}-{name}", pod.name));
            let server = Server::start_until(Path::new(&program), &args, &log, || true)
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", pod.name));
            self.running.push((i, name, server));
        }
    }

    /// Restarts every container that has exited, as the kubelet does under `restartPolicy: Always` (the
    /// log keeps what it said before); the containers restarted, as `pod/container`.
    pub fn restart_exited(&mut self) -> Vec<String> {
        let mut restarted = Vec::new();
        let exited: Vec<(usize, String)> =
            self.running.iter_mut().filter_map(|(i, n, s)| (!s.is_running()).then(|| (*i, n.clone()))).collect();
        for (i, name) in exited {
            self.running.retain(|(p, n, _)| !(*p == i && *n == name));
            let c = containers(&self.pods[i].spec).find(|c| c["name"] == name.as_str()).expect("the container").clone();
            let volumes = self.prepare_volumes(i);
            let (program, args) = self.container_command(i, &c, &volumes);
            let log = log_path(self.dir.path(), &format!("{}-{name}", self.pods[i].name));
            let server = Server::start_until(Path::new(&program), &args, &log, || true)
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", self.pods[i].name));
            restarted.push(format!("{}/{name}", self.pods[i].name));
            self.running.push((i, name, server));
        }
        restarted
    }

    /// `kill -9` of every container of pod `i`, which leaves every Service's endpoints (as a deleted pod
    /// does; [`Node::start_pod`] brings it back).
    pub fn kill_pod(&mut self, i: usize) {
        let (gone, kept) = std::mem::take(&mut self.running).into_iter().partition(|(p, _, _)| *p == i);
        self.running = kept;
        for (_, _, s) in gone {
            s.kill9();
        }
        self.down.insert(i);
        self.program_proxy();
    }

    /// Runs `argv` inside pod `i`'s container `name` (its namespaces, root, user and environment), as the
    /// kubelet runs an `exec` probe or hook; its output.
    pub fn exec(&self, i: usize, name: &str, argv: &[String]) -> std::process::Output {
        let c = containers(&self.pods[i].spec).find(|c| c["name"] == name).expect("the container");
        let img = self.image_of(c);
        let mut env = img.env.clone();
        env.extend(self.environment(i, c));
        let (uid, gid) = pod_user(&self.pods[i].spec, c);
        // By its path: the environment is the container's, whose PATH is the image's.
        Command::new("/usr/bin/nsenter")
            .args(["-t", &self.pid(i, name).to_string(), "-m", "-n", "-r", "-w"])
            .args(["-S", &uid.to_string(), "-G", &gid.to_string(), "--"])
            .args(argv)
            .env_clear()
            .envs(env)
            .output()
            .expect("run nsenter")
    }

    /// Runs the `preStop` hook of pod `i`'s container `name`, as the kubelet does before it stops the
    /// container; its output.
    pub fn pre_stop(&self, i: usize, name: &str) -> std::process::Output {
        let c = containers(&self.pods[i].spec).find(|c| c["name"] == name).expect("the container");
        let argv: Vec<String> = c["lifecycle"]["preStop"]["exec"]["command"]
            .as_array()
            .unwrap_or_else(|| panic!("{}/{name} has no preStop exec hook", self.pods[i].name))
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect();
        self.exec(i, name, &argv)
    }

    /// The process id of pod `i`'s container `name`.
    pub fn pid(&self, i: usize, name: &str) -> u32 {
        self.running.iter().find(|(p, n, _)| *p == i && n == name).map(|(_, _, s)| s.pid()).expect("running")
    }

    /// Where pod `i`'s container `name` has its root, as the node sees it in the container's mount namespace.
    pub fn root(&self, i: usize, name: &str) -> PathBuf {
        self.dir.path().join("roots").join(format!("{}-{name}", self.pods[i].name))
    }

    /// The last lines of pod `i`'s container `name`'s log.
    pub fn log(&self, i: usize, name: &str) -> String {
        tail(&log_path(self.dir.path(), &format!("{}-{name}", self.pods[i].name)))
    }

    /// Every container's log tail, for a failing test.
    pub fn logs(&self) -> String {
        self.running.iter().map(|(i, n, _)| format!("--- {}/{n}\n{}\n", self.pods[*i].name, self.log(*i, n))).collect()
    }

    /// Volume name → directory on the node, for pod `i`.
    fn prepare_volumes(&self, i: usize) -> BTreeMap<String, PathBuf> {
        let pod = &self.pods[i];
        let (uid, gid) = pod_user(&pod.spec, &Value::Null);
        let fs_group = pod.spec["securityContext"]["fsGroup"].as_u64().map(|g| g as u32).unwrap_or(gid);
        let base = self.dir.path().join("pods").join(&pod.name);
        let mut out = BTreeMap::new();
        for v in pod.spec["volumes"].as_array().cloned().unwrap_or_default() {
            let name = v["name"].as_str().expect("a volume's name").to_string();
            let dir = if v.get("hostPath").is_some() {
                let path = v["hostPath"]["path"].as_str().expect("a hostPath's path");
                self.dir.path().join("node").join(path.trim_start_matches('/'))
            } else if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                self.dir.path().join("claims").join(claim)
            } else {
                base.join("volumes").join(&name)
            };
            if v.get("configMap").is_some() || v.get("secret").is_some() || v.get("projected").is_some() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            std::fs::create_dir_all(&dir).expect("create a volume directory");
            if let Some(cm) = v.get("configMap") {
                self.write_source("ConfigMap", cm, cm["name"].as_str(), &dir, fs_group);
            } else if let Some(s) = v.get("secret") {
                self.write_source("Secret", s, s["secretName"].as_str(), &dir, fs_group);
            } else if let Some(p) = v.get("projected") {
                for src in p["sources"].as_array().cloned().unwrap_or_default() {
                    let mut src = src.clone();
                    if let (Some(m), Some(obj)) = (p.get("defaultMode"), src.as_object_mut()) {
                        for (_, s) in obj.iter_mut() {
                            if s.get("defaultMode").is_none() {
                                s["defaultMode"] = m.clone();
                            }
                        }
                    }
                    if let Some(cm) = src.get("configMap") {
                        self.write_source("ConfigMap", cm, cm["name"].as_str(), &dir, fs_group);
                    } else if let Some(s) = src.get("secret") {
                        self.write_source("Secret", s, s["name"].as_str(), &dir, fs_group);
                    } else {
                        panic!("pod {}: a projected source this harness does not make: {src}", pod.name);
                    }
                }
            } else {
                chown(&dir, uid, fs_group);
            }
            out.insert(name, dir);
        }
        // A StatefulSet's claims: `<template>-<pod>`, outliving the pod.
        for claim in &pod.claims {
            let dir = self.dir.path().join("claims").join(format!("{claim}-{}", pod.name));
            if !dir.exists() {
                std::fs::create_dir_all(&dir).expect("create a claim");
                chown(&dir, uid, fs_group);
            }
            out.insert(claim.clone(), dir);
        }
        out
    }

    /// Writes the keys of ConfigMap or Secret `name` (as `source` selects them: `items`, `defaultMode`)
    /// into `dir`, readable by `group` as the kubelet makes them.
    fn write_source(&self, kind: &str, source: &Value, name: Option<&str>, dir: &Path, group: u32) {
        let name = name.expect("a ConfigMap's or Secret's name");
        let data = self.keys(kind, name);
        let mode = source["defaultMode"].as_u64().unwrap_or(0o644) as u32;
        let items: Vec<(String, String, u32)> = match source["items"].as_array() {
            Some(items) => items
                .iter()
                .map(|it| {
                    let key = it["key"].as_str().expect("an item's key").to_string();
                    let path = it["path"].as_str().expect("an item's path").to_string();
                    (key, path, it["mode"].as_u64().map(|m| m as u32).unwrap_or(mode))
                })
                .collect(),
            None => data.keys().map(|k| (k.clone(), k.clone(), mode)).collect(),
        };
        for (key, path, mode) in items {
            let bytes = data.get(&key).unwrap_or_else(|| panic!("{kind} {name} has no key {key}"));
            let file = dir.join(&path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).expect("create an item's directory");
            }
            std::fs::write(&file, bytes).expect("write a key");
            // With an fsGroup the kubelet gives the group read access (a Secret's 0400 becomes 0440).
            let mode = if group != 0 { mode | 0o440 } else { mode };
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod a key");
            chown(&file, 0, group);
        }
    }

    /// The keys of ConfigMap or Secret `name`, decoded.
    pub fn keys(&self, kind: &str, name: &str) -> BTreeMap<String, Vec<u8>> {
        let obj = self.render.get(kind, name).unwrap_or_else(|| panic!("the render has no {kind} {name}"));
        let mut out = BTreeMap::new();
        let b64 = base64::engine::general_purpose::STANDARD;
        for (k, v) in obj["data"].as_object().cloned().unwrap_or_default() {
            let s = v.as_str().unwrap_or_default();
            // A long value is folded over lines in the YAML.
            let folded: String = s.split_whitespace().collect();
            let bytes = if kind == "Secret" { b64.decode(folded).expect("base64 data") } else { s.as_bytes().to_vec() };
            out.insert(k, bytes);
        }
        for field in ["stringData", "binaryData"] {
            for (k, v) in obj[field].as_object().cloned().unwrap_or_default() {
                let s = v.as_str().unwrap_or_default();
                let folded: String = s.split_whitespace().collect();
                let bytes =
                    if field == "binaryData" { b64.decode(folded).expect("base64") } else { s.as_bytes().to_vec() };
                out.insert(k, bytes);
            }
        }
        out
    }

    /// The command that runs container `c` of pod `i`: `ip netns exec … unshare -m sh -c <script>`.
    fn container_command(&self, i: usize, c: &Value, volumes: &BTreeMap<String, PathBuf>) -> (String, Vec<String>) {
        let pod = &self.pods[i];
        let img = self.image_of(c);
        let mut env = img.env.clone();
        env.extend(self.environment(i, c));
        let expand = |s: &str| expand_vars(s, &env);
        let mut argv: Vec<String> = match c["command"].as_array() {
            Some(cmd) => cmd.iter().map(|a| expand(a.as_str().unwrap_or_default())).collect(),
            None => img.entrypoint.clone(),
        };
        argv.extend(c["args"].as_array().into_iter().flatten().map(|a| expand(a.as_str().unwrap_or_default())));
        let (uid, gid) = pod_user(&pod.spec, c);
        let fs_group = pod.spec["securityContext"]["fsGroup"].as_u64();
        let read_only = c["securityContext"]["readOnlyRootFilesystem"] == true;
        let root = self.root(i, c["name"].as_str().unwrap_or("c"));
        std::fs::create_dir_all(&root).expect("create a container root");

        let mut s = String::from("set -e\nmount --make-rslave /\n");
        let _ = writeln!(s, "mount --bind {} {}", q(&img.root), q(&root));
        if read_only {
            let _ = writeln!(s, "mount -o remount,bind,ro {}", q(&root));
        }
        for (target, src) in [("dev", Path::new("/dev")), ("proc", Path::new("/proc"))] {
            ensure_dir(&img.root.join(target));
            let _ = writeln!(s, "mount --rbind {} {}", q(src), q(root.join(target)));
        }
        ensure_file(&img.root.join("etc/hosts"));
        let _ = writeln!(s, "mount --bind {} {}", q(self.dir.path().join("hosts")), q(root.join("etc/hosts")));
        let mut mounted: Vec<(String, PathBuf)> = Vec::new();
        for m in c["volumeMounts"].as_array().cloned().unwrap_or_default() {
            let vol = m["name"].as_str().expect("a mount's volume");
            let mut src = volumes.get(vol).unwrap_or_else(|| panic!("{}: no volume {vol}", pod.name)).clone();
            if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
                src = src.join(sub);
                if !src.exists() {
                    std::fs::create_dir_all(&src).expect("create a subPath");
                    chown(&src, uid, fs_group.map(|g| g as u32).unwrap_or(gid));
                }
            }
            let path = m["mountPath"].as_str().expect("a mountPath").trim_start_matches('/').to_string();
            // The mount point is made where it will be: in an earlier mount it lies under, else in the image.
            let under = mounted
                .iter()
                .filter(|(p, _)| Path::new(&path).starts_with(p))
                .max_by_key(|(p, _)| p.len())
                .map(|(p, d): &(String, PathBuf)| d.join(Path::new(&path).strip_prefix(p).expect("a prefix")))
                .unwrap_or_else(|| img.root.join(&path));
            if src.is_dir() {
                ensure_dir(&under);
            } else {
                ensure_file(&under);
            }
            mounted.push((path.clone(), src.clone()));
            let target = root.join(&path);
            let _ = writeln!(s, "mount --bind {} {}", q(&src), q(&target));
            if m["readOnly"] == true {
                let _ = writeln!(s, "mount -o remount,bind,ro {}", q(&target));
            }
        }
        let mut chroot = String::from("exec env -i");
        for (k, v) in &env {
            let _ = write!(chroot, " {}", q(format!("{k}={v}")));
        }
        let groups = fs_group.map(|g| format!(" --groups={g}")).unwrap_or_default();
        let _ = write!(chroot, " /usr/sbin/chroot --userspec={uid}:{gid}{groups} {}", q(&root));
        if let Some(dir) = c["workingDir"].as_str() {
            // chroot cannot change directory after entering: a shell in the image would be needed.
            panic!("{}: workingDir {dir} is not supported by this harness", pod.name);
        }
        for a in &argv {
            let _ = write!(chroot, " {}", q(a));
        }
        s.push_str(&chroot);
        s.push('\n');
        let ns = self.net.host(i).ns.clone();
        (
            IP.into(),
            ["netns", "exec", &ns, "unshare", "-m", "--propagation", "unchanged", "sh", "-c", &s]
                .map(String::from)
                .to_vec(),
        )
    }

    /// The image container `c` runs.
    fn image_of(&self, c: &Value) -> &Image {
        let image = c["image"].as_str().expect("a container's image");
        self.images.iter().find(|m| image.contains(&m.matches)).unwrap_or_else(|| panic!("no image for {image}"))
    }

    /// Container `c`'s environment, in order (later entries may use earlier ones as `$(NAME)`).
    fn environment(&self, i: usize, c: &Value) -> Vec<(String, String)> {
        let pod = &self.pods[i];
        let mut env: Vec<(String, String)> = Vec::new();
        for from in c["envFrom"].as_array().cloned().unwrap_or_default() {
            let prefix = from["prefix"].as_str().unwrap_or_default();
            let (kind, name) = match (from["configMapRef"]["name"].as_str(), from["secretRef"]["name"].as_str()) {
                (Some(n), _) => ("ConfigMap", n),
                (_, Some(n)) => ("Secret", n),
                _ => panic!("an envFrom this harness does not know: {from}"),
            };
            for (k, v) in self.keys(kind, name) {
                env.push((format!("{prefix}{k}"), String::from_utf8(v).expect("UTF-8 in an env value")));
            }
        }
        for e in c["env"].as_array().cloned().unwrap_or_default() {
            let name = e["name"].as_str().expect("an env var's name").to_string();
            let value = if let Some(v) = e["value"].as_str() {
                expand_vars(v, &env)
            } else if let Some(f) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match f {
                    "metadata.name" => pod.name.clone(),
                    "metadata.namespace" => pod.namespace.clone(),
                    "status.podIP" => self.addr(i).to_string(),
                    "spec.nodeName" => "node0".into(),
                    "status.hostIP" => self.addr(i).to_string(),
                    "spec.serviceAccountName" => pod.spec["serviceAccountName"].as_str().unwrap_or("default").into(),
                    other => panic!("a fieldRef this harness does not know: {other}"),
                }
            } else if let Some(r) = e["valueFrom"].get("secretKeyRef").or(e["valueFrom"].get("configMapKeyRef")) {
                let kind = if e["valueFrom"].get("secretKeyRef").is_some() { "Secret" } else { "ConfigMap" };
                let (n, k) = (r["name"].as_str().expect("a ref's name"), r["key"].as_str().expect("a ref's key"));
                let keys = self.keys(kind, n);
                String::from_utf8(keys.get(k).unwrap_or_else(|| panic!("{kind} {n} has no key {k}")).clone())
                    .expect("UTF-8")
            } else if let Some(r) = e["valueFrom"].get("resourceFieldRef") {
                let res = r["resource"].as_str().expect("a resource");
                let (section, what) = res.split_once('.').expect("limits.x or requests.x");
                let q = c["resources"][section][what]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| c["resources"][section][what].as_u64().map(|n| n.to_string()));
                let q = q.unwrap_or_else(|| panic!("{}: no {res} for a resourceFieldRef", pod.name));
                let divisor = r["divisor"].as_str().map(quantity).unwrap_or(1);
                (quantity(&q).div_ceil(divisor)).to_string()
            } else {
                panic!("an env var this harness does not know: {e}");
            };
            env.retain(|(k, _)| *k != name);
            env.push((name, value));
        }
        env
    }

    /// Sends container `c` of pod `i`'s probe `kind` (`readinessProbe`, `livenessProbe`, `startupProbe`)
    /// as the kubelet does; `None` when the container has none, else whether it passed, with what it got.
    pub fn probe(&self, i: usize, container: &str, kind: &str) -> Option<Result<String, String>> {
        let c = containers(&self.pods[i].spec).find(|c| c["name"] == container)?;
        let p = c.get(kind).filter(|p| !p.is_null())?.clone();
        let ns = &self.net.host(i).ns;
        if let Some(h) = p.get("httpGet") {
            let port = self.container_port(i, &h["port"]);
            let scheme = h["scheme"].as_str().unwrap_or("HTTP").to_lowercase();
            let url = format!("{scheme}://{}:{port}{}", self.addr(i), h["path"].as_str().unwrap_or("/"));
            // The kubelet does not verify a probe's certificate.
            let out = Command::new(IP)
                .args(["netns", "exec", ns, "curl", "-sk", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(&url)
                .output()
                .expect("run curl");
            let code: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
            let what = format!("GET {url}: {code}");
            return Some(if (200..400).contains(&code) { Ok(what) } else { Err(what) });
        }
        if let Some(t) = p.get("tcpSocket") {
            let port = self.container_port(i, &t["port"]);
            let probe = format!("exec 3<>/dev/tcp/{}/{port}", self.addr(i));
            let ok = Command::new(IP).args(["netns", "exec", ns, "timeout", "2", "bash", "-c", &probe]).status();
            let what = format!("tcp {}:{port}", self.addr(i));
            return Some(if ok.is_ok_and(|s| s.success()) { Ok(what) } else { Err(what) });
        }
        if let Some(e) = p.get("exec") {
            let argv: Vec<String> =
                e["command"].as_array().into_iter().flatten().map(|a| a.as_str().unwrap_or("").into()).collect();
            let out = self.exec(i, container, &argv);
            let what = format!("exec {argv:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
            return Some(if out.status.success() { Ok(what) } else { Err(what) });
        }
        Some(Err(format!("a probe this harness does not know: {p}")))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.running.clear();
        for i in 0..self.pods.len() + self.extra.len() {
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.net.host(i).ns));
        }
    }
}

/// Every container of a pod spec (init containers too).
pub fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"].into_iter().flat_map(move |k| spec[k].as_array().into_iter().flatten())
}

/// `(uid, gid)` a container runs as: its own securityContext over the pod's (root when neither says).
fn pod_user(spec: &Value, c: &Value) -> (u32, u32) {
    let get =
        |key: &str| c["securityContext"][key].as_u64().or(spec["securityContext"][key].as_u64()).map(|n| n as u32);
    let uid = get("runAsUser").unwrap_or(0);
    (uid, get("runAsGroup").unwrap_or(uid))
}

/// `$(NAME)` replaced by NAME's value when defined (`$$` escapes), as Kubernetes expands commands and env.
fn expand_vars(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(close) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + close];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&tail[..close + 3]),
            }
            rest = &tail[close + 3..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A Kubernetes quantity (`512Mi`, `2Gi`, `1G`, `500m` rounds up) in units.
fn quantity(q: &str) -> u64 {
    let suffixes: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    if let Some(m) = q.strip_suffix('m') {
        return m.parse::<u64>().expect("a milli quantity").div_ceil(1000);
    }
    for (s, f) in suffixes {
        if let Some(n) = q.strip_suffix(s) {
            return n.parse::<u64>().expect("a quantity") * f;
        }
    }
    q.parse().expect("a quantity")
}

/// Single-quoted for `sh`.
fn q(s: impl AsRef<std::ffi::OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn ensure_dir(p: &Path) {
    std::fs::create_dir_all(p).expect("create a mount point in an image root");
}

fn ensure_file(p: &Path) {
    if !p.exists() {
        if let Some(parent) = p.parent() {
            ensure_dir(parent);
        }
        std::fs::write(p, b"").expect("create a file mount point in an image root");
    }
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
}
