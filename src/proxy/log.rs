//! The proxy's log: what it did, one line per event, in the harness's transcript style
//! (`c1 > 1 byte at 0: "S"`, `c1 > reset after 100 bytes`, `d7 c1 > 6 bytes: "ping 7", dropped`).
//!
//! `workbook proxy` prints it on stdout with [`log_line!`](crate::log_line) (flushed line by line,
//! and a closed stdout never stops the proxy); a proxy started in-process keeps it in memory,
//! where a test reads it ([`super::ProxyHandle::log_lines`]) or waits for a line.

use std::fmt;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where the log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    /// Kept in memory, for [`super::ProxyHandle::log_lines`] (at most [`MAX_KEPT_LINES`] lines).
    Memory,
    /// Printed on stdout, as `workbook proxy` does.
    Stdout,
}

/// A proxy that runs for days must not keep its whole log: lines past this many are counted.
pub const MAX_KEPT_LINES: usize = 100_000;

#[derive(Default)]
struct Kept {
    lines: Vec<String>,
    not_kept: usize,
}

pub(crate) struct Log {
    to: LogTo,
    quiet: bool,
    kept: Mutex<Kept>,
    changed: Condvar,
}

impl Log {
    pub(crate) fn new(to: LogTo, quiet: bool) -> Log {
        Log {
            to,
            quiet,
            kept: Mutex::new(Kept::default()),
            changed: Condvar::new(),
        }
    }

    /// A line written even with `--quiet`: the `listening on` line and the seed.
    pub(crate) fn always(&self, line: fmt::Arguments<'_>) {
        self.write(line);
    }

    /// A line about the traffic; nothing with `--quiet`.
    pub(crate) fn event(&self, line: fmt::Arguments<'_>) {
        if !self.quiet {
            self.write(line);
        }
    }

    fn write(&self, line: fmt::Arguments<'_>) {
        match self.to {
            LogTo::Stdout => crate::log_line!("{line}"),
            LogTo::Memory => {
                let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if kept.lines.len() < MAX_KEPT_LINES {
                    kept.lines.push(line.to_string());
                } else {
                    kept.not_kept += 1;
                }
                self.changed.notify_all();
            }
        }
    }

    /// Every line kept so far, and a last line counting those not kept, if any.
    pub(crate) fn lines(&self) -> Vec<String> {
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut lines = kept.lines.clone();
        if kept.not_kept > 0 {
            lines.push(format!("[{} more lines not kept]", kept.not_kept));
        }
        lines
    }

    /// Waits up to `timeout` until `satisfied` says yes to the lines kept so far.
    pub(crate) fn wait_until(&self, timeout: Duration, satisfied: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if satisfied(&kept.lines) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            kept = self
                .changed
                .wait_timeout(kept, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}
