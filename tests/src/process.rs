//! Child processes owned by a test: every process a test spawns (tansu, moto, the services'
//! binaries, scripts) is held by a [`TestProcess`], which kills and reaps it when dropped — at the
//! end of the test, on an early `?` return and on a panic — even when the test froze it with
//! SIGSTOP.

use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Output};

use anyhow::{Context, Result, bail};

/// A spawned child process, killed (SIGKILL, then SIGCONT in case it was stopped) and reaped
/// on drop unless it was already waited for.
#[derive(Debug)]
pub struct TestProcess {
    /// `None` once [`TestProcess::wait_with_output`] took the child over.
    child: Option<Child>,
    /// Whether a wait saw it exit (then its pid may belong to another process).
    reaped: bool,
    name: String,
}

impl TestProcess {
    /// Spawns `command`; `name` identifies the process in errors.
    pub fn spawn(name: impl Into<String>, command: &mut Command) -> Result<Self> {
        let name = name.into();
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            child: Some(child),
            reaped: false,
            name,
        })
    }

    fn child(&mut self) -> Result<&mut Child> {
        self.child
            .as_mut()
            .with_context(|| format!("{} was already waited for", self.name))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `signal` (a name such as `STOP`, `CONT`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) -> Result<()> {
        match &self.child {
            // Not reaped yet, so its pid cannot have been reused (an exited child is a zombie).
            Some(child) if !self.reaped => send_signal(child.id(), signal),
            _ => bail!("{} has exited; cannot send SIG{signal}", self.name),
        }
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self.child()?.try_wait()?;
        self.reaped |= status.is_some();
        Ok(status)
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let status = self.child()?.wait()?;
        self.reaped = true;
        Ok(status)
    }

    /// Kills the process with SIGKILL (a crash, as far as it can tell) and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        self.child()?.kill()?;
        self.wait()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        self.signal("TERM")?;
        self.wait()
    }

    /// Waits for the process and collects its piped stdout and stderr.
    pub fn wait_with_output(mut self) -> Result<Output> {
        let child = self
            .child
            .take()
            .with_context(|| format!("{} was already waited for", self.name))?;
        Ok(child.wait_with_output()?)
    }

    /// Takes the piped stdin.
    pub fn take_stdin(&mut self) -> Result<ChildStdin> {
        let name = self.name.clone();
        self.child()?
            .stdin
            .take()
            .with_context(|| format!("{name} has no piped stdin"))
    }

    /// Takes the piped stdout.
    pub fn take_stdout(&mut self) -> Result<ChildStdout> {
        let name = self.name.clone();
        self.child()?
            .stdout
            .take()
            .with_context(|| format!("{name} has no piped stdout"))
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if self.reaped || matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGKILL ends a stopped process too on Linux; SIGCONT covers the systems where a
        // stopped process only dies once it runs again. The child is not reaped yet, so its pid
        // still names it.
        let _ = child.kill();
        let _ = send_signal(child.id(), "CONT");
        let _ = child.wait();
    }
}

/// `kill -<signal> <pid>`.
fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_alive(pid: u32) -> bool {
        // A reaped process has no /proc entry; a zombie would show state Z.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false)
    }

    #[test]
    fn a_dropped_process_is_killed_and_reaped_even_when_stopped() -> Result<()> {
        let mut running = TestProcess::spawn("sleep", Command::new("sleep").arg("600"))?;
        let stopped = TestProcess::spawn("sleep", Command::new("sleep").arg("600"))?;
        stopped.signal("STOP")?;
        let pids = [running.id(), stopped.id()];
        assert!(running.try_wait()?.is_none());
        assert!(pids.iter().all(|pid| is_alive(*pid)));
        drop(running);
        drop(stopped);
        assert!(
            pids.iter().all(|pid| !is_alive(*pid)),
            "{pids:?} outlived their guards"
        );
        Ok(())
    }

    #[test]
    fn a_panicking_test_still_kills_its_process() {
        let pid = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = pid.clone();
        let outcome = std::panic::catch_unwind(move || {
            let process = TestProcess::spawn("sleep", Command::new("sleep").arg("600"))
                .expect("sleep starts");
            seen.store(process.id(), std::sync::atomic::Ordering::SeqCst);
            panic!("the test fails");
        });
        assert!(outcome.is_err());
        let pid = pid.load(std::sync::atomic::Ordering::SeqCst);
        assert!(pid != 0 && !is_alive(pid), "{pid} outlived the panic");
    }
}
