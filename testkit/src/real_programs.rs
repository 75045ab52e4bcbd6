//! Real programs the tests run (Debian's promtool, prometheus, ...), and the rule for when one is
//! missing: under `CI=true` the test fails (`.ci/run` installs them), elsewhere it is skipped with
//! the reason printed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Debian's promtool (package `prometheus`).
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Whether every program of `paths` is installed. When one is not: a panic under `CI=true`
/// naming the missing ones and `install` (how to get them), else the reason printed and `false`,
/// for the test to return early.
pub fn real_programs_here(paths: &[&str], install: &str) -> bool {
    let missing: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!("{} missing ({install})", missing.join(", "));
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {reason}"
    );
    eprintln!("skipped: {reason}");
    false
}

/// Whether [`PROMTOOL`] is installed, under the rule of [`real_programs_here`].
pub fn promtool_here() -> bool {
    real_programs_here(&[PROMTOOL], "apt-get install -y prometheus")
}

/// `promtool check metrics` over an exposition `text`: `Ok` when promtool finds nothing, else
/// its findings, one per line (a parse error is one too), or why it could not run.
pub fn promtool_check_metrics(text: &str) -> Result<(), Vec<String>> {
    let cannot = |what: &str, e: std::io::Error| vec![format!("{what} {PROMTOOL}: {e}")];
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| cannot("cannot run", e))?;
    let written = child
        .stdin
        .take()
        .map_or(Ok(()), |mut stdin| stdin.write_all(text.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| cannot("waiting for", e))?;
    let mut findings: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if let Err(e) = written {
        findings.push(format!("writing the exposition to {PROMTOOL}: {e}"));
    }
    if !out.status.success() && findings.is_empty() {
        findings.push(format!("{PROMTOOL} check metrics: {}", out.status));
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_a_skip_outside_ci() {
        if std::env::var("CI").as_deref() == Ok("true") {
            let missing = std::panic::catch_unwind(|| {
                real_programs_here(
                    &["/nonexistent/atlhyper-test-program"],
                    "nothing to install",
                )
            });
            assert!(missing.is_err(), "CI=true must fail on a missing program");
        } else {
            assert!(!real_programs_here(
                &["/nonexistent/atlhyper-test-program"],
                "nothing to install"
            ));
        }
    }

    #[test]
    fn promtool_passes_a_clean_exposition_and_names_what_is_wrong() {
        if !promtool_here() {
            return;
        }
        let clean = "# HELP requests_total Requests served.\n# TYPE requests_total counter\n\
                     requests_total 3\n";
        assert_eq!(promtool_check_metrics(clean), Ok(()));

        // A counter without the _total suffix is a lint finding.
        let linted = "# HELP requests Requests served.\n# TYPE requests counter\nrequests 3\n";
        let findings = promtool_check_metrics(linted).unwrap_err();
        assert!(
            findings.iter().any(|f| f.contains("requests")),
            "{findings:?}"
        );

        // Text that does not parse is a finding, not a pass.
        let broken = "requests{ 3\n";
        assert!(promtool_check_metrics(broken).is_err());
    }
}
