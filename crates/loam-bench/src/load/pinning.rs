//! CPU pinning for `loam-bench load --pin-s3-cpus`: the S3 server on its own CPUs, everything else (this
//! process, etcd, the coordinator, the workers, and so the baseline copy too) on the others.
//!
//! Why: on a small machine the S3 server shares the CPU with the cluster, so every cycle a worker spends
//! writing its cache is taken from the server being measured, and the job is charged twice for it. A real
//! object store is remote. Pinning gives the server the same CPUs in the baseline and in the job, while the
//! cache's own work (scheduling, UFS reads, checksums, page writes) still competes with the client side
//! exactly as before. Done with `taskset` (util-linux), which children inherit.

use anyhow::{Context, bail};
use std::collections::BTreeSet;
use std::process::Command;

/// Which CPUs the S3 server runs on and which the rest does, as `taskset` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinning {
    /// CPUs of the S3 server.
    pub s3: String,
    /// CPUs of everything else.
    pub rest: String,
}

impl Pinning {
    /// The pinning for S3 server CPUs `list` (`0`, `0,2`, `0-1`) on a machine with `cpus` CPUs.
    pub fn new(list: &str, cpus: usize) -> anyhow::Result<Self> {
        let s3 = parse_list(list)?;
        if let Some(bad) = s3.iter().find(|c| **c >= cpus) {
            bail!("--pin-s3-cpus {list}: CPU {bad} does not exist (this machine has {cpus})");
        }
        let rest: Vec<String> = (0..cpus).filter(|c| !s3.contains(c)).map(|c| c.to_string()).collect();
        if rest.is_empty() {
            bail!("--pin-s3-cpus {list} leaves no CPU for the cluster");
        }
        let s3: Vec<String> = s3.iter().map(|c| c.to_string()).collect();
        Ok(Self { s3: s3.join(","), rest: rest.join(",") })
    }

    /// Moves every thread of this process to the `rest` CPUs; processes started afterwards inherit it.
    pub fn pin_self(&self) -> anyhow::Result<()> {
        let pid = std::process::id().to_string();
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", &self.rest, &pid])
            .stdout(std::process::Stdio::null())
            .status()
            .context("running taskset (util-linux)")?;
        if !status.success() {
            bail!("taskset -a -p -c {} {pid} failed: {status}", self.rest);
        }
        Ok(())
    }

    /// `program args…` wrapped to run on the S3 server's CPUs: `taskset -c <s3> program args…`.
    pub fn wrap_s3(&self, program: &std::path::Path, args: &[String]) -> (std::path::PathBuf, Vec<String>) {
        let mut wrapped = vec!["-c".to_string(), self.s3.clone(), program.display().to_string()];
        wrapped.extend(args.iter().cloned());
        ("taskset".into(), wrapped)
    }
}

/// Parses a CPU list: numbers and ranges separated by commas.
fn parse_list(list: &str) -> anyhow::Result<BTreeSet<usize>> {
    let mut out = BTreeSet::new();
    for part in list.split(',') {
        let bad = || format!("--pin-s3-cpus {list}: {part:?} is not a CPU number or range");
        let (lo, hi) = match part.trim().split_once('-') {
            Some((a, b)) => (a.parse::<usize>().with_context(bad)?, b.parse::<usize>().with_context(bad)?),
            None => {
                let c = part.trim().parse::<usize>().with_context(bad)?;
                (c, c)
            }
        };
        if lo > hi {
            bail!(bad());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_the_machine() {
        assert_eq!(Pinning::new("0", 2).unwrap(), Pinning { s3: "0".into(), rest: "1".into() });
        assert_eq!(Pinning::new("1-2,5", 6).unwrap(), Pinning { s3: "1,2,5".into(), rest: "0,3,4".into() });
        for (list, cpus) in [("0-1", 2), ("2", 2), ("x", 2), ("1-0", 2), ("", 2)] {
            assert!(Pinning::new(list, cpus).is_err(), "{list} on {cpus}");
        }
    }

    #[test]
    fn the_server_is_wrapped_in_taskset() {
        let p = Pinning::new("0", 2).unwrap();
        let (program, args) = p.wrap_s3(std::path::Path::new("/bin/s3"), &["--port".into(), "1".into()]);
        assert_eq!(program, std::path::PathBuf::from("taskset"));
        assert_eq!(args, ["-c", "0", "/bin/s3", "--port", "1"]);
    }
}
