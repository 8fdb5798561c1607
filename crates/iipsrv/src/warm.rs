//! `iipsrv warm PATH...`: builds the pyramids of large flat images ahead of time into
//! PYRAMID_CACHE_DIR, exactly as the server would on their first request (same keys, same
//! lock files, same bounds), so that no visitor waits for one. Directories are searched
//! recursively; `--match GLOB` picks files by name. A pyramid already built, or being built
//! by a running server, is left alone.

use crate::convert::Progress;
use iipsrv_formats::bytes::{ByteSource, FileBytes};
use iipsrv_server::settings::{PyramidArgs, PyramidSettings};
use iipsrv_server::storage::pyramids::{self, Built};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The command line of `iipsrv warm`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Image files, or directories searched recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only files whose name matches this glob pattern, e.g. '*.tif'.
    #[arg(long = "match", value_name = "GLOB")]
    pattern: Option<glob::Pattern>,
    /// Where the pyramids go, and which images get one.
    #[command(flatten)]
    pyramids: PyramidArgs,
}

/// Why `iipsrv warm` stopped or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WarmError {
    /// No cache directory to build into.
    #[error("PYRAMID_CACHE_DIR (--pyramid-cache-dir) is not set: there is nowhere to build")]
    NoDirectory,
    /// A setting is wrong.
    #[error("{0}")]
    Setting(#[from] iipsrv_server::settings::ConfigError),
    /// The cache directory cannot be made.
    #[error("cannot create {}: {error}", .dir.display())]
    Directory {
        /// PYRAMID_CACHE_DIR.
        dir: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// Some builds failed (each was reported as it failed).
    #[error("{0} pyramid(s) not built")]
    Failed(usize),
}

/// What happened to the files, counted.
#[derive(Default)]
struct Tally {
    built: usize,
    already: usize,
    elsewhere: usize,
    skipped: usize,
    failed: usize,
}

/// Builds the pyramids `args` select; prints a summary line.
pub(crate) fn run(args: &Args) -> Result<(), WarmError> {
    let settings = args.pyramids.settings()?.ok_or(WarmError::NoDirectory)?;
    std::fs::create_dir_all(&settings.dir).map_err(|error| WarmError::Directory {
        dir: settings.dir.clone(),
        error,
    })?;
    let mut tally = Tally::default();
    for file in files(&args.paths, args.pattern.as_ref()) {
        warm(&file, &settings, &mut tally);
    }
    // Measured only: each build already made room for itself.
    let kept = pyramids::evict(&settings.dir, u64::MAX, None);
    println!(
        "warm: {} built, {} already built, {} being built elsewhere, {} skipped (not flat, under \
         the threshold, or not images), {} failed; the cache holds {} MB",
        tally.built,
        tally.already,
        tally.elsewhere,
        tally.skipped,
        tally.failed,
        kept >> 20
    );
    match tally.failed {
        0 => Ok(()),
        n => Err(WarmError::Failed(n)),
    }
}

/// Builds the pyramid of one file when it is a flat image over the threshold, then keeps
/// the cache under its size (sparing that pyramid).
fn warm(file: &Path, settings: &PyramidSettings, tally: &mut Tally) {
    let Some((path, key)) = pyramids::flat_key(file, settings.threshold_pixels) else {
        tally.skipped += 1;
        return;
    };
    let bytes = match FileBytes::open(&path) {
        Ok(bytes) => Arc::new(bytes) as Arc<dyn ByteSource>,
        Err(e) => return fail(file, &e, tally),
    };
    let bar = Progress::bar(0, file, "rows");
    match pyramids::build_locked(&settings.dir, &key, (bytes, file), &bar) {
        Ok(Built::Now) => {
            tally.built += 1;
            pyramids::evict(&settings.dir, settings.limit_bytes, Some(&key));
        }
        Ok(Built::Already) => tally.already += 1,
        Ok(Built::Busy) => tally.elsewhere += 1,
        Err(e) => fail(file, &e, tally),
    }
}

/// Reports a file whose pyramid could not be built.
fn fail(file: &Path, e: &dyn std::fmt::Display, tally: &mut Tally) {
    eprintln!("iipsrv warm: {}: {e}", file.display());
    tally.failed += 1;
}

/// The files under `paths` (directories searched recursively, in name order) whose name
/// matches `pattern`.
fn files(paths: &[PathBuf], pattern: Option<&glob::Pattern>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        collect(p, &mut out);
    }
    out.retain(|f| {
        pattern.is_none_or(|pat| {
            f.file_name()
                .is_some_and(|n| pat.matches(&n.to_string_lossy()))
        })
    });
    out
}

/// Pushes `path` (a file) or the files under it (a directory) onto `out`.
fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if !path.is_dir() {
        out.push(path.to_owned());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    // Symbolic links to directories are not followed (no loops); links to files are.
    let mut children: Vec<(PathBuf, bool)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.path(), e.file_type().ok()?.is_dir()))
        })
        .collect();
    children.sort();
    for (child, dir) in children {
        if dir {
            collect(&child, out);
        } else {
            out.push(child);
        }
    }
}
