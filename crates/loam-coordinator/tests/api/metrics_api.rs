//! The Coordinator's `GET /metrics`: after a load and a free the scrape shows the jobs and their counters
//! with exact values, the API histogram is labelled with route templates, and the text is OpenMetrics.

use crate::{PAGE, cluster};
use loam_testsupport::data::pattern;

async fn scrape(base: &str) -> String {
    let r = loam_testsupport::coordinator::client().get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    r.text().await.unwrap()
}

/// The value of the sample whose line starts with `series ` (name and labels exactly as encoded).
fn value(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|l| l.strip_prefix(series).is_some_and(|r| r.starts_with(' ')));
    line.unwrap_or_else(|| panic!("no {series} in\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
}

/// Structural OpenMetrics check: ends with `# EOF`, every sample belongs to a family declared by `# TYPE`.
fn assert_openmetrics(text: &str) {
    assert_eq!(text.lines().last(), Some("# EOF"));
    let families: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap()).collect();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(families.iter().any(|f| name.starts_with(f)), "sample of no declared family: {l}");
        let v = l.rsplit(' ').next().unwrap();
        assert!(v.parse::<f64>().is_ok() || v == "+Inf", "bad value: {l}");
    }
}

#[tokio::test]
async fn a_scrape_shows_jobs_counters_and_route_templates() {
    let c = cluster(2).await;
    c.write("m/a", &pattern(3 * PAGE as usize, 1));
    c.write("m/b", &pattern(PAGE as usize, 2));
    let fresh = scrape(&c.base).await;
    assert_openmetrics(&fresh);
    assert_eq!(value(&fresh, r#"loam_coordinator_jobs{kind="load",state="SUCCEEDED"}"#), 0.0);
    assert_eq!(value(&fresh, r#"loam_coordinator_workers{status="online"}"#), 2.0);
    for ep in ["load", "free"] {
        let (s, v) = c
            .call("POST", &format!("/api/v1/{ep}"), Some(r#"{"paths": ["/data/m"], "options": {"sync": true}}"#))
            .await;
        assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
        let (s, _) = c.call("GET", &format!("/api/v1/{ep}?id={}", v["id"].as_str().unwrap()), None).await;
        assert_eq!(s, 200);
    }
    let text = scrape(&c.base).await;
    assert_openmetrics(&text);
    let bytes = (4 * PAGE) as f64;
    for (series, want) in [
        (r#"loam_coordinator_jobs{kind="load",state="SUCCEEDED"}"#, 1.0),
        (r#"loam_coordinator_jobs{kind="free",state="SUCCEEDED"}"#, 1.0),
        (r#"loam_coordinator_jobs{kind="load",state="RUNNING"}"#, 0.0),
        (r#"loam_coordinator_job_files_scanned_total{kind="load"}"#, 2.0),
        (r#"loam_coordinator_job_files_loaded_total{kind="load"}"#, 2.0),
        (r#"loam_coordinator_job_bytes_loaded_total{kind="load"}"#, bytes),
        (r#"loam_coordinator_job_files_failed_total{kind="load"}"#, 0.0),
        (r#"loam_coordinator_job_files_freed_total{kind="free"}"#, 2.0),
        (r#"loam_coordinator_job_bytes_freed_total{kind="free"}"#, bytes),
        ("alluxio_distributed_load_job_scanned_total", 2.0),
        ("alluxio_distributed_load_job_processed_total", 2.0),
        ("alluxio_distributed_load_job_loaded_bytes_total", bytes),
        (r#"loam_coordinator_workers{status="online"}"#, 2.0),
        (r#"loam_coordinator_workers{status="offline"}"#, 0.0),
    ] {
        assert_eq!(value(&text, series), want, "{series}");
    }
    // The route is the template: the query string and ids never reach a label.
    let load_gets =
        r#"loam_coordinator_api_request_duration_seconds_count{method="GET",route="/api/v1/load",status="2xx"}"#;
    assert_eq!(value(&text, load_gets), 1.0);
    assert!(!text.contains("id="), "a raw path in a label");
    let (s, _) = c.call("GET", "/api/v1/no-such/thing", None).await;
    assert_eq!(s, 404);
    let text = scrape(&c.base).await;
    let unmatched =
        r#"loam_coordinator_api_request_duration_seconds_count{method="GET",route="unmatched",status="4xx"}"#;
    assert_eq!(value(&text, unmatched), 1.0);
    assert!(!text.contains("no-such"));
}
