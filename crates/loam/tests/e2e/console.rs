//! The web console in headless Chromium (Debian's `chromium`) against a real `loam local`:
//! `tests/py/console_browser.py` drives it over the Chrome DevTools Protocol (see its docstring for the
//! phases: keyboard-only sign-in with a wrong token first, a refused and an accepted mount; a mount removed
//! after its confirmation; a load watched to SUCCEEDED; the file index; a slow load stopped, resumed and
//! stopped; a quota; every page's screenshot; no browser console error or unprovoked failed request). This side checks, through the REST
//! API, that the cluster holds what the page said it did, and that the screenshots were written.
//!
//! Screenshots go to `$LOAM_CONSOLE_SCREENSHOTS`, or `<target>/tmp/console-screenshots` by default.

use crate::local_process::start_local;
use crate::process;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// How long the browser script may take on a loaded machine (a 3 MiB load at 64 KiB/s is stopped early).
const SCRIPT_CAP: Duration = Duration::from_secs(420);

/// The pages (and states) the script photographs.
const SHOTS: &[&str] = &[
    "signin",
    "signin-refused",
    "mounts-refused",
    "mounts",
    "jobs-succeeded",
    "files",
    "jobs",
    "rules",
    "workers",
    "overview",
];

fn shots_dir() -> PathBuf {
    std::env::var_os("LOAM_CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"))
}

#[test]
fn the_console_signs_in_mounts_loads_and_stops_in_headless_chromium() {
    let chromium = which("chromium").expect("chromium not found: run scripts/setup-test-deps.sh");
    let python = loam_testsupport::s3_server::venv_dir().join("bin/python");
    assert!(python.is_file(), "{} not found: run scripts/setup-test-deps.sh", python.display());
    let data_dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ufs.path().join("a")).unwrap();
    for i in 0..3u8 {
        std::fs::write(ufs.path().join(format!("a/f{i}")), vec![i; 5000]).unwrap();
    }
    std::fs::create_dir_all(ufs.path().join("big")).unwrap();
    std::fs::write(ufs.path().join("big/f"), vec![7u8; 3 << 20]).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let l = start_local(data_dir.path(), &["--workers", "2"]);
    let console_line = format!("  console      {}/console   ", l.coordinator);
    assert!(l.banner.iter().any(|b| b.starts_with(&console_line)), "the banner names the console: {:?}", l.banner);
    let shots = shots_dir();
    let _ = std::fs::remove_dir_all(&shots);

    let mut cmd = Command::new(&python);
    cmd.arg(loam_testsupport::package_file("tests/py/console_browser.py"))
        .env("LOAM_CONSOLE", &l.coordinator)
        .env("LOAM_TOKEN", &l.token)
        .env("LOAM_UFS", ufs.path())
        .env("LOAM_UFS2", scratch.path())
        .env("LOAM_SHOTS", &shots)
        .env("CHROMIUM", chromium);
    let out = process::run_capped(cmd, None, SCRIPT_CAP);
    assert!(out.status.success(), "console_browser.py failed ({}):\n{}", out.status, out.stderr);
    let done: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", String::from_utf8_lossy(&out.stdout)));

    // What the page showed is what the cluster holds: one mount (the refused one was not added), the
    // load finished, the slow one stopped, the quota set.
    let api = |path: &str| -> serde_json::Value {
        let a = crate::http::get_as(&format!("{}{path}", l.coordinator), Some(&l.token)).unwrap();
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        serde_json::from_slice(&a.body).unwrap()
    };
    let mounts = api("/api/v1/mount");
    assert_eq!(mounts["results"].as_array().map(Vec::len), Some(1), "{mounts}");
    assert_eq!(mounts["results"][0]["path"], "/data/", "{mounts}");
    let loaded = api(&format!("/api/v1/load?id={}", done["loaded"].as_str().unwrap()));
    assert_eq!((loaded["state"].as_str(), loaded["scannedFiles"].as_u64()), (Some("SUCCEEDED"), Some(3)), "{loaded}");
    let stopped = api(&format!("/api/v1/load?id={}", done["stopped"].as_str().unwrap()));
    assert_eq!(stopped["state"], "STOPPED", "{stopped}");
    assert_eq!(api("/api/v1/quota?path=/data")["quotaBytes"], 1u64 << 30);
    for name in SHOTS {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}.png is not a PNG");
    }
    eprintln!("console screenshots in {}", shots.display());
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}
