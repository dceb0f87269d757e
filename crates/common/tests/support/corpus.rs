//! What the fuzz tests of every crate share: the proptest configuration and the checked-in corpus
//! of nasty inputs under `tests/data/fuzz-corpus/<target>/` (see the README there).
//!
//! Included by path from the fuzz tests of `stockstream-common`, `-ingest` and `-query-api`, so
//! the corpus format is read in one place.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use proptest::test_runner::Config as ProptestConfig;

/// Cases per property: `PROPTEST_CASES` when set (`make fuzz` sets 20000), else `default_cases`,
/// small enough that `cargo test` stays fast. Failures are not persisted to files: a failing
/// input found by a long run belongs in the corpus, with its verdict.
pub(crate) fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// What the target must do with a corpus entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The input is valid: accepted.
    Accept,
    /// The input is refused with a non-empty reason.
    Reject,
}

/// One file of the corpus: its verdict comes from its name (`accept-…` or `reject-…`).
#[derive(Debug)]
pub(crate) struct Entry {
    /// The file name.
    pub(crate) name: String,
    /// The expected verdict.
    pub(crate) verdict: Verdict,
    /// The file's bytes, exactly.
    pub(crate) input: Vec<u8>,
}

/// The corpus directory of `target`.
fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/fuzz-corpus")
        .join(target)
}

/// Every entry of `target`'s corpus, sorted by name. A file whose name carries no verdict fails
/// the test rather than being skipped.
fn corpus(target: &str) -> Vec<Entry> {
    let dir = corpus_dir(target);
    let listing =
        std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("corpus {}: {error}", dir.display()));
    let mut entries: Vec<Entry> = listing
        .map(|item| {
            let path = item.expect("directory entry").path();
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let verdict = if name.starts_with("accept-") {
                Verdict::Accept
            } else if name.starts_with("reject-") {
                Verdict::Reject
            } else {
                panic!(
                    "corpus entry {} must be named accept-… or reject-…",
                    path.display()
                )
            };
            let input =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            Entry {
                name,
                verdict,
                input,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!entries.is_empty(), "corpus {} is empty", dir.display());
    entries
}

/// Runs `check` on every entry of `target`'s corpus: `Ok(())` means accepted, `Err(reason)`
/// refused. Each entry must not panic, must get its recorded verdict, and a refusal must carry a
/// non-empty reason; `check` may assert more (round trips) by panicking. Every failing entry is
/// listed, not only the first.
pub(crate) fn run_corpus(target: &str, check: impl Fn(&[u8]) -> Result<(), String>) {
    let entries = corpus(target);
    let mut failures = Vec::new();
    for entry in &entries {
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&entry.input)));
        let failure = match (outcome, entry.verdict) {
            (Err(panic), _) => Some(format!("panicked: {}", panic_message(panic.as_ref()))),
            (Ok(Ok(())), Verdict::Accept) => None,
            (Ok(Err(reason)), Verdict::Reject) if !reason.trim().is_empty() => None,
            (Ok(Err(_)), Verdict::Reject) => Some("rejected without a reason".to_string()),
            (Ok(Ok(())), Verdict::Reject) => Some("accepted, expected a rejection".to_string()),
            (Ok(Err(reason)), Verdict::Accept) => Some(format!("rejected: {reason}")),
        };
        if let Some(failure) = failure {
            failures.push(format!("  {}: {failure}", entry.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} entries of corpus `{target}` failed:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_else(|| "(no message)".to_string())
}
