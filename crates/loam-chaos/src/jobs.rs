//! Jobs in a loop through the Coordinator's REST API, as an operator's scripts would run them: a load of
//! the soak's directory, then a free of it, again and again, whatever the faults do. Every job id is
//! recorded (also the id a `409` names: a job created by a request whose answer was lost).
//!
//! When a load ends `SUCCEEDED`, every file is checked at once on its owner (`/v1/node` on a worker, then
//! `/v1/info` on the owner: 100 % cached, the UFS's current version), before the free that follows:
//! a file missing there is recorded, and the report decides whether a fault explains it or the load was
//! wrongly `SUCCEEDED`. At the end, [`final_states`] asks for every recorded id: a job the Coordinator
//! does not know, or that never ends, is lost.
//!
//! Loads run with a bandwidth cap so that each lasts a few seconds: the Coordinator fault waits for one
//! to be running and kills the Coordinator under it.

use crate::cluster::{Endpoints, TOKEN};
use crate::data;
use crate::http;
use crate::readers::Log;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes per second each worker may read for a load: a load of the soak's files takes a few seconds.
const LOAD_BANDWIDTH: u64 = 2 << 20;
/// How long the loop waits for one job to end before it submits the next (the job is not forgotten: the
/// final check still wants it finished).
const JOB_CAP: Duration = Duration::from_secs(120);
/// How long the final check waits for the Coordinator to answer and each job to be finished.
const FINAL_CAP: Duration = Duration::from_secs(90);

/// One submitted job.
#[derive(Clone, Debug)]
pub struct Job {
    pub kind: &'static str,
    pub id: String,
    /// When it was submitted (soak seconds).
    pub submitted: f64,
    /// Its state when the loop stopped waiting, and when that was.
    pub state: String,
    pub ended: f64,
    /// For a `SUCCEEDED` load: the files not fully cached on their owners at the check, with why.
    pub uncached: Vec<String>,
    /// The state the final check found (`lost` when it found none, or none finished).
    pub final_state: String,
}

/// The loop and what it recorded.
pub struct Jobs {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub jobs: Arc<Mutex<Vec<Job>>>,
    /// Submissions the Coordinator refused or did not answer (it was down, or its store was).
    pub refused: Arc<Mutex<u64>>,
    /// Whether a load is running now (for the Coordinator fault).
    pub load_running: Arc<AtomicBool>,
}

impl Jobs {
    pub fn start(ep: Endpoints, files: usize, log: Log) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (jobs, refused, load_running) = (Arc::default(), Arc::default(), Arc::new(AtomicBool::new(false)));
        let ctx = Loop { ep, files, log, stop: stop.clone(), jobs: Arc::clone(&jobs), refused: Arc::clone(&refused) };
        let running = Arc::clone(&load_running);
        let thread = std::thread::spawn(move || ctx.run(&running));
        Self { stop, thread: Some(thread), jobs, refused, load_running }
    }

    /// Stops submitting, waits for the job in flight to end, and checks every job's final state.
    pub fn finish(mut self, ep: &Endpoints) -> (Vec<Job>, u64) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut jobs = self.jobs.lock().expect("jobs").clone();
        final_states(ep, &mut jobs);
        let refused = *self.refused.lock().expect("refused");
        (jobs, refused)
    }
}

struct Loop {
    ep: Endpoints,
    files: usize,
    log: Log,
    stop: Arc<AtomicBool>,
    jobs: Arc<Mutex<Vec<Job>>>,
    refused: Arc<Mutex<u64>>,
}

impl Loop {
    fn run(&self, load_running: &AtomicBool) {
        let paths = serde_json::json!([format!("/data/{}", data::DIR)]);
        let load = serde_json::json!({"paths": paths, "options": {"bandwidth": LOAD_BANDWIDTH}}).to_string();
        let free = serde_json::json!({"paths": paths}).to_string();
        while !self.stop.load(Ordering::SeqCst) {
            for (kind, body) in [("load", &load), ("free", &free)] {
                let Some(i) = self.submit(kind, body) else { continue };
                let running = (kind == "load").then_some(load_running);
                self.wait_end(i, running);
            }
        }
    }

    /// Submits until the Coordinator takes the job (or the loop is stopped); its index in the records.
    fn submit(&self, kind: &'static str, body: &str) -> Option<usize> {
        let url = format!("{}/api/v1/{kind}", self.ep.coordinator);
        while !self.stop.load(Ordering::SeqCst) {
            match http::json("POST", &url, Some(body), TOKEN) {
                Ok((200 | 409, v)) if v["id"].is_string() => {
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    let mut jobs = self.jobs.lock().expect("jobs");
                    if let Some(i) = jobs.iter().position(|j| j.id == id) {
                        return Some(i);
                    }
                    let submitted = self.log.now();
                    let job = Job {
                        kind,
                        id,
                        submitted,
                        state: String::new(),
                        ended: 0.0,
                        uncached: vec![],
                        final_state: String::new(),
                    };
                    jobs.push(job);
                    return Some(jobs.len() - 1);
                }
                _ => {
                    *self.refused.lock().expect("refused") += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        None
    }

    /// Polls job `i` until it is finished (or [`JOB_CAP`]); checks a `SUCCEEDED` load's files.
    fn wait_end(&self, i: usize, running: Option<&AtomicBool>) {
        let (kind, id) = {
            let jobs = self.jobs.lock().expect("jobs");
            (jobs[i].kind, jobs[i].id.clone())
        };
        let url = format!("{}/api/v1/{kind}?id={id}", self.ep.coordinator);
        let deadline = Instant::now() + JOB_CAP;
        let mut state = String::from("unknown");
        while Instant::now() < deadline {
            if let Ok((200, v)) = http::json("GET", &url, None, TOKEN) {
                state = v["state"].as_str().unwrap_or("unknown").to_string();
                if let Some(r) = running {
                    r.store(state == "RUNNING", Ordering::SeqCst);
                }
                if finished(&state) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some(r) = running {
            r.store(false, Ordering::SeqCst);
        }
        let uncached = if kind == "load" && state == "SUCCEEDED" { self.uncached() } else { Vec::new() };
        let mut jobs = self.jobs.lock().expect("jobs");
        jobs[i].state = state;
        jobs[i].ended = self.log.now();
        jobs[i].uncached = uncached;
    }

    /// The files not fully cached on their owners now, each with why.
    fn uncached(&self) -> Vec<String> {
        (0..self.files).filter_map(|f| self.owner_has(f).err().map(|why| format!("{}: {why}", data::name(f)))).collect()
    }

    fn owner_has(&self, f: usize) -> Result<(), String> {
        let path = format!("/data/{}/{}", data::DIR, data::name(f));
        let mut last = String::new();
        // Any worker resolves the owner on its ring; one that is down passes to the next.
        for w in &self.ep.workers {
            let owner = match http::json("GET", &format!("{w}/v1/node?path={path}"), None, TOKEN) {
                Ok((200, v)) => format!("http://{}:{}", v["Host"].as_str().unwrap_or(""), v["HttpServerPort"]),
                other => {
                    last = format!("{w}/v1/node: {other:?}");
                    continue;
                }
            };
            return match http::json("GET", &format!("{owner}/v1/info?path={path}"), None, TOKEN) {
                Ok((200, v)) => match v[0]["mInAlluxioPercentage"].as_u64() {
                    Some(100) => Ok(()),
                    p => Err(format!("{p:?} % cached on its owner {owner}")),
                },
                other => Err(format!("{owner}/v1/info: {other:?}")),
            };
        }
        Err(last)
    }
}

fn finished(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED")
}

/// Asks the Coordinator for every job until each is finished (or [`FINAL_CAP`] passes); a job it does
/// not know (`404`) or that never finishes is `lost`.
pub fn final_states(ep: &Endpoints, jobs: &mut [Job]) {
    let deadline = Instant::now() + FINAL_CAP;
    for j in jobs.iter_mut() {
        let url = format!("{}/api/v1/{}?id={}", ep.coordinator, j.kind, j.id);
        j.final_state = loop {
            match http::json("GET", &url, None, TOKEN) {
                Ok((200, v)) if finished(v["state"].as_str().unwrap_or("")) => {
                    break v["state"].as_str().unwrap_or_default().to_string();
                }
                Ok((404, _)) => break "lost (404)".into(),
                Ok((_, v)) if Instant::now() > deadline => break format!("lost (never finished: {})", v["state"]),
                Err(e) if Instant::now() > deadline => break format!("lost (no answer: {e})"),
                _ => std::thread::sleep(Duration::from_millis(250)),
            }
        };
    }
}

impl Job {
    /// Whether the final check found no finished job under this id.
    pub fn lost(&self) -> bool {
        self.final_state.starts_with("lost")
    }
}
