//! A rendered kustomize overlay as JSON objects (`kubectl kustomize`, then YAML to JSON with Python's
//! `yaml`, which the test machine has), and the pods its workloads would make: a StatefulSet's
//! `<name>-<i>` with its hostname and subdomain and its claims, a Deployment's `<name>-<i>`, a DaemonSet's
//! one pod on the one node. Only what a kubelet and kube-proxy need is read.

use serde_json::{Map, Value};
use std::path::Path;
use std::process::Command;

/// Every object of a render.
pub struct Render {
    pub objects: Vec<Value>,
}

/// One pod a workload makes.
#[derive(Clone, Debug)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    /// The workload's kind and name (`StatefulSet/loam-worker`).
    pub owner: String,
    pub labels: Map<String, Value>,
    /// The pod template's `spec`.
    pub spec: Value,
    pub hostname: String,
    /// A StatefulSet's `serviceName`: the pod is `<hostname>.<subdomain>.<namespace>.svc…`.
    pub subdomain: Option<String>,
    /// A StatefulSet's claim templates: each volume named by one is the claim `<template>-<pod>`.
    pub claims: Vec<String>,
}

impl Render {
    /// `kubectl kustomize <dir>` as objects.
    pub fn of(dir: &Path) -> Self {
        let out = Command::new("kubectl").arg("kustomize").arg(dir).output().expect("run kubectl kustomize");
        assert!(out.status.success(), "kubectl kustomize {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
        Self::of_yaml(&out.stdout)
    }

    /// Objects of a multi-document YAML text.
    pub fn of_yaml(yaml: &[u8]) -> Self {
        let script = "import json,sys,yaml\nprint(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut stdin = child.stdin.take().expect("piped");
        let yaml = yaml.to_vec();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &yaml));
        let out = child.wait_with_output().expect("python3");
        writer.join().expect("the writer").expect("write the YAML");
        assert!(out.status.success(), "YAML to JSON: {}", String::from_utf8_lossy(&out.stderr));
        Self { objects: serde_json::from_slice(&out.stdout).expect("JSON of the render") }
    }

    /// The objects of `kind`.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    /// The object `kind`/`name`.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// The namespace of the render's objects (one for all; `default` when none is named).
    pub fn namespace(&self) -> String {
        self.objects.iter().find_map(|o| o["metadata"]["namespace"].as_str()).unwrap_or("default").to_string()
    }

    /// The pods of every StatefulSet, Deployment and DaemonSet, one node's worth of each DaemonSet.
    pub fn pods(&self) -> Vec<Pod> {
        let ns = self.namespace();
        let mut out = Vec::new();
        for kind in ["StatefulSet", "Deployment", "DaemonSet"] {
            for w in self.of_kind(kind) {
                let name = w["metadata"]["name"].as_str().expect("a workload's name");
                let template = &w["spec"]["template"];
                let replicas = if kind == "DaemonSet" { 1 } else { w["spec"]["replicas"].as_u64().unwrap_or(1) };
                for i in 0..replicas {
                    let pod = match kind {
                        // A Deployment's pods have random suffixes; an index is as good here.
                        "StatefulSet" | "Deployment" => format!("{name}-{i}"),
                        _ => format!("{name}-node0"),
                    };
                    let stateful = kind == "StatefulSet";
                    out.push(Pod {
                        name: pod.clone(),
                        namespace: ns.clone(),
                        owner: format!("{kind}/{name}"),
                        labels: template["metadata"]["labels"].as_object().cloned().unwrap_or_default(),
                        spec: template["spec"].clone(),
                        hostname: template["spec"]["hostname"].as_str().map(str::to_string).unwrap_or(pod),
                        subdomain: if stateful {
                            w["spec"]["serviceName"].as_str().map(str::to_string)
                        } else {
                            template["spec"]["subdomain"].as_str().map(str::to_string)
                        },
                        claims: w["spec"]["volumeClaimTemplates"]
                            .as_array()
                            .map(|c| {
                                c.iter().filter_map(|t| t["metadata"]["name"].as_str().map(str::to_string)).collect()
                            })
                            .unwrap_or_default(),
                    });
                }
            }
        }
        out
    }
}

/// Whether `labels` carry every pair of `selector` (a `matchLabels` or a Service's `selector`).
pub fn selects(selector: &Value, labels: &Map<String, Value>) -> bool {
    selector.as_object().is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}
