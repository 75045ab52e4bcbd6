//! TLS to PostgreSQL (rustls) against a throwaway server started with `ssl=on` and a certificate
//! from a test CA; and the history layout chosen when TimescaleDB is absent.

use std::time::Duration;

use atlhyper_store::{HistoryLayout, MetricsStore, PgOptions, PgStore, StoreError};
use atlhyper_testkit::TestPostgres;
use atlhyper_testkit::tls::TestCa;

/// Whether the store's connections are encrypted, asked of the server.
async fn encrypted(store: &PgStore) -> bool {
    store.connection_encrypted().await.expect("ask pg_stat_ssl")
}

fn options(ca: Option<std::path::PathBuf>) -> PgOptions {
    PgOptions {
        connect_timeout: Duration::from_secs(10),
        ca_file: ca,
        ..PgOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_connects_a_wrong_ca_is_refused_by_name_and_plain_still_works() {
    let ca = TestCa::new("atlhyper test database CA");
    // The certificate names localhost only: 127.0.0.1 reaches the same server under a name
    // the certificate does not list.
    let Some(server) = TestPostgres::start_tls(&ca, &["localhost"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "db-ca");
    let url = server.fresh_database();
    let by_name = url.replace("@127.0.0.1:", "@localhost:");
    let database = by_name.rsplit('@').next().unwrap().to_owned();

    // verify-full with the right CA: the chain and the name check out.
    let verified = format!("{by_name}?sslmode=verify-full");
    let store = PgStore::connect_with(&verified, &options(Some(ca_file.clone())))
        .await
        .unwrap();
    assert!(encrypted(&store).await, "verify-full connects over TLS");
    let node = atlhyper_testkit::node("n1", chrono::Utc::now(), 1.0);
    store
        .upsert_latest("tls", std::slice::from_ref(&node))
        .await
        .unwrap();
    assert_eq!(store.get_latest("tls", "n1").await.unwrap(), Some(node));
    // Its own sessions (LISTEN, the leader lock) too.
    let session = store.session().await.unwrap();
    session.ping().await.unwrap();

    // Another CA: refused with an error naming the database and the certificate problem.
    let other = TestCa::new("some other CA");
    let other_file = other.write(dir.path(), "other-ca");
    let err = PgStore::connect_with(&verified, &options(Some(other_file)))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Backend(_)), "{text}");
    assert!(text.contains(&database), "names {database}: {text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    // By address: verify-full refuses (the certificate does not name 127.0.0.1), verify-ca
    // (the chain only) accepts, here with the CA as sslrootcert= in the URL.
    let err = PgStore::connect_with(
        &format!("{url}?sslmode=verify-full"),
        &options(Some(ca_file.clone())),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    let in_url = format!(
        "{url}?sslmode=verify-ca&sslrootcert={}",
        ca_file.display().to_string().replace('/', "%2F")
    );
    let store = PgStore::connect_with(&in_url, &options(None))
        .await
        .unwrap();
    assert!(encrypted(&store).await);

    // Plain: sslmode=disable never encrypts; without sslmode (prefer) TLS is used when offered.
    let plain = PgStore::connect_with(&format!("{url}?sslmode=disable"), &options(None))
        .await
        .unwrap();
    assert!(!encrypted(&plain).await);
    let default = PgStore::connect_with(&url, &options(None)).await.unwrap();
    assert!(encrypted(&default).await, "prefer takes the TLS offered");

    // verify-full without any CA: a configuration error, before any connection.
    let err = PgStore::connect_with(&verified, &options(None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn without_tls_on_the_server_prefer_and_disable_connect_and_require_is_refused() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    if server.port().is_none() {
        eprintln!("skipped: a server of ATLHYPER_TEST_PG_URL may have TLS on");
        return;
    }
    let url = server.fresh_database();
    for plain in [url.clone(), format!("{url}?sslmode=disable")] {
        let store = PgStore::connect_with(&plain, &options(None)).await.unwrap();
        assert!(!encrypted(&store).await, "{plain}");
    }
    let err = PgStore::connect_with(&format!("{url}?sslmode=require"), &options(None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
}

#[tokio::test]
async fn without_timescaledb_history_is_natively_partitioned() {
    let Some(server) = TestPostgres::shared() else {
        return;
    };
    let url = server.fresh_database();
    let store = PgStore::connect(&url).await.unwrap();
    let installed = store.timescaledb_installed().await.unwrap();
    let layout = store.history_layout().await.unwrap();
    if installed {
        // A server with the extension in template1: the hypertable path was taken.
        assert_eq!(layout, HistoryLayout::Hypertable);
        eprintln!("timescaledb is installed here: history is a hypertable");
    } else {
        assert_eq!(layout, HistoryLayout::NativePartitions);
        let p = atlhyper_testkit::node("n1", chrono::Utc::now(), 1.0);
        let point = atlhyper_model::MetricsDataPoint::from_snapshot(&p);
        store.append_history("c", &[point]).await.unwrap();
        assert_eq!(store.history_partitions().await.unwrap().len(), 1);
    }
}
