//! Logging as the original's LOGFILE and VERBOSITY describe it: to a file (appended), or to
//! syslog when LOGFILE is `syslog`; to standard error when LOGFILE is unset (the original
//! then logs nothing). Levels: 0 nothing; 1 start-up, one line per request (method, path,
//! status, bytes, milliseconds) and errors; 2 adds debug detail (client disconnects, skipped
//! commands); 3 and 4 everything (trace).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The log file in use, reopened on SIGHUP (so log rotation can move it away).
static LOG_FILE: OnceLock<Arc<LogFile>> = OnceLock::new();

/// An appended log file that can be reopened under the same name.
pub(crate) struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(append(path)?),
        })
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.lock() {
            Ok(mut f) => f.write(buf),
            Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.lock() {
            Ok(mut f) => f.flush(),
            Err(_) => Ok(()),
        }
    }
}

/// Reopens the log file (SIGHUP); keeps the old one when the name cannot be opened.
pub(crate) fn reopen() {
    let Some(log) = LOG_FILE.get() else {
        return;
    };
    match append(&log.path) {
        Ok(f) => {
            if let Ok(mut slot) = log.file.lock() {
                *slot = f;
            }
        }
        Err(e) => tracing::warn!("cannot reopen log file {}: {e}", log.path.display()),
    }
}

fn level(verbosity: u8) -> Option<&'static str> {
    match verbosity {
        0 => None,
        1 => Some("info"),
        2 => Some("debug"),
        _ => Some("trace"),
    }
}

/// Installs the global logger. A log file that cannot be written is reported as a warning
/// on standard error and logging falls back to standard error; the server still starts.
pub fn init(verbosity: u8, logfile: Option<&Path>) {
    let Some(level) = level(verbosity) else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("iipsrv={level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match logfile {
        Some(p) if p.as_os_str() == "syslog" => {
            let syslog = syslog_tracing::Syslog::new(
                c"iipsrv",
                syslog_tracing::Options::LOG_PID,
                syslog_tracing::Facility::Daemon,
            );
            match syslog {
                Some(s) => builder
                    .with_ansi(false)
                    .without_time()
                    .with_writer(s)
                    .init(),
                None => builder.with_writer(std::io::stderr).init(),
            }
        }
        Some(p) => match LogFile::open(p) {
            Ok(f) => {
                let f = Arc::new(f);
                let _ = LOG_FILE.set(f.clone());
                builder.with_ansi(false).with_writer(f).init()
            }
            Err(e) => {
                builder.with_writer(std::io::stderr).init();
                tracing::warn!(
                    "cannot write log file {}: {e}; logging to standard error",
                    p.display()
                );
                eprintln!(
                    "iipsrv: warning: cannot write log file {}: {e}",
                    p.display()
                );
            }
        },
        None => builder.with_writer(std::io::stderr).init(),
    }
}
