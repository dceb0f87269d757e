//! The release under test: `scripts/dist.sh` packs the binaries `make test` built into the
//! tarball the AWS tests install, once for all test processes of a run.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The checkout this test binary was built from.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Runs `program` with `args`; fails with its output unless it exits 0. Returns stdout.
pub fn run_checked(program: &Path, args: &[&str], hint: &str) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {} ({hint})", program.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "{} {} failed ({}):\n{stdout}{}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// Adds every file below `path` (sorted, names and contents) to `hasher`.
fn hash_tree(path: &Path, hasher: &mut DefaultHasher) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for entry in entries {
            hash_tree(&entry, hasher)?;
        }
    } else {
        path.hash(hasher);
        std::fs::read(path)?.hash(hasher);
    }
    Ok(())
}

/// A key of everything the tarball is made of: the binaries (size and time) and the packed
/// files of the checkout (contents).
fn inputs_key(bin: &Path) -> std::io::Result<u64> {
    let mut hasher = DefaultHasher::new();
    for binary in [
        "stockstream-ingest",
        "stockstream-s3-sink",
        "stockstream-glue-crawler",
        "stockstream-query-api",
    ] {
        let metadata = std::fs::metadata(bin.join(binary))?;
        metadata.len().hash(&mut hasher);
        metadata.modified()?.hash(&mut hasher);
    }
    let root = repo_root();
    for packed in [
        "deploy",
        "docs",
        "infra",
        "README.md",
        "Cargo.toml",
        "scripts/dist.sh",
    ] {
        hash_tree(&root.join(packed), &mut hasher)?;
    }
    Ok(hasher.finish())
}

fn pack(bin: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .context("the test binary has no profile directory")?;
    let key = inputs_key(Path::new(bin)).context("reading the release's inputs")?;
    let out = profile.join(format!("stockstream-test-dist-{key:016x}"));
    if let Some(tarball) = std::fs::read_dir(&out).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|entry| entry.path())
            .find(|path| path.to_string_lossy().ends_with(".tar.gz"))
    }) {
        return Ok(tarball);
    }
    // Tarballs of other inputs (earlier runs): test binaries run one after another.
    for entry in std::fs::read_dir(profile)?.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("stockstream-test-dist-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let printed = run_checked(
        &repo_root().join("scripts/dist.sh"),
        &["--bin-dir", bin, "--out", &out.to_string_lossy(), "--fast"],
        "scripts/dist.sh packs the release",
    )?;
    let tarball = PathBuf::from(printed.trim());
    if !tarball.is_file() {
        bail!("scripts/dist.sh printed {printed:?}, not a tarball");
    }
    Ok(tarball)
}

/// The release tarball `scripts/dist.sh` packs from the binaries under test
/// (`STOCKSTREAM_BIN`, the debug build `make test` just made; `--fast`: stripped, light
/// compression), next to the test binaries (`target/debug/`), packed again only when a binary
/// or a packed file changed.
pub fn release_tarball() -> Result<PathBuf> {
    static TARBALL: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    TARBALL
        .get_or_init(|| {
            let bin = std::env::var("STOCKSTREAM_BIN").map_err(|_| {
                "STOCKSTREAM_BIN is not set: run the tests with `make test` (it points it at the built binaries)".to_string()
            })?;
            pack(&bin).map_err(|error| format!("{error:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}
