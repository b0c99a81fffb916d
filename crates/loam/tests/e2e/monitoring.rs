//! The Grafana dashboard (`deploy/grafana/loam.json`) and the alert rules (`deploy/prometheus/loam-rules.yml`)
//! against a real Prometheus scraping a real `loam local` after some traffic (a load, CLI reads, S3
//! GETs of a cached file, a miss and a missing key): `promtool` accepts the rules and the example config, Prometheus loads and evaluates every rule
//! without error, every panel query runs, and every metric name a query or rule uses is one Loam
//! exports (in a catalog, and present in what Prometheus scraped), so a panel on a counter that is still 0
//! is checked too. Generic: the test reads the dashboard's panels and the rules Prometheus loaded, so a new
//! panel or rule is checked with no change here. Prometheus listens on loopback, its data in a tempdir.

use crate::local_process::{Local, cli, ok, start_local};
use loam_client::reader::encode_query;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A cap on waiting for scrapes and rule evaluations (1 s intervals), so a broken setup fails the test.
const WAIT: Duration = Duration::from_secs(120);
/// What `$__rate_interval` (Grafana's) stands for here: a few 1 s scrapes.
const RATE_INTERVAL: &str = "15s";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A running Prometheus; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host_port(url: &str) -> String {
    url.split("://").nth(1).unwrap().trim_end_matches('/').to_string()
}

/// Starts Prometheus scraping `l`'s Coordinator and workers every second, with the rules file loaded.
fn start_prometheus(l: &Local, dir: &Path) -> Prometheus {
    let rules = repo().join("deploy/prometheus/loam-rules.yml");
    let workers: Vec<String> = l.workers.iter().map(|(u, _)| format!("\"{}\"", host_port(u))).collect();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [\"{}\"]\nscrape_configs:\n\
         - job_name: loam-coordinator\n  authorization: {{credentials: \"{token}\"}}\n  static_configs: [{{targets: [\"{}\"]}}]\n\
         - job_name: loam-worker\n  authorization: {{credentials: \"{token}\"}}\n  static_configs: [{{targets: [{}]}}]\n",
        rules.display(),
        host_port(&l.coordinator),
        workers.join(", "),
        token = l.token,
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    let check = Command::new("promtool").arg("check").arg("config").arg(&path).output().expect("run promtool");
    assert!(check.status.success(), "promtool check config: {}", String::from_utf8_lossy(&check.stdout));
    let port = loam_testsupport::free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", path.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus (scripts/setup-test-deps.sh installs it)");
    Prometheus { child, url: format!("http://127.0.0.1:{port}") }
}

impl Prometheus {
    /// `GET /api/v1/<path>` as JSON; `None` while Prometheus does not answer.
    fn api(&self, path: &str) -> Option<Value> {
        let a = crate::http::get_as(&format!("{}/api/v1/{path}", self.url), None).ok()?;
        serde_json::from_slice(&a.body).ok()
    }

    /// Runs an instant query; the answer, which must be a success.
    fn query(&self, expr: &str) -> Value {
        let v = self.api(&format!("query?query={}", encode_query(expr))).expect("prometheus answers");
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"]["result"].clone()
    }

    /// The single value of a query that returns one sample (None: no sample, or Prometheus is not
    /// answering yet).
    fn scalar(&self, expr: &str) -> Option<f64> {
        let v = self.api(&format!("query?query={}", encode_query(expr)))?;
        v["data"]["result"].as_array()?.first()?["value"][1].as_str()?.parse().ok()
    }

    fn wait_until(&self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < WAIT, "gave up waiting until {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Every PromQL expression of the dashboard's panels (rows' nested panels included).
fn dashboard_queries() -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/loam.json")).unwrap())
        .expect("deploy/grafana/loam.json is JSON");
    let mut out = Vec::new();
    let mut panels: Vec<Value> = d["panels"].as_array().expect("panels").clone();
    while let Some(p) = panels.pop() {
        if let Some(nested) = p["panels"].as_array() {
            panels.extend(nested.iter().cloned());
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("a target of {} has no expr", p["title"]));
            out.push((p["title"].as_str().unwrap_or("").to_string(), expr.replace("$__rate_interval", RATE_INTERVAL)));
        }
    }
    assert!(!out.is_empty());
    out
}

/// The metric names an expression uses: identifiers with one of Loam's prefixes, outside string literals.
/// (`up` and `time()` are Prometheus's own.)
fn metric_names(expr: &str) -> BTreeSet<String> {
    let (mut names, mut token, mut quote) = (BTreeSet::new(), String::new(), None::<char>);
    for c in expr.chars().chain([' ']) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None if c.is_ascii_alphanumeric() || c == '_' || c == ':' => token.push(c),
            None => {
                if ["loam_", "alluxio_", "process_"].iter().any(|p| token.starts_with(p)) {
                    names.insert(token.clone());
                }
                token.clear();
            }
        }
    }
    names
}

#[test]
fn the_dashboard_and_the_alert_rules_work_on_a_real_prometheus() {
    for tool in ["prometheus", "promtool"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is not installed (scripts/setup-test-deps.sh)"
        );
    }
    let rules_file = repo().join("deploy/prometheus/loam-rules.yml");
    let check = Command::new("promtool").arg("check").arg("rules").arg(&rules_file).output().unwrap();
    assert!(check.status.success(), "promtool check rules: {}", String::from_utf8_lossy(&check.stdout));
    let example = repo().join("deploy/prometheus/prometheus.yml");
    let check = Command::new("promtool").args(["check", "config"]).arg(example).output().unwrap();
    assert!(check.status.success(), "the example scrape config: {}", String::from_utf8_lossy(&check.stdout));

    let (data, ufs, prom_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let content: Vec<u8> = (0..2_500_000u32).map(|i| (i.wrapping_mul(31) >> 2) as u8).collect();
    std::fs::write(ufs.path().join("a.bin"), &content).unwrap();
    std::fs::write(ufs.path().join("b.txt"), b"hello\n").unwrap();
    let l = start_local(data.path(), &["--workers", "2"]);
    ok(&l, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]);
    ok(&l, &["job", "load", "--path", "/data", "--sync"]);
    assert_eq!(cli(&l, &["fs", "cat", "/data/a.bin"]).stdout, content);
    let s3 = crate::http::get_as(&format!("{}/data/b.txt", l.s3[0]), None).unwrap();
    assert_eq!((s3.status, s3.body.as_slice()), (200, b"hello\n".as_slice()), "S3 GET");
    // A file the load did not see (a miss, read through), and a key that does not exist (a UFS `stat`
    // answered not_found, an S3 404): the miss and error families get their series.
    std::fs::write(ufs.path().join("c.txt"), b"after the load\n").unwrap();
    let s3 = crate::http::get_as(&format!("{}/data/c.txt", l.s3[0]), None).unwrap();
    assert_eq!((s3.status, s3.body.as_slice()), (200, b"after the load\n".as_slice()), "S3 GET of a miss");
    let s3 = crate::http::get_as(&format!("{}/data/nothing-here", l.s3[0]), None).unwrap();
    assert_eq!(s3.status, 404, "S3 GET of a missing key");

    let prom = start_prometheus(&l, prom_dir.path());
    let targets = 1 + l.workers.len();
    // Every target up and scraped several times, so rate() has samples to work on.
    prom.wait_until("every target is up", |p| p.scalar("sum(up)") == Some(targets as f64));
    prom.wait_until("every target was scraped 4 times", |p| {
        p.scalar("count(count_over_time(up[1m]) >= 4)") == Some(targets as f64)
    });

    // Every rule loaded, evaluated, healthy.
    let mut rule_queries = Vec::new();
    prom.wait_until("every rule was evaluated", |p| {
        let Some(v) = p.api("rules") else { return false };
        let rules: Vec<Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rule_queries = rules
            .iter()
            .map(|r| (r["name"].as_str().unwrap_or("").to_string(), r["query"].as_str().unwrap_or("").to_string()))
            .collect();
        !rules.is_empty() && rules.iter().all(|r| !r["lastEvaluation"].as_str().unwrap_or("0001").starts_with("0001"))
    });
    let v = prom.api("rules").unwrap();
    for g in v["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "rule {} of {}: {}", r["name"], g["file"], r["lastError"]);
        }
    }
    let in_file = std::fs::read_to_string(&rules_file).unwrap().matches("- alert:").count();
    assert_eq!(rule_queries.len(), in_file, "Prometheus loaded every rule of the file");

    // Every panel query and every rule runs, and uses only names Loam exports and Prometheus scraped.
    let catalog: BTreeSet<String> = loam::metrics_reference::sections()
        .iter()
        .flat_map(|s| s.catalog.iter().flat_map(|m| m.sample_names()))
        .collect();
    let mut checked = BTreeSet::new();
    for (what, expr) in dashboard_queries().into_iter().chain(rule_queries) {
        prom.query(&expr);
        for name in metric_names(&expr) {
            assert!(catalog.contains(&name), "{what}: {name} is not a metric Loam exports (not in any catalog)");
            if checked.insert(name.clone()) {
                let series = prom.query(&format!("count({name})"));
                assert!(series.as_array().is_some_and(|a| !a.is_empty()), "{what}: Prometheus scraped no {name}");
            }
        }
    }
    assert!(checked.len() > 20, "the dashboard and rules use Loam's metrics: {checked:?}");
    // The traffic shows: pages were served and a load ran.
    assert!(prom.scalar("sum(loam_worker_served_bytes_total)").unwrap() > 0.0);
    assert!(
        prom.scalar("sum(loam_coordinator_job_bytes_loaded_total{kind=\"load\"})").unwrap() >= content.len() as f64
    );
}

#[test]
fn metric_names_are_read_outside_string_literals() {
    let names = metric_names("sum by (le) (rate(loam_a_total{job=\"loam_not_a_name\"}[1m])) / process_b and up");
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["loam_a_total", "process_b"]);
}
