//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`: seeds, everything the fuzzer found
//! worth keeping after `cargo fuzz cmin`, and any input that ever crashed) through the very checks
//! the cargo-fuzz targets run (`fuzz/src/lib.rs`), so each input stays a regression test on every
//! `cargo test --workspace`, on the stable toolchain and without libFuzzer.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

fn fuzz_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz"))
}

fn file_names(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_fuzz_target_has_a_check_and_a_corpus() {
    let binaries: BTreeSet<String> = file_names(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    let checked: BTreeSet<String> = checks::TARGETS
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    assert_eq!(binaries, checked, "fuzz_targets/ and TARGETS differ");
    for name in &checked {
        let corpus = fuzz_dir().join("corpus").join(name);
        assert!(
            !file_names(&corpus).is_empty(),
            "{} has no committed inputs",
            corpus.display()
        );
    }
}

#[test]
fn committed_corpus_passes_every_check() {
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, check) in checks::TARGETS {
        for path in file_names(&fuzz_dir().join("corpus").join(name)) {
            let data = match std::fs::read(&path) {
                Ok(data) => data,
                // A fuzzer running on this checkout replaces inputs as it minimises them.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", path.display()),
            };
            total += 1;
            // A failed check is a panic (that is how libFuzzer sees it); collect them all.
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(path.display().to_string());
            }
        }
    }
    eprintln!("{total} corpus inputs replayed");
    assert!(total > 0);
    assert!(
        failures.is_empty(),
        "inputs failing their check: {failures:#?}"
    );
}
