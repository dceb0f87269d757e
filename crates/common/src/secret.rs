//! Secrets in configuration: which settings hold them, how they are kept out of `Debug` output,
//! logs and error messages, and the refusal of configuration files that every user can read.
//!
//! Secrets are the librdkafka options that carry credentials (see [`is_secret_kafka_option`]) and
//! the query API's bearer tokens (`query.auth_tokens`). AWS credentials never appear in
//! stockstream's configuration: they come from the standard AWS chain. Redaction happens in the
//! types, not at call sites: [`Secret`] and [`crate::config::KafkaOptions`] print `***` in place of
//! a value, and [`crate::kafka::KafkaClientConfig`] does the same for librdkafka client settings
//! and the errors librdkafka reports about them.

use std::fmt;
use std::path::Path;

use crate::{Error, Result};

/// What is printed in place of a secret value.
pub const REDACTED: &str = "***";

/// Settings outside `kafka.options` whose value is a secret, as `section.key`.
pub const SECRET_SETTINGS: [&str; 1] = ["query.auth_tokens"];

/// librdkafka options holding a secret whose name does not say `password` or `secret`.
const SECRET_KAFKA_OPTIONS: [&str; 3] =
    ["ssl.key.pem", "sasl.jaas.config", "sasl.oauthbearer.config"];

/// Whether the librdkafka option `key` (a `kafka.options` key) carries a credential:
/// `sasl.password`, `sasl.oauthbearer.client.secret`, `ssl.key.password`, `ssl.keystore.password`,
/// `ssl.key.pem`, `sasl.jaas.config`, `sasl.oauthbearer.config`, and any key containing
/// `password`, `passwd` or `secret` (so a common misspelling stays secret too).
pub fn is_secret_kafka_option(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    ["password", "passwd", "secret"]
        .iter()
        .any(|word| key.contains(word))
        || SECRET_KAFKA_OPTIONS.contains(&key.as_str())
}

/// A secret string (e.g. a bearer token); its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's value, for use (comparison, handing to a client), never for display.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Secret({REDACTED})")
    }
}

/// A setting's value as `Debug` shows it: `***` when `secret`, else the value quoted.
pub(crate) struct ShownValue<'a> {
    pub(crate) value: &'a str,
    pub(crate) secret: bool,
}

impl fmt::Debug for ShownValue<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            formatter.write_str(REDACTED)
        } else {
            fmt::Debug::fmt(self.value, formatter)
        }
    }
}

/// The secret settings set to a non-empty value in a parsed configuration document, named by
/// their key (`kafka.options."sasl.password"`, `query.auth_tokens`), never by their value.
pub fn secret_settings_in(document: &config::Map<String, config::Value>) -> Vec<String> {
    let mut found = Vec::new();
    let section = |name: &str| {
        document
            .get(name)
            .and_then(|value| value.clone().into_table().ok())
    };
    if let Some(options) = section("kafka")
        .and_then(|kafka| kafka.get("options").cloned())
        .and_then(|options| options.into_table().ok())
    {
        for (key, value) in options {
            if is_secret_kafka_option(&key) && is_set(&value) {
                found.push(format!("kafka.options.\"{key}\""));
            }
        }
    }
    for setting in SECRET_SETTINGS {
        let Some((section_name, key)) = setting.split_once('.') else {
            continue;
        };
        if section(section_name)
            .and_then(|table| table.get(key).cloned())
            .is_some_and(|value| is_set(&value))
        {
            found.push(setting.to_string());
        }
    }
    found.sort();
    found
}

/// Whether a configuration value holds anything: a non-empty string or a list with one.
fn is_set(value: &config::Value) -> bool {
    match value.clone().into_array() {
        Ok(items) => items.iter().any(is_set),
        Err(_) => value
            .clone()
            .into_string()
            .is_ok_and(|text| !text.trim().is_empty()),
    }
}

/// Refuses the configuration file `path` when it holds the secret settings `secrets` (see
/// [`secret_settings_in`]) and every user may read it (mode `o+r`). A file without secrets is
/// accepted whatever its mode.
pub fn refuse_world_readable(path: &Path, secrets: &[String]) -> Result<()> {
    if secrets.is_empty() || !is_world_readable(path)? {
        return Ok(());
    }
    Err(Error::InsecureConfigFile {
        path: path.to_path_buf(),
        keys: secrets.join(", "),
    })
}

#[cfg(unix)]
fn is_world_readable(path: &Path) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(metadata.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn is_world_readable(_path: &Path) -> Result<bool> {
    Ok(false)
}

/// The secrets conformance check every service's configuration passes (called from each crate's
/// tests with its own loader): Kafka credentials set in a file are usable, named in `Debug`
/// output but never shown, and a world-readable file holding them is refused with its name, the
/// keys and the fix, while one without secrets loads at any mode. Panics on a failed check.
pub fn check_config_secrets<C: std::fmt::Debug, E: std::fmt::Display>(
    file_name: &str,
    load: impl Fn(&Path) -> std::result::Result<C, E>,
) {
    use std::os::unix::fs::PermissionsExt;
    let directory = std::env::temp_dir().join(format!(
        "stockstream-secrets-{}-{}",
        std::process::id(),
        file_name.replace('.', "-")
    ));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let path = directory.join(file_name);
    let write = |toml: &str, mode: u32| {
        std::fs::write(&path, toml).expect("write the configuration");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let secrets = "[kafka.options]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.password\" = \"hunter2-kafka\"\n\"ssl.key.password\" = \"hunter2-key\"\n";
    write(secrets, 0o600);
    let config = load(&path).unwrap_or_else(|error| panic!("a private file loads: {error}"));
    let shown = format!("{config:?} {config:#?}");
    assert!(!shown.contains("hunter2"), "a secret is shown: {shown}");
    for key in ["\"sasl.password\": ***", "\"ssl.key.password\": ***"] {
        assert!(shown.contains(key), "{key} is not named: {shown}");
    }
    write(secrets, 0o644);
    let error = match load(&path) {
        Ok(_) => panic!("a world-readable file with secrets was loaded"),
        Err(error) => error.to_string(),
    };
    for named in [
        file_name,
        "kafka.options.\"sasl.password\"",
        "kafka.options.\"ssl.key.password\"",
        "chmod 600",
    ] {
        assert!(error.contains(named), "{named} is not in: {error}");
    }
    assert!(
        !error.contains("hunter2"),
        "a secret is in the error: {error}"
    );
    write("[kafka.options]\n\"security.protocol\" = \"SSL\"\n", 0o644);
    if let Err(error) = load(&path) {
        panic!("a world-readable file without secrets is refused: {error}");
    }
    let _ = std::fs::remove_dir_all(&directory);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_options_are_recognised() {
        for key in [
            "sasl.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.truststore.password",
            "ssl.key.pem",
            "sasl.jaas.config",
            "sasl.oauthbearer.config",
            "SASL.Password",
            "my.client.secret.value",
            "ssl.key.passwd",
        ] {
            assert!(is_secret_kafka_option(key), "{key}");
        }
        for key in [
            "security.protocol",
            "sasl.mechanism",
            "sasl.username",
            "ssl.key.location",
            "ssl.certificate.pem",
            "bootstrap.servers",
        ] {
            assert!(!is_secret_kafka_option(key), "{key}");
        }
    }

    #[test]
    fn a_secret_never_shows_its_value() {
        let secret = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", vec![secret.clone()]), "[Secret(***)]");
        assert_eq!(secret.expose(), "hunter2-hunter2-hunter2");
    }

    fn document(toml: &str) -> config::Map<String, config::Value> {
        config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .expect("parses")
            .cache
            .into_table()
            .expect("a table")
    }

    #[test]
    fn secret_settings_are_found_by_key() {
        let found = secret_settings_in(&document(
            "[kafka.options]\n\"sasl.username\" = \"u\"\n\"sasl.password\" = \"p\"\n\"ssl.key.password\" = \"\"\n[query]\nauth_tokens = [\"0123456789abcdef\"]\n",
        ));
        assert_eq!(
            found,
            ["kafka.options.\"sasl.password\"", "query.auth_tokens"]
        );
        assert!(secret_settings_in(&document("[query]\nauth_tokens = []\n")).is_empty());
        assert!(secret_settings_in(&document("[query]\nauth_tokens = \"\"\n")).is_empty());
        assert!(
            secret_settings_in(&document(
                "[kafka.options]\n\"security.protocol\" = \"SSL\"\n"
            ))
            .is_empty()
        );
    }
}
