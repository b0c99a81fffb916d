//! The job runners' clean shutdown: `JobService::shutdown` while a job is mid-flight ends every runner
//! task. The job service runs on a runtime of its own (the workers on the test's), so its live task count
//! says whether any runner outlived the shutdown.

use crate::{PAGE, cluster};
use loam_coordinator::jobs::record::JobKind;
use loam_coordinator::{Coordinator, CoordinatorConfig};
use loam_core::job_api::{JobState, LoadRequest};
use loam_testsupport::data::pattern;
use std::time::Duration;

#[test]
fn shutdown_ends_every_runner_mid_job() {
    let test_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let jobs_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let c = test_rt.block_on(cluster(2));
    for i in 0..40 {
        c.write(&format!("s/f{i:02}"), &pattern(PAGE as usize, i as u8));
    }
    c.faulty().set_read_delay(Some(Duration::from_millis(200)));
    let cfg = CoordinatorConfig {
        data_dir: c.dir.join("jobs-coordinator"),
        auth: loam_testsupport::auth::node_auth(),
        ..CoordinatorConfig::default()
    };
    let coordinator = Coordinator::new(c.store.clone(), c.registry.clone(), cfg);
    let req: LoadRequest =
        serde_json::from_value(serde_json::json!({"paths": ["/data/s"], "options": {"batchSize": 2}})).unwrap();
    let id = jobs_rt.block_on(async {
        coordinator.jobs().start().await.unwrap();
        let loam_coordinator::jobs::Submitted::New(id) = coordinator.jobs().submit_load(req).await.unwrap() else {
            panic!("a new job")
        };
        // Mid-flight: some files loaded, not all.
        loop {
            let p = coordinator.jobs().load_progress(&id).await.unwrap();
            if p.loaded_non_empty_files >= 2 {
                assert_eq!(p.state, "RUNNING", "{p:?}");
                break id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(jobs_rt.metrics().num_alive_tasks() > 0, "the runner is a task of this runtime");
    jobs_rt.block_on(coordinator.jobs().shutdown());
    let rec = jobs_rt.block_on(coordinator.jobs().record(JobKind::Load, &id)).unwrap();
    assert!(matches!(rec.state, JobState::Running | JobState::Stopped), "{:?}", rec.state);
    // The HTTP client's pooled connections are tasks too; they end with the service.
    drop(coordinator);
    let alive = jobs_rt.block_on(async {
        for _ in 0..200 {
            if tokio::runtime::Handle::current().metrics().num_alive_tasks() == 0 {
                return 0;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::runtime::Handle::current().metrics().num_alive_tasks()
    });
    assert_eq!(alive, 0, "a task of the job service outlived its shutdown");
    // Nothing loads any more once it is down. A worker finishes a batch already handed to it (on its own
    // task, so a coordinator restart wastes no reads in flight): wait for the reads to settle first.
    test_rt.block_on(async {
        for _ in 0..50 {
            let before = c.faulty().read_calls();
            tokio::time::sleep(Duration::from_millis(400)).await;
            if c.faulty().read_calls() == before {
                break;
            }
        }
    });
    c.faulty().reset_counters();
    test_rt.block_on(async { tokio::time::sleep(Duration::from_millis(500)).await });
    assert_eq!(c.faulty().read_calls(), 0, "no runner is still sending work to the workers");
    test_rt.block_on(async move { drop(c) });
    test_rt.shutdown_timeout(Duration::from_secs(5));
}
