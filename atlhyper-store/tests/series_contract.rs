//! The series contract, run against every engine: each test in `suite` runs once per engine.

mod common;

mod suite {
    use atlhyper_store::{
        Figure, HOUR_MS, SeriesKey, SeriesQuery, SeriesRow, SeriesStore, StoreError, Triple,
        roll_up, roll_up_hours, stored_form,
    };

    const T0: i64 = 1_705_708_800_000; // 2024-01-20T00:00:00Z
    const FIVE_MIN: i64 = 300_000;

    fn key(f: Figure, d: &str) -> SeriesKey {
        SeriesKey::device(f, d)
    }

    fn row(node: &str, start_ms: i64, samples: u32, series: &[(SeriesKey, Triple)]) -> SeriesRow {
        SeriesRow {
            node_name: node.to_owned(),
            start_ms,
            samples,
            series: series.to_vec(),
        }
    }

    fn typical(node: &str, start_ms: i64, cpu: f64) -> SeriesRow {
        row(
            node,
            start_ms,
            60,
            &[
                (
                    key(Figure::CpuUsage, ""),
                    Triple::new(cpu - 1.0, cpu, cpu + 1.0),
                ),
                (
                    key(Figure::MemoryUsed, ""),
                    Triple::new(1_073_741_824.0, 1_610_612_736.0, 2_147_483_648.0),
                ),
                (
                    key(Figure::DiskWriteRate, "vda"),
                    Triple::new(0.0, 1024.0, 4096.0),
                ),
                (
                    key(Figure::DiskWriteRate, "vdb"),
                    Triple::new(10.0, 20.0, 30.0),
                ),
                (key(Figure::NetRxErrors, "eth0"), Triple::one(0.0)),
            ],
        )
    }

    fn q(node: Option<&str>, tier: u8, from: i64, to: i64) -> SeriesQuery {
        SeriesQuery {
            cluster_id: "prod".to_owned(),
            node_name: node.map(str::to_owned),
            tier,
            from_ms: from,
            to_ms: to,
            figure: None,
            device: None,
        }
    }

    pub async fn rows_read_back_exactly(s: &impl SeriesStore) {
        let rows: Vec<SeriesRow> = (0..3)
            .map(|i| typical("a", T0 + i * FIVE_MIN, 10.5 + i as f64))
            .collect();
        assert_eq!(s.append_series("prod", 0, &rows).await.unwrap(), 3);
        let got = s
            .read_series(&q(Some("a"), 0, T0, T0 + 2 * FIVE_MIN))
            .await
            .unwrap();
        assert_eq!(got, rows);
        // Range ends are inclusive; other tiers, clusters and nodes are apart.
        assert_eq!(
            s.read_series(&q(Some("a"), 0, T0 + 1, T0 + FIVE_MIN))
                .await
                .unwrap(),
            rows[1..2]
        );
        assert!(
            s.read_series(&q(Some("a"), 1, T0, T0 + HOUR_MS))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.read_series(&q(Some("b"), 0, T0, T0 + HOUR_MS))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.read_series(&q(Some("a"), 0, T0 + 1, T0))
                .await
                .unwrap()
                .is_empty()
        );
        let mut other = q(Some("a"), 0, T0, T0 + HOUR_MS);
        other.cluster_id = "dev".to_owned();
        assert!(s.read_series(&other).await.unwrap().is_empty());
    }

    pub async fn values_are_kept_at_their_quantum(s: &impl SeriesStore) {
        let r = row(
            "a",
            T0,
            3,
            &[
                (
                    key(Figure::CpuUsage, ""),
                    Triple::new(1.234, 33.333_333, 99.999),
                ),
                (
                    key(Figure::MemoryUsed, ""),
                    Triple::new(1000.0, 1500.0, 2100.0),
                ),
                (key(Figure::NetRxRate, "eth0"), Triple::new(0.4, 2.5, 1e30)),
            ],
        );
        let mut r = r;
        r.series.extend([
            // Rates keep 10 significant bits: 1,000,001 B/s is 976.6 x 1024, kept as 977 x 1024.
            (
                key(Figure::DiskReadRate, "vda"),
                Triple::new(1023.0, 1_000_001.0, 1_000_001.0),
            ),
            (
                key(Figure::DiskReadIops, "vda"),
                Triple::new(10.23, 10.24, 123.456),
            ),
            // Tenths of a degree; below zero kept for temperatures only.
            (key(Figure::Temp, "t"), Triple::new(-3.04, 40.06, 41.0)),
            (key(Figure::Load1, ""), Triple::new(-1.0, 0.5, 1.0)),
        ]);
        r.series.sort_by(|a, b| a.0.cmp(&b.0));
        s.append_series("prod", 0, &[r.clone()]).await.unwrap();
        let got = s.read_series(&q(Some("a"), 0, T0, T0)).await.unwrap();
        let value = |f: Figure| {
            got[0]
                .series
                .iter()
                .find(|(k, _)| k.figure == f)
                .map(|(_, t)| *t)
                .unwrap()
        };
        assert_eq!(value(Figure::CpuUsage), Triple::new(1.23, 33.33, 100.0));
        // Pages of 4 KiB.
        assert_eq!(value(Figure::MemoryUsed), Triple::new(0.0, 0.0, 4096.0));
        assert_eq!(
            value(Figure::NetRxRate),
            Triple::new(0.0, 3.0, 9_007_199_254_740_992.0)
        );
        assert_eq!(
            value(Figure::DiskReadRate),
            Triple::new(1023.0, 1_000_448.0, 1_000_448.0)
        );
        assert_eq!(
            value(Figure::DiskReadIops),
            Triple::new(10.23, 10.24, 123.52)
        );
        assert_eq!(value(Figure::Temp), Triple::new(-3.0, 40.1, 41.0));
        assert_eq!(value(Figure::Load1), Triple::new(0.0, 0.5, 1.0));
        // What every engine reads back is what `stored_form` says.
        for (k, t) in &r.series {
            assert_eq!(value(k.figure), stored_form(k.figure, *t), "{k:?}");
        }
    }

    pub async fn one_series_reads_as_the_whole_rows_say(s: &impl SeriesStore) {
        let mut rows: Vec<SeriesRow> = (0..4)
            .map(|i| typical("a", T0 + i * FIVE_MIN, 3.0 * i as f64))
            .collect();
        for (i, r) in rows.iter_mut().enumerate() {
            for d in ["eth0", "eth1", "eth2"] {
                r.series.push((
                    key(Figure::NetTxRate, d),
                    Triple::new(i as f64, 1e5 * i as f64, 7e6),
                ));
            }
            r.series
                .push((key(Figure::Temp, "Tctl"), Triple::one(40.0 + i as f64)));
            r.series.sort_by(|a, b| a.0.cmp(&b.0));
        }
        s.append_series("prod", 0, &rows).await.unwrap();
        let whole = s
            .read_series(&q(Some("a"), 0, T0, T0 + HOUR_MS))
            .await
            .unwrap();
        assert_eq!(whole.len(), 4);
        for (figure, device) in [
            (Some(Figure::NetTxRate), Some("eth1")),
            (Some(Figure::NetTxRate), None),
            (Some(Figure::CpuUsage), None),
            (Some(Figure::Temp), Some("Tctl")),
            (Some(Figure::NetRxErrors), Some("eth0")),
            (None, Some("vdb")),
        ] {
            let mut query = q(Some("a"), 0, T0, T0 + HOUR_MS);
            query.figure = figure;
            query.device = device.map(str::to_owned);
            let want: Vec<SeriesRow> = whole
                .iter()
                .map(|r| SeriesRow {
                    series: r
                        .series
                        .iter()
                        .filter(|(k, _)| {
                            figure.is_none_or(|f| f == k.figure)
                                && device.is_none_or(|d| d == k.device)
                        })
                        .cloned()
                        .collect(),
                    ..r.clone()
                })
                .filter(|r| !r.series.is_empty())
                .collect();
            assert!(!want.is_empty());
            assert_eq!(
                s.read_series(&query).await.unwrap(),
                want,
                "{figure:?} {device:?}"
            );
        }
    }

    pub async fn tier_zero_keeps_the_first_coarser_tiers_replace(s: &impl SeriesStore) {
        let first = typical("a", T0, 10.0);
        let second = typical("a", T0, 50.0);
        assert_eq!(
            s.append_series("prod", 0, std::slice::from_ref(&first))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.append_series("prod", 0, std::slice::from_ref(&second))
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            s.read_series(&q(Some("a"), 0, T0, T0)).await.unwrap(),
            std::slice::from_ref(&first)
        );
        assert_eq!(s.append_series("prod", 1, &[first]).await.unwrap(), 1);
        assert_eq!(
            s.append_series("prod", 1, std::slice::from_ref(&second))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.read_series(&q(Some("a"), 1, T0, T0)).await.unwrap(),
            [second]
        );
    }

    pub async fn queries_filter_figure_device_and_node(s: &impl SeriesStore) {
        let rows = vec![
            typical("b", T0, 5.0),
            typical("a", T0, 7.0),
            typical("a", T0 + FIVE_MIN, 9.0),
        ];
        s.append_series("prod", 0, &rows).await.unwrap();
        let mut query = q(None, 0, T0, T0 + FIVE_MIN);
        query.figure = Some(Figure::DiskWriteRate);
        let got = s.read_series(&query).await.unwrap();
        let order: Vec<(&str, i64, usize)> = got
            .iter()
            .map(|r| (r.node_name.as_str(), r.start_ms, r.series.len()))
            .collect();
        assert_eq!(order, [("a", T0, 2), ("a", T0 + FIVE_MIN, 2), ("b", T0, 2)]);
        query.device = Some("vdb".to_owned());
        query.node_name = Some("a".to_owned());
        let got = s.read_series(&query).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].series,
            [(
                key(Figure::DiskWriteRate, "vdb"),
                Triple::new(10.0, 20.0, 30.0)
            )]
        );
        assert_eq!(got[0].samples, 60);
        query.figure = Some(Figure::Temp);
        query.device = None;
        assert!(
            s.read_series(&query).await.unwrap().is_empty(),
            "a row without the figure is left out"
        );
    }

    pub async fn keys_nodes_clusters_and_bounds(s: &impl SeriesStore) {
        assert_eq!(s.series_bounds(0).await.unwrap(), None);
        let mut later = typical("a", T0 + FIVE_MIN, 1.0);
        later
            .series
            .push((key(Figure::Temp, "Tctl"), Triple::one(40.0)));
        s.append_series("prod", 0, &[typical("a", T0, 1.0), later])
            .await
            .unwrap();
        s.append_series("dev", 0, &[typical("z", T0 - FIVE_MIN, 1.0)])
            .await
            .unwrap();
        let keys = s.series_keys("prod", "a", 0, T0).await.unwrap();
        assert_eq!(keys.len(), 6);
        assert_eq!(keys[0], key(Figure::CpuUsage, ""));
        assert!(keys.contains(&key(Figure::Temp, "Tctl")));
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(
            s.series_keys("prod", "a", 0, T0 + 2 * FIVE_MIN)
                .await
                .unwrap(),
            []
        );
        assert_eq!(s.series_keys("prod", "nope", 0, 0).await.unwrap(), []);
        assert_eq!(s.series_nodes("prod").await.unwrap(), ["a"]);
        assert_eq!(s.series_clusters().await.unwrap(), ["dev", "prod"]);
        assert_eq!(
            s.series_bounds(0).await.unwrap(),
            Some((T0 - FIVE_MIN, T0 + FIVE_MIN))
        );
        assert_eq!(s.series_bounds(1).await.unwrap(), None);
        assert!(matches!(
            s.series_bounds(2).await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub async fn bad_batches_are_refused_whole(s: &impl SeriesStore) {
        let good = typical("a", T0, 1.0);
        let mut nan = typical("a", T0 + FIVE_MIN, 1.0);
        nan.series[0].1.avg = f64::NAN;
        let mut twice = typical("a", T0 + FIVE_MIN, 1.0);
        twice.series.push(twice.series[0].clone());
        let mut unnamed = typical("", T0, 1.0);
        unnamed.node_name.clear();
        let mut empty = typical("a", T0 + FIVE_MIN, 1.0);
        empty.samples = 0;
        let mut long = typical("a", T0 + FIVE_MIN, 1.0);
        long.series
            .push((key(Figure::Temp, &"x".repeat(300)), Triple::one(1.0)));
        for bad in [nan, twice, unnamed, empty, long] {
            let err = s
                .append_series("prod", 0, &[good.clone(), bad])
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
        assert!(matches!(
            s.append_series("prod", 2, std::slice::from_ref(&good))
                .await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.append_series("", 0, &[good]).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(
            s.read_series(&q(None, 0, i64::MIN, i64::MAX))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.series_nodes("prod").await.unwrap(), Vec::<String>::new());
    }

    pub async fn prune_drops_old_rows_of_one_tier(s: &impl SeriesStore) {
        let rows: Vec<SeriesRow> = (0..4)
            .map(|i| typical("a", T0 + i * FIVE_MIN, 1.0))
            .collect();
        s.append_series("prod", 0, &rows).await.unwrap();
        s.append_series("prod", 1, &rows[..1]).await.unwrap();
        assert_eq!(s.prune_series(0, T0 + 2 * FIVE_MIN).await.unwrap(), 2);
        assert_eq!(s.prune_series(0, T0 + 2 * FIVE_MIN).await.unwrap(), 0);
        let left = s
            .read_series(&q(Some("a"), 0, i64::MIN, i64::MAX))
            .await
            .unwrap();
        assert_eq!(left, rows[2..]);
        assert_eq!(
            s.read_series(&q(Some("a"), 1, i64::MIN, i64::MAX))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(s.prune_series(1, i64::MAX).await.unwrap(), 1);
        assert_eq!(s.prune_series(0, i64::MAX).await.unwrap(), 2);
        assert_eq!(s.series_nodes("prod").await.unwrap(), Vec::<String>::new());
    }

    pub async fn pruned_nodes_written_again_get_their_rows(s: &impl SeriesStore) {
        let first = vec![typical("a", T0, 1.0), typical("b", T0, 1.0)];
        assert_eq!(s.append_series("prod", 0, &first).await.unwrap(), 2);
        assert_eq!(s.prune_series(0, i64::MAX).await.unwrap(), 2);
        assert!(s.series_nodes("prod").await.unwrap().is_empty());
        // A row of "a" twice in one batch: tier 0 keeps the first.
        let again = vec![
            typical("b", T0 + FIVE_MIN, 2.0),
            typical("a", T0 + FIVE_MIN, 2.0),
            typical("a", T0 + FIVE_MIN, 9.0),
        ];
        assert_eq!(s.append_series("prod", 0, &again).await.unwrap(), 2);
        let back = s
            .read_series(&q(None, 0, i64::MIN, i64::MAX))
            .await
            .unwrap();
        assert_eq!(back, [again[1].clone(), again[0].clone()]);
        assert_eq!(s.series_nodes("prod").await.unwrap(), ["a", "b"]);
        // In tier 1 the last of a batch wins.
        let hourly = vec![typical("a", T0, 3.0), typical("a", T0, 4.0)];
        s.append_series("prod", 1, &hourly).await.unwrap();
        let back = s
            .read_series(&q(Some("a"), 1, i64::MIN, i64::MAX))
            .await
            .unwrap();
        assert_eq!(back, [hourly[1].clone()]);
    }

    pub async fn roll_up_merges_hours(s: &(impl SeriesStore + Sized)) {
        let cpu = key(Figure::CpuUsage, "");
        let temp = key(Figure::Temp, "t");
        let rows = vec![
            row("a", T0, 10, &[(cpu.clone(), Triple::new(1.0, 10.0, 20.0))]),
            row(
                "a",
                T0 + FIVE_MIN,
                30,
                &[
                    (cpu.clone(), Triple::new(5.0, 30.0, 90.0)),
                    (temp.clone(), Triple::one(40.0)),
                ],
            ),
            row("a", T0 + HOUR_MS, 5, &[(cpu.clone(), Triple::one(50.0))]),
            row(
                "a",
                T0 + 2 * HOUR_MS,
                5,
                &[(cpu.clone(), Triple::one(70.0))],
            ),
        ];
        s.append_series("prod", 0, &rows).await.unwrap();
        // Hours ending by T0 + 2 h: the first two.
        assert_eq!(roll_up(s, T0 + 2 * HOUR_MS + 1).await.unwrap(), 2);
        let hourly = s
            .read_series(&q(Some("a"), 1, i64::MIN, i64::MAX))
            .await
            .unwrap();
        assert_eq!(hourly.len(), 2);
        assert_eq!(hourly[0].start_ms, T0);
        assert_eq!(hourly[0].samples, 40);
        // (10 * 10 + 30 * 30) / 40 = 25.
        assert_eq!(
            hourly[0].series,
            [
                (cpu.clone(), Triple::new(1.0, 25.0, 90.0)),
                (temp, Triple::one(40.0))
            ]
        );
        assert_eq!(hourly[1].series, [(cpu.clone(), Triple::one(50.0))]);
        // A late row of the newest rolled hour is picked up by the next run.
        s.append_series(
            "prod",
            0,
            &[row(
                "a",
                T0 + HOUR_MS + FIVE_MIN,
                5,
                &[(cpu.clone(), Triple::one(30.0))],
            )],
        )
        .await
        .unwrap();
        assert_eq!(roll_up(s, T0 + 2 * HOUR_MS + 1).await.unwrap(), 1);
        let hourly = s
            .read_series(&q(Some("a"), 1, T0 + HOUR_MS, T0 + HOUR_MS))
            .await
            .unwrap();
        assert_eq!(
            hourly[0].series,
            [(cpu.clone(), Triple::new(30.0, 40.0, 50.0))]
        );
        assert_eq!(hourly[0].samples, 10);

        // A late row of an older hour (a backfilled gap): `roll_up` goes on from the newest
        // hour, `roll_up_hours` rolls the old one again. Hours past tier 1's newest are left.
        s.append_series(
            "prod",
            0,
            &[
                row(
                    "a",
                    T0 + 2 * FIVE_MIN,
                    40,
                    &[(cpu.clone(), Triple::one(0.0))],
                ),
                row("a", T0 + 3 * HOUR_MS, 1, &[(cpu.clone(), Triple::one(1.0))]),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            roll_up_hours(s, "prod", T0 + 2 * FIVE_MIN, T0 + 3 * HOUR_MS)
                .await
                .unwrap(),
            2
        );
        let hourly = s
            .read_series(&q(Some("a"), 1, i64::MIN, i64::MAX))
            .await
            .unwrap();
        let starts: Vec<i64> = hourly.iter().map(|r| r.start_ms).collect();
        assert_eq!(
            starts,
            [T0, T0 + HOUR_MS],
            "no hour past the newest rolled one"
        );
        // (10 * 10 + 30 * 30 + 40 * 0) / 80 = 12.5.
        assert_eq!(hourly[0].samples, 80);
        assert_eq!(hourly[0].series[0], (cpu, Triple::new(0.0, 12.5, 90.0)));
        assert_eq!(roll_up_hours(s, "dev", T0, T0 + HOUR_MS).await.unwrap(), 0);
    }
}

/// The suite on one engine per test.
macro_rules! series_contract {
    ($engine:ident: $($name:ident),* $(,)?) => {
        mod $engine {
            $(
                #[tokio::test]
                async fn $name() {
                    let engine = crate::common::$engine();
                    crate::suite::$name(&engine.store).await;
                }
            )*
        }
    };
}

macro_rules! postgres_series_contract {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(engine) = crate::common::postgres().await else { return };
                    crate::suite::$name(&engine.store).await;
                }
            )*
        }
    };
}

macro_rules! every_engine {
    ($($name:ident),* $(,)?) => {
        series_contract!(memory: $($name),*);
        series_contract!(sqlite: $($name),*);
        postgres_series_contract!($($name),*);
    };
}

every_engine!(
    rows_read_back_exactly,
    values_are_kept_at_their_quantum,
    one_series_reads_as_the_whole_rows_say,
    tier_zero_keeps_the_first_coarser_tiers_replace,
    queries_filter_figure_device_and_node,
    keys_nodes_clusters_and_bounds,
    bad_batches_are_refused_whole,
    prune_drops_old_rows_of_one_tier,
    pruned_nodes_written_again_get_their_rows,
    roll_up_merges_hours,
);
