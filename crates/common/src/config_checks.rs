//! The configuration conformance check every service passes (called from each crate's tests with
//! its own loader and keys): the defaults load, and a misspelled key or a wrong value is refused
//! with an error that names the key, so an operator finds the line to fix.

use std::path::Path;

/// Loads the defaults, then `wrong_key` (a TOML document with a misspelled key) and `wrong_value`
/// (a valid key with a value it cannot take); each must be refused with an error containing every
/// string of its `must_name` list. Panics on a failed check.
pub fn check_config_key_errors<C, E: std::fmt::Display>(
    file_name: &str,
    load: impl Fn(Option<&Path>) -> std::result::Result<C, E>,
    wrong_key: (&str, &[&str]),
    wrong_value: (&str, &[&str]),
) {
    if let Err(error) = load(None) {
        panic!("the defaults do not load: {error}");
    }
    let directory = std::env::temp_dir().join(format!(
        "stockstream-keys-{}-{}",
        std::process::id(),
        file_name.replace('.', "-")
    ));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let path = directory.join(file_name);
    for (case, (toml, must_name)) in [
        ("a misspelled key", wrong_key),
        ("a wrong value", wrong_value),
    ] {
        std::fs::write(&path, toml).expect("write the configuration");
        let error = match load(Some(&path)) {
            Ok(_) => panic!("{case} was accepted: {toml}"),
            Err(error) => error.to_string(),
        };
        for named in must_name {
            assert!(
                error.contains(named),
                "{case}: `{named}` is not in: {error}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&directory);
}
