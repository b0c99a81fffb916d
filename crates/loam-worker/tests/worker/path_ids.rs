//! Page reads by file id alone (no `ufsFullPath`), as the `alluxio` 1.0.0 Python client sends them: on a
//! cold worker (found by a scan of the mounts), after the metadata calls that feed the id map, and for
//! an id no file has.

use crate::{PAGE, one_worker};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

async fn page(t: &Cluster, id: &str, n: u64) -> (u16, Vec<u8>) {
    let r = t.get(0, &format!("/v1/file/{id}/page/{n}")).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_worker_finds_files_by_id_alone() {
    let t = one_worker(HOUR).await;
    let data = pattern(2 * PAGE as usize + 5, 9);
    let uris: Vec<String> = (0..20).map(|i| t.write(&format!("cold/d{}/f{i}.bin", i % 3), &data)).collect();
    assert!(t.worker(0).state.path_ids.is_empty(), "nothing known yet");
    // Concurrent cold reads of different files: each finds its file (one scan can serve them all).
    let t = &t;
    let reads = uris.iter().map(|u| async move {
        let id = loam_core::file_id(u);
        (page(t, &id, 0).await, page(t, &id, 2).await)
    });
    for ((first, last), uri) in futures::future::join_all(reads).await.into_iter().zip(&uris) {
        assert_eq!(first, (200, data[..PAGE as usize].to_vec()), "page 0 of {uri}");
        assert_eq!(last, (200, data[2 * PAGE as usize..].to_vec()), "page 2 of {uri}");
    }
    // A file created after the scans is found by the next one.
    let late = t.write("cold/late", b"late");
    assert_eq!(page(t, &loam_core::file_id(&late), 0).await, (200, b"late".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_id_is_404_with_a_message() {
    let t = one_worker(HOUR).await;
    t.write("some/file", b"x");
    let r = t.get(0, &format!("/v1/file/{}/page/0", loam_core::file_id("file:///no/such/file"))).await;
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(body.contains("unknown file id") && body.contains("ufsFullPath"), "{body}");
    assert_eq!(t.get(0, "/v1/file/xyz/page/0").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_calls_teach_the_worker_ids() {
    let t = one_worker(HOUR).await;
    let (a, b, c) = (t.write("m/a", b"a"), t.write("m/dir/b", b"b"), t.write("m/c", b"c"));
    let ids = &t.worker(0).state.path_ids;
    assert_eq!(t.get(0, &format!("/v1/info?path={a}")).await.status(), 200);
    assert_eq!(ids.get(&loam_core::file_id(&a)).as_deref(), Some(a.as_str()), "from /v1/info");
    let listing_dir = b.rsplit_once('/').unwrap().0.to_string();
    assert_eq!(t.get(0, &format!("/v1/files?path={listing_dir}")).await.status(), 200);
    assert_eq!(ids.get(&loam_core::file_id(&b)).as_deref(), Some(b.as_str()), "from /v1/files");
    for _ in 0..100 {
        if t.get(0, &format!("/v1/node?path={c}")).await.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ids.get(&loam_core::file_id(&c)).as_deref(), Some(c.as_str()), "from /v1/node");
    // A client's own spelling of a URI (a doubled slash) is remembered under its id too.
    let doubled = a.replacen("/m/", "//m/", 1);
    assert_eq!(t.get(0, &format!("/v1/info?path={doubled}")).await.status(), 200);
    assert_eq!(page(&t, &loam_core::file_id(&doubled), 0).await, (200, b"a".to_vec()));
}
