//! Secrets and cached data at rest: after a real `loam local` has started, mounted a directory and served
//! a read (so it has its embedded store, worker identities, the S3 key file, page caches and record logs),
//! every directory under its data directory is `0700` and every file `0600`.

use crate::local_process::{ok, start_local};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn walk(dir: &Path, out: &mut Vec<(String, bool, u32)>) {
    for entry in std::fs::read_dir(dir).expect("read a data directory") {
        let path = entry.expect("an entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        out.push((path.display().to_string(), meta.is_dir(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            walk(&path, out);
        }
    }
}

#[test]
fn a_local_clusters_data_directory_is_private() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let ufs = root.path().join("ufs");
    std::fs::create_dir(&ufs).unwrap();
    let bytes = loam_testsupport::data::content(200_000, 3);
    std::fs::write(ufs.join("f.bin"), &bytes).unwrap();
    let l = start_local(&data, &[]);
    ok(&l, &["mount", "add", "/d", &format!("file://{}", ufs.display())]);
    let o = crate::local_process::cli(&l, &["fs", "cat", "/d/f.bin"]);
    assert!(o.status.success() && o.stdout == bytes, "{}", String::from_utf8_lossy(&o.stderr));
    drop(l);

    let mut entries =
        vec![(data.display().to_string(), true, std::fs::metadata(&data).unwrap().permissions().mode() & 0o777)];
    walk(&data, &mut entries);
    assert!(entries.iter().any(|(_, dir, _)| !dir), "the data directory holds files: {entries:?}");
    let wrong: Vec<_> = entries.iter().filter(|(_, dir, mode)| *mode != if *dir { 0o700 } else { 0o600 }).collect();
    assert!(wrong.is_empty(), "directories must be 0700 and files 0600: {wrong:?}");
}
