//! End to end: `loam status` against a real `loam local` (two workers): health, leader, workers, the
//! cache numbers summed from the workers' own `/metrics` (the test scrapes them too and compares), a
//! running load job with its progress, and the exit status: 0 while healthy, 1 with the report still
//! printed when a Coordinator given does not answer or a worker is offline (a cluster with etcd).

use crate::http::{get, metric};
use crate::local_process::{cli, ok, start_local};
use serde_json::Value;

fn status_json(coordinator: &str) -> (bool, Value, String) {
    let o = crate::process::loam()
        .env("LOAM_COORDINATOR", coordinator)
        .args(["status", "--json"])
        .output()
        .expect("run loam status");
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", String::from_utf8_lossy(&o.stdout)));
    (o.status.success(), v, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn status_reports_health_workers_cache_and_running_jobs_and_fails_when_a_coordinator_is_down() {
    let data = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("small"), vec![7u8; 300_000]).unwrap();
    std::fs::write(ufs.path().join("big"), vec![9u8; 48 << 20]).unwrap();
    let l = start_local(data.path(), &["--workers", "2"]);
    ok(&l, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]);
    // A miss, then hits.
    for _ in 0..2 {
        assert_eq!(ok(&l, &["fs", "cat", "/data/small"]).len(), 300_000);
    }
    // A load held at 64 KiB/s per worker: still running while the status is taken.
    let out = ok(&l, &["job", "load", "--path", "/data/big", "--bandwidth", "64KiB"]);
    let job = out.split_whitespace().nth(2).unwrap().trim_end_matches(':').to_string();

    // The sums are those of the workers' own metrics, scraped by the test before and after (the running
    // load may read pages in between).
    let scrape = || {
        let (mut hits, mut misses, mut capacity) = (0.0, 0.0, 0.0);
        for (url, _) in &l.workers {
            let t = get(&format!("{url}/metrics")).unwrap().text();
            hits += metric(&t, "loam_worker_page_hits_total");
            misses += metric(&t, "loam_worker_page_misses_total");
            capacity += metric(&t, "loam_worker_cache_dir_capacity_bytes");
        }
        (hits, misses, capacity)
    };
    let before = scrape();
    let (healthy, v, stderr) = status_json(&l.coordinator);
    let after = scrape();
    assert!(healthy, "exit 0 on a healthy cluster: {stderr}\n{v:#}");
    assert_eq!(v["healthy"], true, "{v:#}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["coordinators"][0]["url"], l.coordinator.as_str());
    assert_eq!(
        (&v["coordinators"][0]["healthy"], &v["coordinators"][0]["ready"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert_eq!(v["leader"], l.coordinator.as_str());
    assert_eq!((v["workers_online"].as_u64(), v["workers_offline"].as_u64()), (Some(2), Some(0)));
    let addresses: Vec<&str> =
        v["workers"].as_array().unwrap().iter().map(|w| w["address"].as_str().unwrap()).collect();
    for (url, _) in &l.workers {
        assert!(addresses.iter().any(|a| url.ends_with(a)), "{url} listed: {addresses:?}");
    }
    let c = &v["cache"];
    let (hits, misses) = (c["page_hits"].as_f64().unwrap(), c["page_misses"].as_f64().unwrap());
    assert!(before.0 <= hits && hits <= after.0, "hits {hits} within {before:?}..{after:?}");
    assert!(before.1 <= misses && misses <= after.1, "misses {misses} within {before:?}..{after:?}");
    assert!(hits >= 1.0 && misses >= 1.0, "the second cat hit, the first missed: {v:#}");
    assert_eq!(c["hit_ratio"].as_f64(), Some(hits / (hits + misses)));
    assert_eq!(c["disk"]["capacity_bytes"].as_f64(), Some(before.2));
    assert!(before.2 > 0.0);
    let jobs = v["running_jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{v:#}");
    assert_eq!((jobs[0]["kind"].as_str(), jobs[0]["id"].as_str()), (Some("load"), Some(job.as_str())));
    assert_eq!(jobs[0]["state"], "RUNNING");

    // For humans: one screen with the same facts.
    let text = ok(&l, &["status"]);
    assert!(text.starts_with("Cluster: HEALTHY\n"), "{text}");
    assert!(text.contains(&format!("Coordinator {}: healthy, ready (leader)", l.coordinator)), "{text}");
    assert!(text.contains("Workers: 2 online, 0 offline") && text.contains("Running jobs: 1"), "{text}");
    assert!(text.contains(&format!("load      {job}  RUNNING")), "{text}");

    // A Coordinator given that does not answer: the report still comes from the one that does, exit 1.
    let dead = format!("http://127.0.0.1:{}", loam_testsupport::free_port());
    let (healthy, v, stderr) = status_json(&format!("{dead},{}", l.coordinator));
    assert!(!healthy, "exit 1 with a Coordinator down: {v:#}");
    assert!(stderr.contains("the cluster is unhealthy: Coordinator http://127.0.0.1:"), "{stderr}");
    assert_eq!(v["healthy"], false);
    assert_eq!(
        (&v["coordinators"][0]["healthy"], &v["coordinators"][1]["ready"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    assert_eq!(v["workers_online"].as_u64(), Some(2), "{v:#}");

    ok(&l, &["job", "load", "--stop", "--id", &job]);
    let o = cli(&l, &["status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.success() && v["running_jobs"] == serde_json::json!([]), "{v:#}");
}

/// With etcd and real worker processes: a killed worker turns `loam status` unhealthy (exit 1), names it
/// offline with its address, and the cache totals still come from the worker that answers.
#[test]
fn a_killed_worker_is_reported_offline_and_the_status_fails() {
    use crate::cluster::{CAP, Cluster, wait_until};
    let mut c = Cluster::start(2);
    c.mount_data();
    let healthy = c.cli(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&healthy.stdout).expect("status --json");
    assert!(healthy.status.success(), "exit 0 with both workers: {}\n{v:#}", healthy.stderr);
    assert_eq!(v["problems"], serde_json::json!([]), "{v:#}");

    let victim = c.workers[1].id.clone();
    c.kill_worker(1);
    wait_until("the killed worker is OFFLINE", CAP, || {
        (c.status_of(1).ok()?.as_deref() == Some("OFFLINE")).then_some(())
    });
    let o = c.cli(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("status --json");
    assert_eq!(o.status.code(), Some(1), "exit 1 with a worker offline: {}\n{v:#}", o.stderr);
    assert_eq!(v["healthy"], false, "{v:#}");
    let problems: Vec<&str> = v["problems"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        problems.iter().any(|p| p.contains(&victim) && p.contains("offline")),
        "the killed worker is named offline: {problems:?}"
    );
    assert_eq!(v["cache"]["workers_answered"], 1, "{v:#}");
    // The text report says it too.
    let text = c.cli(&["status"]);
    assert_eq!(text.status.code(), Some(1));
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("1 online, 1 offline") && out.contains(&victim), "{out}");
}
