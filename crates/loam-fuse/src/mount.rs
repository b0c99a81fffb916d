//! Making and taking down a mount. fuser mounts `/dev/fuse` itself when run as root (no libfuse), or
//! through `fusermount3` otherwise, and runs the session on its own threads; [`MountedFs`] owns that
//! session and unmounts it on [`MountedFs::unmount`] or drop. An unmount that the kernel refuses
//! because files are still open (`EBUSY`) is retried lazily (`fusermount3 -u -z`, else `umount -l`), so
//! dropping the handle never leaves the mount behind; the kernel finishes it when the last file closes.
//!
//! The kernel's read-ahead for a FUSE mount starts at 128 KiB and the init handshake can only lower
//! it, so after mounting, the mount's backing-device read-ahead is raised in sysfs
//! (`/sys/class/bdi/<dev>/read_ahead_kb`). That needs root; without it the mount works with 128 KiB
//! kernel read-ahead and relies on the client read-ahead alone.

use crate::config::FuseConfig;
use crate::error::FuseError;
use crate::fs::LoamFs;
use crate::metrics::FuseMetrics;
use crate::namespace::{MountSource, Namespace};
use crate::short_circuit::ShortCircuit;
use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};
use loam_client::Client;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::watch;

/// The kernel's FUSE device.
pub const FUSE_DEVICE: &str = "/dev/fuse";

/// A mounted cluster namespace; unmounted on drop.
pub struct MountedFs {
    session: Option<BackgroundSession>,
    mount_point: PathBuf,
    ended: watch::Receiver<bool>,
    metrics: Arc<FuseMetrics>,
}

/// Mounts the namespace of `mounts`, read through `client`, at `cfg.mount_point`. Requests are answered
/// by tasks on `rt`, which must not be a runtime whose only thread then blocks on reading the mount.
pub fn mount(
    client: Client,
    mounts: Arc<dyn MountSource>,
    cfg: &FuseConfig,
    rt: Handle,
) -> Result<MountedFs, FuseError> {
    if !Path::new(FUSE_DEVICE).exists() {
        return Err(FuseError::NoDevice);
    }
    let not_dir = || FuseError::NotADirectory(cfg.mount_point.clone());
    let md = std::fs::metadata(&cfg.mount_point).map_err(|_| not_dir())?;
    if !md.is_dir() {
        return Err(not_dir());
    }
    let mount_point = cfg.mount_point.canonicalize().map_err(|_| not_dir())?;
    let metrics = Arc::new(FuseMetrics::new());
    let short_circuit = cfg.short_circuit.then(|| ShortCircuit::new(client.clone(), metrics.clone()));
    let ns = Namespace::new(client, mounts, cfg.attr_ttl, (md.uid(), md.gid())).with_short_circuit(short_circuit);
    let (ended_tx, ended) = watch::channel(false);
    let fs = LoamFs::new(ns, cfg, rt, ended_tx, metrics.clone());
    let mut options = Config::default();
    options.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("loam".into()),
        MountOption::Subtype("loam".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    options.acl = if cfg.allow_other { SessionACL::All } else { SessionACL::Owner };
    options.n_threads = Some(cfg.threads.max(1));
    options.clone_fd = cfg.threads > 1;
    let failed = |source| FuseError::Mount { path: mount_point.clone(), source };
    let session = Session::new(fs, &mount_point, &options).map_err(failed)?.spawn().map_err(failed)?;
    raise_kernel_readahead(&mount_point, cfg.kernel_readahead);
    tracing::info!("mounted the cluster namespace at {}", mount_point.display());
    Ok(MountedFs { session: Some(session), mount_point, ended, metrics })
}

impl MountedFs {
    /// Where it is mounted.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// The mount's metrics (served by `loam fuse --metrics-port`).
    pub fn metrics(&self) -> Arc<FuseMetrics> {
        self.metrics.clone()
    }

    /// Whether the session is over (unmounted, by us or by someone else).
    pub fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Resolves once the session is over, e.g. after `fusermount3 -u` by someone else.
    pub async fn ended(&self) {
        let mut rx = self.ended.clone();
        let _ = rx.wait_for(|e| *e).await;
    }

    /// Unmounts and waits for the session threads (lazily when files are still open: then it
    /// returns once the mount is detached).
    pub fn unmount(mut self) -> Result<(), FuseError> {
        self.take_down()
    }

    fn take_down(&mut self) -> Result<(), FuseError> {
        let Some(session) = self.session.take() else { return Ok(()) };
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) if is_mounted(&self.mount_point) => {
                tracing::info!("unmount of {} refused ({e}); detaching it lazily", self.mount_point.display());
                lazy_unmount(&self.mount_point)
                    .map_err(|m| FuseError::Unmount { path: self.mount_point.clone(), message: format!("{e}; {m}") })
            }
            Err(e) => {
                tracing::debug!("the FUSE session ended with: {e}");
                Ok(())
            }
        }
    }
}

impl Drop for MountedFs {
    fn drop(&mut self) {
        if let Err(e) = self.take_down() {
            tracing::warn!("{e}");
        }
    }
}

/// Detaches the mount at `path` now, leaving the kernel to finish when its files are closed.
fn lazy_unmount(path: &Path) -> Result<(), String> {
    let mut errors = Vec::new();
    for (bin, args) in [("fusermount3", ["-u", "-z"]), ("umount", ["-l", "--"])] {
        match std::process::Command::new(bin).args(args).arg(path).output() {
            Ok(o) if o.status.success() || !is_mounted(path) => return Ok(()),
            Ok(o) => errors.push(format!("{bin}: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => errors.push(format!("{bin}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// Decodes the octal escapes (`\040` for a space) of a path in /proc/self/mountinfo.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `major:minor` of the last mount at `path` in `mountinfo` text.
fn device_of(mountinfo: &str, path: &Path) -> Option<String> {
    let want = path.to_string_lossy();
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 4 && unescape(f[4]) == want).then(|| f[2].to_string())
    })
}

/// Whether something is mounted at `path` (as /proc/self/mountinfo lists it).
pub fn is_mounted(path: &Path) -> bool {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|t| device_of(&t, &path).is_some())
}

/// Sets the kernel read-ahead of the mount at `path` to `bytes` (best effort: it needs root).
fn raise_kernel_readahead(path: &Path, bytes: u32) {
    let Some(dev) = std::fs::read_to_string("/proc/self/mountinfo").ok().and_then(|t| device_of(&t, path)) else {
        return;
    };
    let knob = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    match std::fs::write(&knob, (bytes / 1024).max(4).to_string()) {
        Ok(()) => tracing::debug!("kernel read-ahead of {} set to {bytes} bytes", path.display()),
        Err(e) => tracing::info!("cannot raise the kernel read-ahead ({knob}: {e}); using the kernel's default"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
        97 22 0:52 / /tmp/a\\040b rw,nosuid,nodev,noatime - fuse.loam loam ro,user_id=0,group_id=0\n\
        98 22 0:53 / /tmp/c rw - fuse.loam loam ro\n\
        99 22 0:54 / /tmp/c rw - fuse.loam loam ro\n";

    #[test]
    fn mountinfo_paths_are_unescaped_and_the_last_mount_wins() {
        assert_eq!(device_of(MOUNTINFO, Path::new("/tmp/a b")).as_deref(), Some("0:52"));
        assert_eq!(device_of(MOUNTINFO, Path::new("/tmp/c")).as_deref(), Some("0:54"));
        assert_eq!(device_of(MOUNTINFO, Path::new("/tmp")), None);
        assert_eq!(unescape("a\\134b\\011c\\0"), "a\\b\tc\\0");
    }

    #[test]
    fn a_plain_directory_is_not_mounted_and_a_file_is_no_mount_point() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mounted(dir.path()));
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let client = Client::new(reqwest_client(), loam_client::MembershipView::fixed(Vec::new(), 5), None);
        let cfg = FuseConfig::new(&file);
        let err = mount(client, Arc::new(loam_ufs::MountTable::new()), &cfg, rt.handle().clone()).err();
        assert!(matches!(err, Some(FuseError::NotADirectory(_))), "{err:?}");
    }

    fn reqwest_client() -> loam_client::PeerClient {
        loam_client::PeerClient::build(Default::default()).unwrap()
    }
}
