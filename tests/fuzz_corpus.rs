//! Replays the committed fuzz corpus through the very checks the cargo-fuzz targets run
//! (`fuzz/src/lib.rs`), so each input stays a regression test on every `cargo test --workspace`,
//! on the stable toolchain and without libFuzzer. The corpus is the seeds and every input that
//! ever crashed (`fuzz/corpus/<target>/seed-*`, `crash-*`, plain files) plus what the fuzzer kept
//! after `cargo fuzz cmin` (`fuzz/corpus.tar.gz`, `<target>/<sha1>` entries, read in place).

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz"))
}

fn file_names(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// The committed files of one target: seeds and crash inputs (a fuzzer run on this checkout
/// may have unpacked the archive beside them; those copies are ignored by git and here).
fn committed_files(target: &str) -> Vec<PathBuf> {
    file_names(&fuzz_dir().join("corpus").join(target))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-") || n.starts_with("crash-"))
        })
        .collect()
}

/// Every input of the archive, by target: (entry path, bytes).
fn archived() -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let path = fuzz_dir().join("corpus.tar.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut by_target: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for entry in archive.entries().expect("corpus.tar.gz is a tar archive") {
        let mut entry = entry.expect("corpus.tar.gz entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().expect("entry path").display().to_string();
        let target = name
            .split('/')
            .next()
            .filter(|t| !t.is_empty() && name.len() > t.len() + 1)
            .unwrap_or_else(|| panic!("corpus.tar.gz entry {name:?} is not <target>/<input>"))
            .to_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry bytes");
        by_target.entry(target).or_default().push((name, data));
    }
    by_target
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
    let archive = archived();
    let unknown: Vec<&String> = archive.keys().filter(|t| !checked.contains(*t)).collect();
    assert!(
        unknown.is_empty(),
        "archive targets without a check: {unknown:?}"
    );
    for name in &checked {
        assert!(
            !committed_files(name).is_empty(),
            "fuzz/corpus/{name} has no committed seed"
        );
        assert!(
            archive.get(name).is_some_and(|v| !v.is_empty()),
            "corpus.tar.gz has no inputs for {name}"
        );
    }
}

#[test]
fn committed_corpus_passes_every_check() {
    let mut archive = archived();
    let mut failures = Vec::new();
    let (mut files, mut archived_inputs) = (0, 0);
    for (name, check) in checks::TARGETS {
        // A failed check is a panic (that is how libFuzzer sees it); collect them all.
        let mut run = |label: String, data: &[u8]| {
            if catch_unwind(AssertUnwindSafe(|| check(data))).is_err() {
                failures.push(label);
            }
        };
        for path in committed_files(name) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files += 1;
            run(path.display().to_string(), &data);
        }
        for (entry, data) in archive.remove(*name).unwrap_or_default() {
            archived_inputs += 1;
            run(format!("corpus.tar.gz:{entry}"), &data);
        }
    }
    eprintln!("{files} seed and crash files and {archived_inputs} archived inputs replayed");
    assert!(files > 0 && archived_inputs > 0);
    assert!(
        failures.is_empty(),
        "inputs failing their check: {failures:#?}"
    );
}
