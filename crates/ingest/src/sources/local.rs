//! Local sources: a file, every data file of a directory (not recursive, sorted by name, hidden
//! files and other extensions left out), or a glob pattern (`exports/*.csv.gz`, quoted so the
//! shell leaves it to us).

use std::path::{Path, PathBuf};

use super::{Source, is_data_file};
use crate::error::{Error, Result};

/// The sources one local argument names.
pub fn expand(argument: &str) -> Result<Vec<Source>> {
    let path = Path::new(argument);
    if path.is_file() {
        return Ok(vec![Source::local(path)]);
    }
    if path.is_dir() {
        return directory(path);
    }
    if argument.contains(['*', '?', '[']) {
        return glob(argument);
    }
    Err(Error::Usage(format!(
        "{argument} is not a file, a directory, a glob pattern or an s3:// URL"
    )))
}

fn directory(path: &Path) -> Result<Vec<Source>> {
    let read_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let name = entry.file_name();
        let is_file = entry.file_type().map_err(read_error)?.is_file() || entry.path().is_file();
        if is_file && is_data_file(&name.to_string_lossy()) {
            files.push(entry.path());
        }
    }
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "directory {} holds no data files (*.csv, *.tsv, *.txt, plain or .gz/.zst)",
            path.display()
        )));
    }
    files.sort();
    Ok(files.into_iter().map(Source::local).collect())
}

fn glob(pattern: &str) -> Result<Vec<Source>> {
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let paths = glob::glob_with(pattern, options)
        .map_err(|error| Error::Usage(format!("glob pattern `{pattern}`: {error}")))?;
    let mut files = Vec::new();
    for path in paths {
        let path = path.map_err(|error| Error::Read {
            path: error.path().to_path_buf(),
            source: std::io::Error::other(error.to_string()),
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::Usage(format!("no file matches `{pattern}`")));
    }
    files.sort();
    Ok(files.into_iter().map(Source::local).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_globs_list_data_files_in_name_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["b.csv", "a.csv.gz", "c.tsv", "notes.md", ".hidden.csv"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        std::fs::create_dir(dir.path().join("sub.csv")).expect("mkdir");
        let names =
            |sources: Vec<Source>| -> Vec<String> { sources.iter().map(Source::stem).collect() };
        let listed = expand(dir.path().to_str().expect("utf-8")).expect("lists");
        assert_eq!(names(listed), ["a", "b", "c"]);
        let pattern = format!("{}/*.csv*", dir.path().display());
        assert_eq!(names(expand(&pattern).expect("matches")), ["a", "b"]);
        let none = format!("{}/*.parquet", dir.path().display());
        assert!(
            expand(&none)
                .expect_err("no match")
                .to_string()
                .contains("no file matches")
        );
        let missing = dir.path().join("missing.csv");
        assert!(expand(missing.to_str().expect("utf-8")).is_err());
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(expand(empty.path().to_str().expect("utf-8")).is_err());
    }
}
