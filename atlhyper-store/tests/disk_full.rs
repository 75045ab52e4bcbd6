//! Disk full: on a 2 MiB tmpfs, writes fail with `StoreError::Full` (nothing acknowledged is lost,
//! reads keep working), and once space is freed the same store writes again.
//!
//! Needs `mount` (root); without it the test prints why and passes without checking anything.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use atlhyper_store::{HistoryQuery, MetricsStore, SqliteStore, StoreError};
use common::{point, snapshot, t};

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Self(dir.to_path_buf()))
        } else {
            Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn batch(n: i64) -> Vec<atlhyper_model::MetricsDataPoint> {
    (0..200)
        .map(|i| {
            point(
                &format!("node-{i:03}"),
                t(n * 300),
                n as f64 + i as f64 / 7.0,
            )
        })
        .collect()
}

fn count_query(node: &str) -> HistoryQuery {
    HistoryQuery {
        cluster_id: "full".to_owned(),
        node_name: node.to_owned(),
        from: t(0),
        to: t(1 << 40),
        max_points: None,
    }
}

#[tokio::test]
async fn disk_full_is_an_error_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mount = match Tmpfs::mount(dir.path(), "2m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED disk_full_is_an_error_and_the_store_recovers: {why}");
            return;
        }
    };
    let filler = mount.0.join("filler");
    std::fs::write(&filler, vec![0xa5u8; 512 * 1024]).unwrap();
    let store = SqliteStore::open(mount.0.join("store.db")).unwrap();

    // Fill the disk.
    let mut acked = 0i64;
    let err = loop {
        assert!(acked < 10_000, "a 2 MiB disk never filled up");
        match store.append_history("full", &batch(acked)).await {
            Ok(n) => {
                assert_eq!(n, 200);
                acked += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, StoreError::Full(_)),
        "expected Full, got {err:?}"
    );
    assert!(acked > 0, "some batches fit before the disk filled");
    eprintln!("disk full after {acked} batches of 200 points: {err}");

    // Reads work, and everything acknowledged is there; the failed batch left nothing.
    for node in ["node-000", "node-199"] {
        assert_eq!(
            store.history(&count_query(node)).await.unwrap().len() as i64,
            acked
        );
    }
    // Further writes fail cleanly too, including the latest table.
    let err = store
        .upsert_latest("full", &[snapshot("node-000", t(1), 1.0)])
        .await;
    if let Err(e) = &err {
        assert!(matches!(e, StoreError::Full(_)), "{e:?}");
    }

    // Space is back: the same store writes again.
    std::fs::remove_file(&filler).unwrap();
    let mut again = 0;
    for n in acked..acked + 5 {
        store
            .append_history("full", &batch(n))
            .await
            .expect("writes work once space is back");
        again += 1;
    }
    store
        .upsert_latest("full", &[snapshot("node-000", t(2), 2.0)])
        .await
        .unwrap();
    assert_eq!(
        store.history(&count_query("node-042")).await.unwrap().len() as i64,
        acked + again
    );
    store.integrity_check().await.unwrap();
    store.close().unwrap();

    let reopened = SqliteStore::open(mount.0.join("store.db")).unwrap();
    assert_eq!(
        reopened
            .history(&count_query("node-042"))
            .await
            .unwrap()
            .len() as i64,
        acked + again
    );
    reopened.integrity_check().await.unwrap();
    reopened.close().unwrap();
}
