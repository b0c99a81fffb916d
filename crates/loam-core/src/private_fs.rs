//! Creating directories and files that only the process's user may read: every directory a Loam process
//! makes under its data directory (and the data directory itself) is `0700`, every file `0600` (the
//! embedded store, identities, the S3 key file, job files, cached pages and their logs), so cached data
//! and secrets at rest are not readable by other local users. These helpers are the one place that says
//! so; modes apply to what is created (the umask can only narrow them), an existing directory is left
//! as it is (an operator may have chosen its mode), and [`restrict_file`] narrows a file some library
//! created itself (redb).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of a directory Loam creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a file Loam creates.
pub const FILE_MODE: u32 = 0o600;

/// `create_dir_all` with every directory it creates `0700`.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(path)
}

/// Options that create a file `0600` (a file that exists keeps its mode); add `write`, `append`, …
/// (Tokio: `tokio::fs::OpenOptions::from(open_options())`).
pub fn open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// `File::create` with mode `0600`.
pub fn create_file(path: &Path) -> io::Result<File> {
    open_options().write(true).create(true).truncate(true).open(path)
}

/// `fs::write` with mode `0600`.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    use std::io::Write;
    create_file(path)?.write_all(bytes.as_ref())
}

/// Narrows an existing file to `0600`.
pub fn restrict_file(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_are_0700_and_files_0600() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&root.path().join(d)), 0o700, "{d}");
        }
        let f = deep.join("f");
        write(&f, b"x").unwrap();
        assert_eq!(mode(&f), 0o600);
        let g = deep.join("g");
        std::fs::write(&g, b"y").unwrap();
        restrict_file(&g).unwrap();
        assert_eq!(mode(&g), 0o600);
    }
}
