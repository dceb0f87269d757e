//! The AWS path offline, part one: the CloudFormation template under its validators (cfn-lint,
//! checkov, `cloud-init schema`, rsyslog) and the release tarball installed into a scratch root.
//! Part two, the stack on moto, is `infra_stack.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use stockstream_e2e::{checkov, python, release_tarball, repo_root, run_checked};

const BINARIES: [&str; 4] = [
    "stockstream-ingest",
    "stockstream-s3-sink",
    "stockstream-glue-crawler",
    "stockstream-query-api",
];

fn template() -> PathBuf {
    repo_root().join("infra/stockstream.yaml")
}

/// `cloud-init` on the PATH (Debian's, installed by `scripts/tools.sh cloud-init`).
fn cloud_init() -> Result<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|directory| directory.join("cloud-init"))
        .find(|candidate| candidate.is_file());
    found.context(
        "cloud-init is missing: install it with `make tools` (scripts/tools.sh cloud-init)",
    )
}

/// Every checkov skip the template declares (`- id: CKV…` under `checkov: skip:`).
fn declared_skips(text: &str) -> Vec<String> {
    let mut skips: Vec<String> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- id: "))
        .filter(|id| id.starts_with("CKV"))
        .map(str::to_string)
        .collect();
    skips.sort();
    skips
}

/// Runs `command`; fails unless it exits 0 without printing anything.
fn silent(command: &mut Command, what: &str) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {what} (install it with `make tools`)"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success() && said.trim().is_empty(),
        "{what} ({}):\n{said}",
        output.status
    );
    Ok(())
}

#[test]
fn the_template_embeds_the_bootstrap_and_passes_cfn_lint() -> Result<()> {
    let python = python();
    run_checked(
        &python,
        &[
            &repo_root().join("scripts/infra-embed.py").to_string_lossy(),
            "--check",
        ],
        "the template must embed infra/bootstrap.py",
    )?;
    // cfn-lint is installed next to the test Python (scripts/tools.sh python); any finding,
    // informational ones included, fails.
    silent(
        Command::new(python.with_file_name("cfn-lint")).arg(template()),
        "cfn-lint",
    )
}

/// One checkov report: no failed check, and exactly the declared skips, each with its reason.
fn check_checkov_report(report: &serde_json::Value, declared: &[String]) -> Result<u64> {
    let summary = &report["summary"];
    ensure!(
        summary["failed"] == 0 && summary["parsing_errors"] == 0,
        "checkov fails: {}",
        serde_json::to_string_pretty(&report["results"]["failed_checks"])?
    );
    let mut skipped: Vec<String> = Vec::new();
    for check in report["results"]["skipped_checks"]
        .as_array()
        .context("skipped checks")?
    {
        let id = check["check_id"].as_str().unwrap_or_default().to_string();
        let comment = check["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or_default();
        ensure!(
            comment.len() >= 60,
            "checkov skip {id} has no justification worth the name: {comment:?}"
        );
        skipped.push(id);
    }
    // Both files' skips, once each.
    skipped.sort();
    skipped.dedup();
    ensure!(
        skipped == declared,
        "checkov skipped {skipped:?}; the template declares {declared:?} (drop skips that no check needs)"
    );
    Ok(summary["passed"].as_u64().unwrap_or(0))
}

#[test]
fn checkov_passes_the_template_with_every_skip_justified() -> Result<()> {
    // The template as it is and with the optional MSK cluster on, in one run.
    let template = template();
    let text = std::fs::read_to_string(&template)?;
    let scratch = tempfile::tempdir()?;
    let with_msk = scratch.path().join("stockstream-with-msk.yaml");
    let msk_default = "  CreateMskCluster:\n    Type: String\n    Default: \"false\"";
    ensure!(
        text.contains(msk_default),
        "CreateMskCluster defaults to false"
    );
    std::fs::write(
        &with_msk,
        text.replace(msk_default, &msk_default.replace("false", "true")),
    )?;
    let report = Command::new(checkov())
        .args([
            "--skip-download",
            "--framework",
            "cloudformation",
            "-o",
            "json",
        ])
        .arg("-f")
        .arg(&template)
        .arg("-f")
        .arg(&with_msk)
        .output()
        .context("running checkov (install it with `make tools`)")?;
    let answer: serde_json::Value = serde_json::from_slice(&report.stdout).with_context(|| {
        format!(
            "checkov printed no JSON: {}",
            String::from_utf8_lossy(&report.stderr)
        )
    })?;
    let reports = match answer {
        serde_json::Value::Array(reports) => reports,
        single => vec![single],
    };
    let declared = declared_skips(&text);
    ensure!(
        !declared.is_empty(),
        "the template declares its checkov skips"
    );
    let mut passed = 0;
    for report in &reports {
        passed += check_checkov_report(report, &declared)?;
    }
    ensure!(
        passed >= 60,
        "checkov passed only {passed} checks over both variants"
    );
    Ok(())
}

#[test]
fn the_user_data_and_the_log_forwarding_pass_their_validators() -> Result<()> {
    let root = repo_root();
    let scratch = tempfile::tempdir()?;
    // The #cloud-config with example values for the stack's (infra_stack.rs checks the
    // rendered one), by Debian's cloud-init as on the host.
    let user_data = run_checked(
        &python(),
        &[&root.join("scripts/infra-user-data.py").to_string_lossy()],
        "rendering the user data",
    )?;
    let file = scratch.path().join("user-data.yaml");
    std::fs::write(&file, &user_data)?;
    let schema = run_checked(
        &cloud_init()?,
        &["schema", "--config-file", &file.to_string_lossy()],
        "cloud-init schema",
    )?;
    ensure!(
        schema.contains("Valid cloud-config"),
        "cloud-init says {schema}"
    );
    ensure!(
        user_data.len() < 16_384 - 2_048,
        "the user data ({} bytes) leaves less than 2 KiB for the stack's values under EC2's 16 KiB",
        user_data.len()
    );
    // The host's log forwarding (deploy/aws/), by Debian's rsyslog as on the host.
    let rsyslog_conf = scratch.path().join("rsyslog.conf");
    std::fs::write(
        &rsyslog_conf,
        format!(
            "$IncludeConfig {}\n",
            root.join("deploy/aws/rsyslog-stockstream.conf").display()
        ),
    )?;
    let rsyslogd = Path::new("/usr/sbin/rsyslogd");
    ensure!(
        rsyslogd.is_file(),
        "rsyslog is missing: install it with `make tools` (scripts/tools.sh cloud-init)"
    );
    let checked = Command::new(rsyslogd)
        .args(["-N1", "-f"])
        .arg(&rsyslog_conf)
        .output()?;
    ensure!(
        checked.status.success(),
        "rsyslogd -N1 rejects deploy/aws/rsyslog-stockstream.conf:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    Ok(())
}

/// Paths a unit names (ExecStart, EnvironmentFile, LoadCredential, Documentation).
fn unit_paths(unit: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let path = match key {
                "ExecStart" => value.split_whitespace().next()?,
                "EnvironmentFile" => value.trim_start_matches('-'),
                "LoadCredential" => value.split_once(':')?.1,
                "Documentation" => value.strip_prefix("file://")?,
                _ => return None,
            };
            Some(path.to_string())
        })
        .collect()
}

/// The release tarball unpacked into `scratch`: its one folder.
fn unpacked_release(scratch: &Path) -> Result<PathBuf> {
    let tarball = release_tarball()?;
    let into = scratch.join("unpacked");
    std::fs::create_dir_all(&into)?;
    run_checked(
        Path::new("tar"),
        &[
            "-xzf",
            &tarball.to_string_lossy(),
            "-C",
            &into.to_string_lossy(),
        ],
        "unpacking the release",
    )?;
    let mut folders = std::fs::read_dir(&into)?.collect::<std::io::Result<Vec<_>>>()?;
    ensure!(folders.len() == 1, "the release is one folder");
    Ok(folders.remove(0).path())
}

/// The installed units, each path they name present under `root`.
fn check_installed_units(root: &Path) -> Result<Vec<PathBuf>> {
    let units = root.join("usr/local/lib/systemd/system");
    let mut unit_files: Vec<PathBuf> = std::fs::read_dir(&units)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<_>>()?;
    unit_files.sort();
    ensure!(
        unit_files.len() == 6,
        "four services, the probe and its timer: {unit_files:?}"
    );
    for unit in &unit_files {
        for path in unit_paths(&std::fs::read_to_string(unit)?) {
            let installed = root.join(path.trim_start_matches('/'));
            ensure!(
                installed.exists(),
                "{} names {path}, which the release did not install",
                unit.display()
            );
        }
    }
    Ok(unit_files)
}

/// `systemd-analyze verify --root` on the installed units (systemd's own units copied in);
/// any output is a failure.
fn verify_installed_units(root: &Path, units: &[PathBuf]) -> Result<()> {
    ensure!(
        Path::new("/usr/lib/systemd/system").is_dir(),
        "systemd is missing: install it with `apt-get install systemd` (scripts/verify-deploy.sh does)"
    );
    std::fs::create_dir_all(root.join("usr/lib/systemd"))?;
    run_checked(
        Path::new("cp"),
        &[
            "-a",
            "/usr/lib/systemd/system",
            &root.join("usr/lib/systemd").to_string_lossy(),
        ],
        "copying systemd's own units into the scratch root",
    )?;
    silent(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(format!("--root={}", root.display()))
            .args(units)
            .env("SYSTEMD_LOG_LEVEL", "warning"),
        "systemd-analyze verify on the installed units",
    )
}

#[test]
fn the_release_installs_into_a_scratch_root_and_its_binaries_answer() -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let tarball = release_tarball()?;
    let name = tarball
        .file_name()
        .and_then(|name| name.to_str())
        .context("name")?;
    let expected = format!(
        "stockstream-{version}-{}-linux-gnu.tar.gz",
        std::env::consts::ARCH
    );
    ensure!(name == expected, "tarball {name}");
    let scratch = tempfile::tempdir()?;
    let release = unpacked_release(scratch.path())?;
    let root = scratch.path().join("root");
    let installed = run_checked(
        &release.join("install.sh"),
        &["--root", &root.to_string_lossy(), "--mode", "aws"],
        "install.sh",
    )?;
    let units = check_installed_units(&root)?;
    for binary in BINARIES {
        let answer = run_checked(
            &root.join("usr/local/bin").join(binary),
            &["--version"],
            "the installed binary",
        )?;
        ensure!(
            answer.trim() == format!("{binary} {version}"),
            "{binary} --version: {answer}"
        );
    }
    // The settings are the AWS examples, root-only.
    for example in std::fs::read_dir(release.join("env/aws"))? {
        let example = example?.path();
        let settings = root
            .join("etc/stockstream")
            .join(example.file_name().context("name")?);
        ensure!(
            std::fs::read(&example)? == std::fs::read(&settings)?,
            "{}",
            settings.display()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&settings)?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "{} has mode {mode:o}", settings.display());
        ensure!(
            installed.contains(&format!("wrote {}", settings.display())),
            "{installed}"
        );
    }
    verify_installed_units(&root, &units)
}

#[test]
fn reinstalling_keeps_the_settings_and_a_damaged_release_is_refused() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let release = unpacked_release(scratch.path())?;
    let install = release.join("install.sh");
    let root = scratch.path().join("root");
    run_checked(&install, &["--root", &root.to_string_lossy()], "install.sh")?;
    let edited = root.join("etc/stockstream/s3-sink.env");
    std::fs::write(&edited, "STOCKSTREAM__SINK__GROUP_ID=edited\n")?;
    let again = run_checked(&install, &["--root", &root.to_string_lossy()], "install.sh")?;
    ensure!(
        again.contains(&format!("kept {}", edited.display())),
        "{again}"
    );
    ensure!(std::fs::read_to_string(&edited)? == "STOCKSTREAM__SINK__GROUP_ID=edited\n");

    let binary = release.join("bin/stockstream-ingest");
    let mut bytes = std::fs::read(&binary)?;
    bytes.push(0);
    std::fs::write(&binary, bytes)?;
    let other = scratch.path().join("other");
    let damaged = Command::new(&install)
        .args(["--root", &other.to_string_lossy()])
        .output()?;
    let said = String::from_utf8_lossy(&damaged.stderr);
    ensure!(!damaged.status.success(), "a damaged release installs");
    ensure!(said.contains("does not match its SHA256SUMS"), "{said}");
    ensure!(!other.join("usr").exists(), "nothing installed");
    Ok(())
}

#[test]
fn the_aws_host_setup_forwards_each_units_log_to_the_log_group() -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let release = unpacked_release(scratch.path())?;
    let setup = release.join("aws/setup-host.sh");
    let root = scratch.path().join("root");
    let arguments = [
        "--region",
        "eu-west-1",
        "--log-group",
        "/stockstream/prod",
        "--no-agents",
    ];
    run_checked(
        &setup,
        &[&arguments[..], &["--root", &root.to_string_lossy()]].concat(),
        "setup-host.sh",
    )?;
    let agent: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("etc/stockstream/cloudwatch-agent.json"),
    )?)?;
    let files = agent["logs"]["logs_collected"]["files"]["collect_list"]
        .as_array()
        .context("collect_list")?;
    ensure!(files.len() == 5, "one log file per unit: {files:?}");
    ensure!(
        files
            .iter()
            .all(|file| file["log_group_name"] == "/stockstream/prod")
    );
    ensure!(root.join("etc/rsyslog.d/30-stockstream.conf").is_file());
    ensure!(root.join("etc/logrotate.d/stockstream").is_file());
    let refused = Command::new(&setup)
        .args([
            "--region",
            "eu-west-1",
            "--log-group",
            "bad|name",
            "--no-agents",
        ])
        .output()?;
    ensure!(
        !refused.status.success(),
        "a log group name with | is refused"
    );
    Ok(())
}
