//! Shutdown on SIGTERM / SIGINT.

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGTERM or SIGINT; a second signal exits at once (130).
///
/// Must be called inside a Tokio runtime.
pub fn signal_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received, draining (send it again to exit at once)");
        cancel.cancel();
        wait_for_signal().await;
        tracing::warn!("second shutdown signal, exiting without draining");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only SIGINT stops the service");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Drives a service to completion the way every stockstream `main` does: builds the Tokio runtime,
/// installs the logger, cancels `run`'s token on SIGTERM/SIGINT, then gives it `drain_deadline`
/// to flush and exit. Returns the process exit code: 0 after a clean drain, 1 on error or when
/// the deadline passed.
pub fn run_service<F, Fut, E>(
    name: &str,
    telemetry: &crate::config::TelemetryConfig,
    drain_deadline: std::time::Duration,
    run: F,
) -> std::process::ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    crate::telemetry::init_tracing(telemetry);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = signal_token();
        let service = run(shutdown.clone());
        tokio::pin!(service);
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(drain_deadline).await;
        };
        tokio::select! {
            outcome = &mut service => match outcome {
                Ok(()) => {
                    tracing::info!(service = name, "stopped");
                    std::process::ExitCode::SUCCESS
                }
                Err(error) => {
                    tracing::error!(service = name, %error, "failed");
                    std::process::ExitCode::FAILURE
                }
            },
            () = deadline => {
                tracing::error!(service = name, deadline = ?drain_deadline, "drain deadline passed, exiting");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
