//! The demo under test: a `sessionctl demo` child process.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::server::{free_loopback_port, output_of, port_answers, wait_until};

/// A running `sessionctl demo`, its log going to a file.
pub(crate) struct Demo {
    child: Child,
    port: u16,
    stderr: PathBuf,
}

impl Demo {
    /// Starts the demo on a free loopback port over `store_url` and waits
    /// until it answers.
    pub(crate) fn start(program: &Path, store_url: &str, logs: &Path) -> io::Result<Self> {
        let port = free_loopback_port()?;
        let stderr = logs.join("demo.stderr");

        let child = Command::new(program)
            .args(["demo", "--store", store_url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // Warnings and errors only: an outage logs one per failed
            // request, and info lines would drown them.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr)?)
            .spawn()?;
        let mut demo = Self {
            child,
            port,
            stderr,
        };

        let started = wait_until("the demo", Duration::from_secs(60), || {
            port_answers(port) || !demo.running()
        });
        if started.is_err() || !demo.running() {
            let log = std::fs::read_to_string(&demo.stderr).unwrap_or_default();
            return Err(io::Error::other(format!("the demo did not start: {log}")));
        }
        Ok(demo)
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still alive.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the demo to shut down as Ctrl-C would, then makes sure it did.
    pub(crate) fn stop(&mut self) {
        let pid = self.pid().to_string();
        if output_of(Command::new("kill").args(["-INT", &pid])).is_ok() {
            let _ = wait_until("the demo to exit", Duration::from_secs(10), || {
                !self.running()
            });
        }
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Lines of the demo's stderr that report a panic.
    pub(crate) fn panics(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        log.lines()
            .filter(|line| line.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }

    /// How many lines the demo logged at `level` (`WARN`, `ERROR`).
    pub(crate) fn log_lines(&self, level: &str) -> usize {
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        log.lines().filter(|line| line.contains(level)).count()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.running() {
            self.stop();
        }
    }
}
