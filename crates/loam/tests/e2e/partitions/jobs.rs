//! "No lost job" (issue 13, item 6), one check for every partition test: once the test's faults are
//! healed, every load the Coordinator accepted during the test is found by it, in its store's listing and
//! by id, in a finished state that agrees with what the test did to the cluster:
//!
//! - none missing, and none the test did not submit (a submission refused while the Coordinator was cut
//!   from etcd made no job);
//! - none left `RUNNING` or `VERIFYING` (waited for, with a cap: a job that does not end is stuck);
//! - the state the test expects ([`Expect`]), and the counts agree with the files: `loadedNonEmptyFiles`
//!   plus `failedFiles` is every non-empty file, `totalBytes` their sum;
//! - no file reported loaded that is not cached: every file that did not fail is wholly cached
//!   (`mInAlluxioPercentage` 100 on `/v1/info`, which answers for the asked worker's own cache) on some
//!   worker. Some worker, not the owner of now: a ring that changed during the job (a worker cut from
//!   etcd) and changed back after it leaves the files where the job put them.

use super::sim::{HTTP_PORT, Sim, WORKERS};
use crate::cluster::wait_until;
use std::collections::BTreeSet;
use std::time::Duration;

/// How long a job may take to end once the faults are healed, before it counts as stuck.
const END_CAP: Duration = Duration::from_secs(90);

/// What a test expects of a load it submitted.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// `SUCCEEDED`, no file failed.
    Succeeded,
    /// `FAILED` for the files owned by the worker on this host (a cut that outlasted the retry window),
    /// and only those: every other file loaded.
    FailedOn(usize),
}

impl Sim {
    /// Submits the load `body` (a `POST /api/v1/load` body), which the Coordinator must accept; its id,
    /// kept with `expect` for [`Sim::assert_no_lost_job`].
    pub fn submit_load(&self, body: &str, expect: Expect) -> String {
        let url = format!("{}/api/v1/load", self.coordinator());
        let (status, answer) = self.curl(&["-X", "POST", "-H", "Content-Type: application/json", "-d", body, &url]);
        assert_eq!(status, 200, "load {body}: {}", String::from_utf8_lossy(&answer));
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON answer");
        let id = v["id"].as_str().expect("a job id").to_string();
        self.jobs.lock().unwrap().push((id.clone(), expect));
        id
    }

    /// The load job `id` as the Coordinator answers it.
    pub fn job(&self, id: &str) -> Option<serde_json::Value> {
        self.json(&format!("{}/api/v1/load?id={id}", self.coordinator()))
    }

    /// Waits (at most the end cap) until job `id` is no longer `RUNNING` or `VERIFYING`; its last answer.
    pub fn job_end(&self, id: &str) -> serde_json::Value {
        wait_until(&format!("job {id} ends"), END_CAP, || {
            self.job(id).filter(|j| j["state"] != "RUNNING" && j["state"] != "VERIFYING")
        })
    }

    /// The shared "no lost job" check (see the module header). Call it once every fault is healed.
    pub fn assert_no_lost_job(&self) {
        let jobs = self.jobs.lock().unwrap().clone();
        let listed = wait_until("the Coordinator lists its jobs", END_CAP, || {
            let v = self.json(&format!("{}/api/v1/load", self.coordinator()))?;
            let ids: BTreeSet<String> =
                v["results"].as_array()?.iter().filter_map(|j| j["id"].as_str().map(str::to_string)).collect();
            Some(ids)
        });
        let submitted: BTreeSet<String> = jobs.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(listed, submitted, "the Coordinator's jobs are the ones the test submitted\n{}", self.logs());
        let files = self.ufs_files();
        let non_empty: Vec<&(String, u64)> = files.iter().filter(|(_, len)| *len > 0).collect();
        for (id, expect) in jobs {
            let j = self.job_end(&id);
            let failed = self.failed_files(&j);
            match expect {
                Expect::Succeeded => {
                    assert_eq!((j["state"].as_str(), failed.len()), (Some("SUCCEEDED"), 0), "job {id}: {j}");
                }
                Expect::FailedOn(w) => {
                    assert_eq!(j["state"], "FAILED", "job {id}: {j}");
                    assert!(!failed.is_empty(), "job {id} failed files: {j}");
                    for rel in &failed {
                        assert_eq!(self.owner(rel), self.worker_addr(w), "job {id} failed {rel}, not the cut worker's");
                    }
                }
            }
            assert_eq!(j["failedFiles"].as_u64(), Some(failed.len() as u64), "job {id}: {j}");
            assert_eq!(j["loadedNonEmptyFiles"].as_u64(), Some((non_empty.len() - failed.len()) as u64), "{j}");
            assert_eq!(j["totalBytes"].as_u64(), Some(files.iter().map(|(_, l)| l).sum()), "job {id}: {j}");
            for (rel, _) in non_empty.iter().filter(|(rel, _)| !failed.contains(rel)) {
                let holders: Vec<usize> = WORKERS.into_iter().filter(|w| self.cached_percent(*w, rel) == 100).collect();
                assert!(!holders.is_empty(), "job {id} is {} but no worker caches {rel}", j["state"]);
            }
        }
    }

    /// Every file of the UFS (the tests load `/data` whole): (path relative to the UFS root, length).
    fn ufs_files(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut dirs = vec![self.ufs.clone()];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).expect("list the UFS").map(|e| e.expect("a UFS entry")) {
                let meta = e.metadata().expect("stat a UFS entry");
                if meta.is_dir() {
                    dirs.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(&self.ufs).expect("under the UFS").display().to_string();
                    out.push((rel, meta.len()));
                }
            }
        }
        out.sort();
        out
    }

    /// The files a finished job names as failed (`errorMessage`: UFS URIs or cluster paths), relative to
    /// the UFS root.
    fn failed_files(&self, job: &serde_json::Value) -> BTreeSet<String> {
        let root = format!("file://{}/", self.ufs.display());
        let names = job["errorMessage"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        names
            .iter()
            .map(|p| p.strip_prefix(&root).or_else(|| p.strip_prefix("/data/")).unwrap_or(p).to_string())
            .collect()
    }

    /// `host:port` of the owner of `rel` on the ring of the worker on the first host.
    pub fn owner(&self, rel: &str) -> String {
        self.owner_on(WORKERS[0], rel)
    }

    /// `host:port` of the owner of `rel` on the ring of the worker on host `w`.
    fn owner_on(&self, w: usize, rel: &str) -> String {
        let url = format!("{}/v1/node?path={}", self.url(w, HTTP_PORT), self.uri(rel));
        let v = self.json(&url).unwrap_or_else(|| panic!("/v1/node of {rel} on host {w}"));
        format!("{}:{}", v["Host"].as_str().unwrap_or(""), v["HttpServerPort"])
    }

    /// A worker that owns some of `files` on the ring, but not all of them: the one a test cuts off. A
    /// worker's share of the ring is random (5 virtual nodes each, as Alluxio), and now and then one owns
    /// none of a dozen files; a cut of that worker would test nothing. Waits until every worker's ring
    /// agrees (a ring that has not seen the last worker join yet names other owners).
    pub fn a_worker_owning_some(&self, files: &[(String, Vec<u8>)]) -> usize {
        let owners = wait_until("every worker's ring agrees", END_CAP, || {
            let rings: Vec<Vec<String>> =
                WORKERS.into_iter().map(|w| files.iter().map(|(rel, _)| self.owner_on(w, rel)).collect()).collect();
            rings.windows(2).all(|pair| pair[0] == pair[1]).then(|| rings[0].clone())
        });
        let owned = |w: usize| owners.iter().filter(|o| **o == self.worker_addr(w)).count();
        WORKERS
            .into_iter()
            .find(|w| (1..files.len()).contains(&owned(*w)))
            .unwrap_or_else(|| panic!("no worker owns some but not all files: {owners:?}"))
    }

    /// How much of `rel` the worker on host `w` caches itself, in percent (0 when it cannot answer).
    fn cached_percent(&self, w: usize, rel: &str) -> u64 {
        let url = format!("{}/v1/info?path={}", self.url(w, HTTP_PORT), self.uri(rel));
        self.json(&url).and_then(|v| v[0]["mInAlluxioPercentage"].as_u64()).unwrap_or(0)
    }
}
