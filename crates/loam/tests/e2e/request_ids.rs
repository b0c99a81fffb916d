//! A request id across processes: a load submitted to a `loam coordinator` process with
//! `x-request-id: X` is run by the Coordinator's job task and sent in batches to a `loam worker` process;
//! both processes' JSON logs have lines carrying `request_id` X (the Coordinator's `job` span, the
//! worker's `load batch` line in the request span its edge opened from the batch's header).

use crate::cluster::{CAP, wait_until};
use crate::logs::json_lines;
use crate::process::{log_path, server, strings};
use loam_testsupport::EtcdServer;
use loam_testsupport::auth::ALL_ROLES;
use std::path::Path;
use std::process::Command;

const ID: &str = "e2e-job-req-42";

/// Whether `line` is inside a span with `request_id` [`ID`].
fn carries_id(line: &serde_json::Value) -> bool {
    let spans = line["spans"].as_array().cloned().unwrap_or_default();
    spans.iter().any(|s| s["request_id"] == ID)
}

fn server_args(kind: &str, etcd: &str, port: u16, data: &Path, extra: &[&str]) -> Vec<String> {
    let data = data.display().to_string();
    let port = port.to_string();
    let mut args = strings(&[kind, "--etcd", etcd, "--host", "127.0.0.1", "--data-dir", &data]);
    args.extend(strings(extra));
    args.extend(strings(&[if kind == "worker" { "--http-port" } else { "--port" }, &port]));
    args.extend(strings(&["--log-format", "json", "-v"]));
    args
}

#[test]
fn a_jobs_batches_carry_the_submitting_requests_id_into_the_workers_log() {
    let etcd = EtcdServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("f"), vec![5u8; 200_000]).unwrap();
    let cport = loam_testsupport::free_port();
    let coordinator = format!("http://127.0.0.1:{cport}");
    let tmp = std::env::temp_dir().display().to_string();
    let cargs =
        server_args("coordinator", &etcd.endpoint(), cport, &dir.path().join("c"), &["--allow-local-ufs", &tmp]);
    let (clog, wlog) = (log_path(dir.path(), "coordinator"), log_path(dir.path(), "worker"));
    let _c = server(&cargs, &clog).unwrap_or_else(|e| panic!("coordinator: {e}"));
    let wargs = server_args(
        "worker",
        &etcd.endpoint(),
        loam_testsupport::free_port(),
        &dir.path().join("w"),
        &["--coordinator", &coordinator, "--s3-port", "0", "--cache-size", "64MiB", "--memory-size", "8MiB"],
    );
    let _w = server(&wargs, &wlog).unwrap_or_else(|e| panic!("worker: {e}"));
    wait_until("the worker is online", CAP, || {
        let a = crate::http::get(&format!("{coordinator}/api/v1/nodes")).ok()?;
        a.text().contains("ONLINE").then_some(())
    });
    let o = crate::process::loam()
        .env("LOAM_COORDINATOR", &coordinator)
        .args(["mount", "add", "/data", &format!("file://{}", ufs.path().display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let o = Command::new("curl")
        .args(["-s", "-D", "-", "-X", "POST", "-H", &format!("x-request-id: {ID}")])
        .args(["-H", &format!("Authorization: Bearer {ALL_ROLES}"), "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"paths": ["/data/f"], "options": {"sync": true}}"#, &format!("{coordinator}/api/v1/load")])
        .output()
        .expect("run curl");
    let out = String::from_utf8_lossy(&o.stdout).to_lowercase();
    assert!(out.contains("succeeded") && out.contains(&format!("x-request-id: {ID}")), "{out}");

    // The run's last line comes after the sync answer (which is sent once the job stops running).
    let ended = wait_until("the job run's last line", CAP, || {
        json_lines(&clog).into_iter().find(|l| l["fields"]["message"] == "job run ended")
    });
    assert!(carries_id(&ended), "the Coordinator's job task logs under {ID}: {ended}");
    assert!(ended["spans"].as_array().unwrap().iter().any(|s| s["name"] == "job" && s["job_id"].is_string()));
    let w = json_lines(&wlog);
    assert!(
        w.iter().any(|l| carries_id(l) && l["fields"]["message"] == "load batch"),
        "the worker logged the batch under {ID}"
    );
    assert!(!w.iter().any(|l| l["fields"]["message"] == "load batch" && !carries_id(l)), "every batch carries it");
}
