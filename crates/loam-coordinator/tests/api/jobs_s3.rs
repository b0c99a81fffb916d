//! A load job over an `s3://` mount on the S3 test server: a directory tree put through the UFS client is
//! loaded onto three workers, then every file is read back through its worker with no UFS read.

use crate::{PAGE, jobs};
use bytes::Bytes;
use loam_testsupport::S3TestServer;
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use loam_ufs::{Mount, OpendalUfs, Ufs};

async fn s3_server() -> S3TestServer {
    tokio::task::spawn_blocking(|| {
        let s3 = S3TestServer::start();
        s3.create_bucket("loam-jobs");
        s3
    })
    .await
    .expect("start the S3 test server")
}

#[tokio::test]
async fn an_s3_tree_loads_onto_three_workers_and_reads_back_from_the_cache() {
    let s3 = s3_server().await;
    let options = s3.mount_options();
    let root = "s3://loam-jobs/tree";
    // Objects go in through a client of their own, so the cluster's counters start at zero.
    let mount = Mount::new("/data", root, options.clone()).unwrap();
    let writer = OpendalUfs::new(&mount.ufs_uri(), &mount.options).unwrap();
    let base = mount.ufs_uri().as_string().trim_end_matches('/').to_string();
    let mut files = Vec::new();
    for i in 0..15usize {
        let data = pattern((i % 4) * PAGE as usize + 37 * i + 1, i as u8);
        let uri = format!("{base}/d{}/e{}/f{i:02}", i % 3, i % 2);
        writer.write(&uri, Bytes::from(data.clone())).await.unwrap();
        files.push((uri, data));
    }
    let c = Cluster::start(Options { ufs: Some((root.to_string(), options)), ..jobs(3) }).await;
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"sync": true}}"#)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!((v["scannedFiles"].as_u64(), v["totalBytes"].as_u64()), (Some(15), Some(total)), "{v}");
    assert_eq!(v["loadedBytes"], total);
    c.faulty().reset_counters();
    // Each file is on its owner under the three-worker ring. (With random worker ids, 15 files may all miss
    // one worker, so "every worker got some" would fail now and then; the owner is the rule itself.)
    let ring = c.worker(0).state.members.ring();
    assert_eq!(ring.len(), 3);
    for (uri, data) in &files {
        let holders = c.holders(uri);
        assert_eq!(holders.len(), 1, "{uri} on {holders:?}");
        let (_, owner) = ring.primary(uri).unwrap();
        assert_eq!(c.worker(holders[0]).id, owner.id, "{uri} is on its ring owner");
        assert_eq!(&c.range(holders[0], uri, 0, data.len() as u64).await, data, "{uri}");
    }
    assert_eq!(c.faulty().read_calls(), 0, "every read was served from the cache");
}
