//! Clients of a highly available Coordinator (issue 15): the CLI (`--coordinator URL,URL`) and a worker
//! (`coordinator = [URL, URL]`) try the Coordinators in order and stick to the one that answered
//! (`loam_client::coordinator`). Real processes: two `loam coordinator`s on one etcd, a dead URL (a port
//! nothing listens on), a worker started from a config file; the leader is killed with `kill -9`. The
//! Coordinator that takes over answers the global file index of files cached before (it reads the
//! workers' lists when it comes to lead: their reports carry only changes). A bad list is one line naming
//! the setting, exit 2.

use crate::cluster::{CAP, Cluster, wait_until};
use crate::http;
use crate::process::{Server, loam, log_path, run_capped, run_cli, server, strings};
use loam_testsupport::auth::ADMIN;
use serde_json::Value;
use std::time::Duration;

/// A URL where nothing listens: connections are refused.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}", loam_testsupport::free_port())
}

/// `loam --coordinator <list> <args>`, which must succeed; its stdout.
fn ok_with(list: &str, args: &[&str]) -> String {
    let mut all = strings(&["--coordinator", list]);
    all.extend(strings(args));
    let o = run_cli(&all);
    assert!(o.status.success(), "loam --coordinator {list} {args:?}: {}", o.stderr);
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

fn wait_leader(url: &str, leader: &str) {
    wait_until(&format!("{url} sees {leader} lead"), CAP, || {
        let a = http::get(&format!("{url}/api/v1/coordinators")).ok()?;
        let v: Value = serde_json::from_slice(&a.body).ok()?;
        (v["leader"] == leader).then_some(())
    });
}

/// `/v1/load?opType=submit` of `path` on the worker at `worker`: the job id it answered.
fn submit_through_worker(worker: &str, path: &str) -> String {
    let url = format!("{worker}/v1/load?path={path}&opType=submit");
    let a = http::send_as("POST", &url, Some(ADMIN), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.status, 200, "{}", a.text());
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["success"], true, "{v}");
    v["jobId"].as_str().expect("a job id").to_string()
}

/// Waits until load job `id`, asked of the Coordinator at `url`, has ended; it must have SUCCEEDED.
fn wait_succeeded(url: &str, id: &str) {
    let end = wait_until(&format!("load {id} ends"), Duration::from_secs(60), || {
        let a = http::get(&format!("{url}/api/v1/load?id={id}")).ok().filter(|a| a.status == 200)?;
        let v: Value = serde_json::from_slice(&a.body).ok()?;
        (v["state"] != "RUNNING" && v["state"] != "VERIFYING").then_some(v)
    });
    assert_eq!(end["state"], "SUCCEEDED", "{end}");
}

/// A `loam worker` of `c` whose config file says `coordinator = [<urls>]`: its process, its URL, and the
/// directory of its file, data and log.
fn start_listed_worker(c: &Cluster, urls: &[&str]) -> (Server, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worker.toml");
    let list: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    std::fs::write(&config, format!("coordinator = [{}]\n", list.join(", "))).unwrap();
    let port = loam_testsupport::free_port();
    let args = strings(&["worker", "--config", &config.display().to_string(), "--etcd", &c.etcd_url()]);
    let mut more = strings(&["--host", "127.0.0.1", "--http-port", &port.to_string(), "--s3-port", "0"]);
    more.extend(strings(&["--data-dir", &dir.path().join("data").display().to_string(), "--cache-size", "64MiB"]));
    let worker = server(&[args, more].concat(), &log_path(dir.path(), "worker-listed")).expect("the worker starts");
    (worker, format!("http://127.0.0.1:{port}"), dir)
}

#[test]
fn the_cli_given_several_coordinators_uses_the_first_that_answers() {
    let c = Cluster::start(1);
    let leader = c.coordinator_url();
    let (_follower, follower) = c.start_another_coordinator("coordinator-b");
    wait_leader(&follower, &leader);
    c.mount_data();
    let dead = dead_url();
    let lists = [format!("{dead},{leader}"), format!("{leader},{dead}"), format!("{follower},{leader}")];
    for (i, list) in lists.iter().enumerate() {
        let out = ok_with(list, &["mount", "list"]);
        assert!(out.contains(&c.ufs_uri("")), "{list}: {out}");
        c.write_file(&format!("set{i}/f"), 40_000, i as u32);
        let out = ok_with(list, &["job", "load", "--path", &format!("/data/set{i}"), "--sync"]);
        assert!(out.contains("SUCCEEDED") && out.contains("files 1/1"), "{list}: {out}");
    }
    // Nobody answers: one line naming every URL tried.
    let dead2 = dead_url();
    let o = run_cli(&strings(&["--coordinator", &format!("{dead},{dead2}"), "mount", "list"]));
    assert_eq!(o.status.code(), Some(1), "{}", o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(o.stderr.contains(&format!("{dead} unreachable")) && o.stderr.contains(&format!("{dead2} unreachable")));
}

#[test]
fn a_worker_and_the_cli_move_on_when_the_first_coordinator_is_killed() {
    let mut c = Cluster::start(1);
    let first = c.coordinator_url();
    let (_second, second) = c.start_another_coordinator("coordinator-b");
    wait_leader(&second, &first);
    c.mount_data();
    // A worker whose config file lists a dead Coordinator, then the leader, then the follower.
    let (_worker, worker, _dir) = start_listed_worker(&c, &[&dead_url(), &first, &second]);

    c.write_file("w1/f", 40_000, 1);
    let id = submit_through_worker(&worker, "/data/w1");
    wait_succeeded(&first, &id);
    c.stop_coordinator("-9");
    // The CLI's first URL is now dead: it reads through the next one (a follower serves reads itself).
    let list = format!("{first},{second}");
    assert!(ok_with(&list, &["mount", "list"]).contains(&c.ufs_uri("")));
    wait_leader(&second, &second);
    // The worker's client answered from `first` last: its next request finds it dead and moves on.
    c.write_file("w2/f", 40_000, 2);
    let id = submit_through_worker(&worker, "/data/w2");
    wait_succeeded(&second, &id);
    c.write_file("w3/f", 40_000, 3);
    let out = ok_with(&list, &["job", "load", "--path", "/data/w3", "--sync"]);
    assert!(out.contains("SUCCEEDED"), "{out}");
}

/// The files the global file index of the Coordinator at `url` lists under `/data/<dir>`.
fn indexed(url: &str, dir: &str) -> Option<usize> {
    let a = http::get(&format!("{url}/api/v1/file_index?prefix=/data/{dir}")).ok().filter(|a| a.status == 200)?;
    let v: Value = serde_json::from_slice(&a.body).ok()?;
    v["results"].as_array().map(Vec::len)
}

#[test]
fn a_coordinator_that_takes_over_answers_the_file_index_of_files_cached_before() {
    let mut c = Cluster::start(1);
    let first = c.coordinator_url();
    let (_second, second) = c.start_another_coordinator("coordinator-b");
    wait_leader(&second, &first);
    c.mount_data();
    // Two workers: the cluster's, which reports to `first` only, and one that lists both.
    let (_worker, _, _dir) = start_listed_worker(&c, &[&first, &second]);
    wait_until("both workers are ONLINE", CAP, || (c.nodes().ok()?.len() == 2).then_some(()));
    const FILES: usize = 8;
    for i in 0..FILES {
        c.write_file(&format!("idx/f{i}"), 20_000, i as u32);
    }
    assert!(c.ok(&["job", "load", "--path", "/data/idx", "--sync"]).contains("SUCCEEDED"));
    wait_until("the leader indexes every file", CAP, || (indexed(&first, "idx")? == FILES).then_some(()));
    c.stop_coordinator("-9");
    wait_leader(&second, &second);
    // Nothing changed on the workers, so no report says anything new: the new leader read their lists.
    wait_until("the new leader indexes every file", CAP, || (indexed(&second, "idx")? == FILES).then_some(()));
}

#[test]
fn a_bad_coordinator_list_is_one_line_naming_the_setting_and_exit_2() {
    let bad = [
        ("http://127.0.0.1:1,,http://127.0.0.1:2", "entry 2 is empty"),
        ("", "entry 1 is empty"),
        ("http://127.0.0.1:1,ftp://b", r#"entry 2 ("ftp://b") must be an http:// or https:// URL with a host"#),
        ("127.0.0.1:19999", r#"entry 1 ("127.0.0.1:19999") is not a URL: relative URL without a base"#),
    ];
    for (list, why) in bad {
        let o = run_cli(&strings(&["--coordinator", list, "mount", "list"]));
        assert_eq!((o.status.code(), o.stderr.as_str()), (Some(2), format!("error: --coordinator: {why}\n").as_str()));
    }
    let mut cmd = loam();
    cmd.env("LOAM_COORDINATOR", "http://127.0.0.1:1, ,http://127.0.0.1:2").args(["mount", "list"]);
    let o = run_capped(cmd, None, CAP);
    assert_eq!((o.status.code(), o.stderr.as_str()), (Some(2), "error: LOAM_COORDINATOR: entry 2 is empty\n"));
    // A worker names the key and where its value came from, before it starts anything.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let args = ["worker", "--etcd", "http://127.0.0.1:1", "--data-dir", &data, "--coordinator", "http://a:1,file:///x"];
    let o = run_cli(&strings(&args));
    let want = "error: `coordinator` (flag --coordinator): entry 2 (\"file:///x\") must be an http:// or https:// \
                URL with a host\n";
    assert_eq!((o.status.code(), o.stderr.as_str()), (Some(2), want));
}
