//! `UfsRegistry`: one built UFS per (root, options), shared by clones; overrides win.

use bytes::Bytes;
use loam_ufs::faulty::FaultyUfs;
use loam_ufs::{Mount, MountOptions, UfsError, UfsRegistry};
use std::sync::Arc;

fn opts(kv: &[(&str, &str)]) -> MountOptions {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn builds_once_per_root_and_options() {
    let tmp = tempfile::tempdir().unwrap();
    let root = format!("file://{}", tmp.path().display());
    let reg = UfsRegistry::new();
    let a = Mount::new("/a", &root, MountOptions::new()).unwrap();
    let b = Mount::new("/b", &format!("{root}/"), MountOptions::new()).unwrap();
    let first = reg.for_mount(&a).unwrap();
    assert!(Arc::ptr_eq(&first, &reg.for_mount(&a).unwrap()), "cached");
    assert!(Arc::ptr_eq(&first, &reg.clone().for_mount(&b).unwrap()), "same root and options, clone shares the cache");
    let other_opts = Mount::new("/a", &root, opts(&[("some.option", "x")])).unwrap();
    assert!(!Arc::ptr_eq(&first, &reg.for_mount(&other_opts).unwrap()), "new options, new instance");
    assert_eq!(reg.built_count(), 2);
    reg.forget(&root);
    assert_eq!(reg.built_count(), 0);
    assert!(!Arc::ptr_eq(&first, &reg.for_mount(&a).unwrap()), "rebuilt after forget");
}

#[test]
fn build_errors_are_returned_and_not_cached() {
    let reg = UfsRegistry::new();
    let bad = Mount::new("/s", "s3://bucket/p", opts(&[("s3.pathStyle", "maybe")])).unwrap();
    assert!(matches!(reg.for_mount(&bad), Err(UfsError::InvalidInput(_))));
    let missing = Mount::new("/m", "file:///no/such/loam/dir", MountOptions::new()).unwrap();
    assert!(matches!(reg.for_mount(&missing), Err(UfsError::NotFound(_))));
    assert_eq!(reg.built_count(), 0);
}

#[tokio::test]
async fn overrides_win_over_built_instances() {
    let tmp = tempfile::tempdir().unwrap();
    let root = format!("file://{}", tmp.path().display());
    let reg = UfsRegistry::new();
    let mount = Mount::new("/data", &root, MountOptions::new()).unwrap();
    let built = reg.for_mount(&mount).unwrap();
    let uri = format!("{root}/f");
    built.write(&uri, Bytes::from_static(b"abc")).await.unwrap();

    let faulty = Arc::new(FaultyUfs::new(built.clone()));
    reg.insert_override(&format!("{root}/"), faulty.clone());
    let served = reg.for_mount(&mount).unwrap();
    assert_eq!(served.read_range(&uri, 0, 10).await.unwrap(), Bytes::from_static(b"abc"));
    assert_eq!(faulty.read_calls(), 1, "the read went through the override");

    reg.remove_override(&root);
    assert!(Arc::ptr_eq(&reg.for_mount(&mount).unwrap(), &built), "the built instance is back");
}
