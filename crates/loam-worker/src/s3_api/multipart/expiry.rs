//! Abandoned multipart uploads are removed `--s3-multipart-expiry` after they were created (S3's
//! lifecycle rule `AbortIncompleteMultipartUpload`, always on); so are completed uploads' records,
//! which answer a repeated Complete until then. A scan runs every quarter of the expiry (at least every
//! second, at most every ten minutes), skips uploads in use (a Complete holding the lock), and stops
//! with the worker's shutdown signal.

use super::store::UploadStore;
use loam_core::time::now_millis;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The time between scans for an expiry of `expiry`.
pub fn scan_interval(expiry: Duration) -> Duration {
    (expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// Removes what expired now; returns how many uploads went.
pub async fn expire_once(uploads: &UploadStore, expiry: Duration) -> usize {
    let cutoff = now_millis().saturating_sub(i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX));
    match uploads.expire(cutoff).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!("removed {n} expired S3 multipart upload(s)");
            }
            n
        }
        Err(e) => {
            tracing::warn!("expiring S3 multipart uploads failed: {e}");
            0
        }
    }
}

/// Runs the scans until `shutdown` turns true.
pub fn spawn(uploads: Arc<UploadStore>, expiry: Duration, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(scan_interval(expiry));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => { expire_once(&uploads, expiry).await; }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_run_a_quarter_of_the_expiry_within_bounds() {
        assert_eq!(scan_interval(Duration::from_secs(24 * 3600)), Duration::from_secs(600));
        assert_eq!(scan_interval(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(scan_interval(Duration::from_millis(10)), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn old_uploads_go_new_ones_and_busy_ones_stay_and_the_loop_stops() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(UploadStore::new(dir.path().join("mp")));
        let old = store.create("b", "old", Default::default(), None, None).await.unwrap();
        let busy = store.create("b", "busy", Default::default(), None, None).await.unwrap();
        let manifest = dir.path().join("mp").join(&old).join("manifest.json");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        let created = m["created_ms"].as_i64().unwrap();
        let aged = text.replace(&created.to_string(), &(created - 3_600_000).to_string());
        std::fs::write(&manifest, &aged).unwrap();
        std::fs::write(dir.path().join("mp").join(&busy).join("manifest.json"), aged.replace("\"old\"", "\"busy\""))
            .unwrap();
        let fresh = store.create("b", "fresh", Default::default(), None, None).await.unwrap();
        let lock = store.lock(&busy).await;
        assert_eq!(expire_once(&store, Duration::from_secs(60)).await, 1);
        assert!(store.manifest(&old).await.is_err());
        assert!(store.manifest(&fresh).await.is_ok());
        assert!(store.manifest(&busy).await.is_ok(), "in use: skipped");
        drop(lock);
        let (tx, rx) = watch::channel(false);
        let task = spawn(store.clone(), Duration::from_secs(60), rx);
        // The first tick is immediate; the busy upload goes once it is free.
        while store.manifest(&busy).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send(true).unwrap();
        task.await.unwrap();
        assert!(store.manifest(&fresh).await.is_ok());
    }
}
