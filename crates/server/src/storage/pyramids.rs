//! Pyramids of large flat images, built on first use into PYRAMID_CACHE_DIR and kept there.
//!
//! A flat image (a JPEG, a PNG, a striped or single-level TIFF) of more pixels than
//! PYRAMID_THRESHOLD is not decoded into memory: the first request queues a build of a tiled
//! pyramidal TIFF of it ([`iipsrv_formats::pyramid::build`]: streaming, bounded memory) on
//! one builder thread, whose encoders run on a pool of all cores but one. Until the pyramid
//! is there, a TIFF answers what its stored level can give cheaply (views near full
//! resolution) and everything else — and every request for a JPEG or PNG — is answered 503
//! with a Retry-After from the build's progress: never a hang, never an unbounded queue.
//!
//! On disk, the pyramid of a source is `KEY.tif`, KEY a hash of the source's canonical path,
//! size and modification time, so that a changed source gets a new pyramid (the old one ages
//! out). It is written as `KEY.tif.partial` and renamed when complete, so no reader sees half
//! a file; the builder holds an exclusive lock on `KEY.lock` while it builds, so instances
//! sharing the directory never build the same pyramid twice, and a build interrupted by a
//! crash leaves a partial file whose lock nobody holds, removed at the next start. The
//! directory's pyramids are kept under PYRAMID_CACHE_SIZE by deleting the least recently
//! used (by modification time, renewed when an instance opens one).

use super::nanos;
use crate::error::Error;
use crate::settings::PyramidSettings;
use iipsrv_formats::bytes::ByteSource;
use iipsrv_formats::pyramid::{self, error::BuildError, Compression, Options};
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Builds waiting for the builder thread; a request finding the queue full is answered
/// 503 like the others and queues the build again on its next try.
const QUEUE: usize = 64;

/// How long a build another instance holds the lock of is left alone before this one
/// checks again (it may have finished, or died).
const ELSEWHERE_RETRY: Duration = Duration::from_secs(2);

/// How pyramids are written: 256-pixel JPEG tiles (quality 90, so stored tiles can be sent
/// as they are) for 8-bit images without alpha; zstd for 16-bit samples and alpha, which
/// JPEG would lose.
const OPTIONS: Options = Options {
    tile: 256,
    compression: Compression::Jpeg(90),
    fallback: Some(Compression::Zstd(3)),
    bigtiff: true,
};

/// The pyramid cache: its directory, bounds and the builds under way.
pub(crate) struct Pyramids {
    settings: PyramidSettings,
    shared: Arc<Shared>,
    queue: SyncSender<Arc<Build>>,
}

/// What the builder thread and the request threads share.
struct Shared {
    /// Builds queued, running, waiting on another instance, or failed (kept so that a
    /// source the builder cannot take is not tried again), by key.
    builds: Mutex<HashMap<String, Arc<Build>>>,
}

/// What is known of the pyramid of one source.
pub(crate) enum Lookup {
    /// Built: the pyramid's path.
    Built(PathBuf),
    /// Its build failed (a source the builder does not take): served as it is.
    Failed,
    /// Not built yet.
    Missing,
}

/// The state of one [`Build`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum State {
    Queued = 0,
    Running = 1,
    /// Another instance holds its lock.
    Elsewhere = 2,
    Failed = 3,
}

/// One pyramid to build, and how far it has come.
pub struct Build {
    key: String,
    /// The source's bytes (a file or an object).
    bytes: Arc<dyn ByteSource>,
    /// The source's file name, for log lines and errors (which never show where images are
    /// kept).
    name: String,
    state: AtomicU8,
    rows: AtomicU64,
    total: AtomicU64,
    /// When it was queued, started, or last found busy elsewhere.
    since: Mutex<Instant>,
}

impl Pyramids {
    /// The cache in `settings.dir` (created when missing), leftovers of interrupted builds
    /// removed and its size brought under the limit, with its builder thread started.
    pub(crate) fn open(settings: &PyramidSettings) -> crate::error::Result<Pyramids> {
        let unusable = |e: std::io::Error| {
            Error::Internal(format!(
                "PYRAMID_CACHE_DIR {} is not usable: {e}",
                settings.dir.display()
            ))
        };
        std::fs::create_dir_all(&settings.dir).map_err(unusable)?;
        recover(&settings.dir).map_err(unusable)?;
        evict(&settings.dir, settings.limit_bytes, None);
        let shared = Arc::new(Shared {
            builds: Mutex::new(HashMap::new()),
        });
        let (queue, rx) = sync_channel(QUEUE);
        let builder = Builder {
            settings: settings.clone(),
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name("pyramid-builder".into())
            .spawn(move || builder.run(rx))
            .map_err(|e| Error::Internal(format!("pyramid builder not started: {e}")))?;
        Ok(Pyramids {
            settings: settings.clone(),
            shared,
            queue,
        })
    }

    /// PYRAMID_THRESHOLD in pixels: flat images over it get a pyramid.
    pub(crate) fn threshold(&self) -> u64 {
        self.settings.threshold_pixels
    }

    /// What is known of the pyramid of the source whose key is `key`; a built one is marked
    /// used now.
    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        let built = built_path(&self.settings.dir, key);
        if built.is_file() {
            touch(&built);
            return Lookup::Built(built);
        }
        match self
            .shared
            .builds
            .lock()
            .ok()
            .and_then(|b| b.get(key).cloned())
        {
            Some(b) if b.state() == State::Failed => Lookup::Failed,
            _ => Lookup::Missing,
        }
    }

    /// The build of `key` from `bytes` (`name` in log lines): the one under way, or a new
    /// one queued.
    pub(crate) fn start(&self, key: String, bytes: Arc<dyn ByteSource>, name: &str) -> Arc<Build> {
        let Ok(mut builds) = self.shared.builds.lock() else {
            return Arc::new(Build::new(key, bytes, name));
        };
        if let Some(b) = builds.get(&key) {
            let b = b.clone();
            drop(builds);
            self.retry_elsewhere(&b);
            return b;
        }
        let build = Arc::new(Build::new(key.clone(), bytes, name));
        if self.queue.try_send(build.clone()).is_ok() {
            builds.insert(key, build.clone());
            tracing::info!("pyramid of {} queued", build.name);
        }
        build
    }

    /// Whether the provisional image of `build` should be opened again: its pyramid is
    /// built, or its build failed (the source is then served as it is), or it was dropped.
    pub(crate) fn settled(&self, build: &Arc<Build>) -> bool {
        let held = self
            .shared
            .builds
            .lock()
            .ok()
            .and_then(|b| b.get(&build.key).cloned());
        match held {
            Some(b) if Arc::ptr_eq(&b, build) => {
                self.retry_elsewhere(build);
                b.state() == State::Failed
            }
            _ => true,
        }
    }

    /// Queues a build another instance held again once [`ELSEWHERE_RETRY`] has passed.
    fn retry_elsewhere(&self, build: &Arc<Build>) {
        if build.state() != State::Elsewhere || build.elapsed() < ELSEWHERE_RETRY {
            return;
        }
        build.set(State::Queued);
        if self.queue.try_send(build.clone()).is_err() {
            build.set(State::Elsewhere);
        }
    }
}

impl Build {
    fn new(key: String, bytes: Arc<dyn ByteSource>, name: &str) -> Build {
        Build {
            key,
            name: name.to_string(),
            bytes,
            state: AtomicU8::new(State::Queued as u8),
            rows: AtomicU64::new(0),
            total: AtomicU64::new(0),
            since: Mutex::new(Instant::now()),
        }
    }

    fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Queued,
            1 => State::Running,
            2 => State::Elsewhere,
            _ => State::Failed,
        }
    }

    fn set(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
        if let Ok(mut since) = self.since.lock() {
            *since = Instant::now();
        }
    }

    fn elapsed(&self) -> Duration {
        self.since.lock().map(|s| s.elapsed()).unwrap_or_default()
    }

    /// The share of the source's rows in the pyramid, 0-1.
    fn fraction(&self) -> f64 {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        self.rows.load(Ordering::Relaxed) as f64 / total as f64
    }

    /// The 503 of a request this build's pyramid will answer: how far it has come, and a
    /// Retry-After from its pace (1-30 s; 5 s while queued or built elsewhere).
    pub(crate) fn preparing(&self) -> Error {
        let fraction = self.fraction();
        let retry_after = match self.state() {
            State::Running if fraction > 0.0 => {
                let left = self.elapsed().as_secs_f64() * (1.0 - fraction) / fraction;
                left.clamp(1.0, 30.0) as u32
            }
            _ => 5,
        };
        Error::Preparing {
            reason: format!(
                "this image is being prepared for zooming ({:.0}% done); retry in {retry_after} s",
                fraction * 100.0
            ),
            retry_after,
        }
    }
}

impl pyramid::Progress for Build {
    fn start(&self, rows: u64) {
        self.total.store(rows, Ordering::Relaxed);
    }

    fn advance(&self, rows: u64) {
        let total = self.total.load(Ordering::Relaxed).max(1);
        let before = self.rows.fetch_add(rows, Ordering::Relaxed);
        let (from, to) = (before * 10 / total, (before + rows) * 10 / total);
        crate::telemetry::pyramid_progress((before + rows) as f64 / total as f64);
        if to > from && to < 10 {
            tracing::info!(
                "pyramid of {}: {}% after {:.1} s",
                self.name,
                to * 10,
                self.elapsed().as_secs_f64()
            );
        }
    }
}

/// The builder thread: builds queued pyramids one at a time.
struct Builder {
    settings: PyramidSettings,
    shared: Arc<Shared>,
}

impl Builder {
    /// Takes builds from `rx` until the cache is dropped.
    fn run(self, rx: Receiver<Arc<Build>>) {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .max(1);
        let pool = match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("pyramid-{i}"))
            .build()
        {
            Ok(pool) => pool,
            Err(e) => return tracing::error!("pyramid builder pool not started: {e}"),
        };
        while let Ok(build) = rx.recv() {
            build.set(State::Running);
            tracing::info!("building the pyramid of {}", build.name);
            let source = (build.bytes.clone(), Path::new(&build.name));
            let dir = &self.settings.dir;
            let outcome = pool.install(|| build_locked(dir, &build.key, source, &*build));
            self.finish(&build, outcome);
        }
    }

    /// Records how a build ended.
    fn finish(&self, build: &Arc<Build>, outcome: Result<Built, BuildError>) {
        let forget = || {
            if let Ok(mut builds) = self.shared.builds.lock() {
                builds.remove(&build.key);
            }
        };
        match outcome {
            Ok(Built::Now) => {
                tracing::info!(
                    "pyramid of {} built in {:.1} s",
                    build.name,
                    build.elapsed().as_secs_f64()
                );
                crate::telemetry::pyramid_built("built");
                forget();
                evict(
                    &self.settings.dir,
                    self.settings.limit_bytes,
                    Some(&build.key),
                );
            }
            Ok(Built::Already) => forget(),
            Ok(Built::Busy) => {
                crate::telemetry::pyramid_built("elsewhere");
                build.set(State::Elsewhere);
            }
            Err(e) => {
                tracing::warn!("pyramid of {} not built: {e}", build.name);
                crate::telemetry::pyramid_built("failed");
                build.set(State::Failed);
            }
        }
        crate::telemetry::pyramid_progress(0.0);
    }
}

/// How [`build_locked`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    /// Built by this call.
    Now,
    /// It was there already (perhaps built by another instance meanwhile).
    Already,
    /// Another process holds its lock: it is being built there.
    Busy,
}

/// Builds the pyramid `KEY.tif` of `source` (its bytes, and its name in errors) in `dir`
/// unless it is there or another process is building it (holding `KEY.lock`), reporting to
/// `progress`. Used by the server's builder and by `iipsrv warm`.
pub fn build_locked(
    dir: &Path,
    key: &str,
    (bytes, name): (Arc<dyn ByteSource>, &Path),
    progress: &dyn pyramid::Progress,
) -> Result<Built, BuildError> {
    let built = built_path(dir, key);
    if built.is_file() {
        return Ok(Built::Already);
    }
    let lock_path = dir.join(format!("{key}.lock"));
    let step = pyramid::error::OutputStep::Create;
    let lock = File::create(&lock_path).map_err(|e| BuildError::output(&lock_path, step, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Built::Busy),
        Err(TryLockError::Error(e)) => return Err(BuildError::output(&lock_path, step, e)),
    }
    let outcome = if built.is_file() {
        Ok(Built::Already)
    } else {
        pyramid::build_bytes(bytes, name, &built, &OPTIONS, progress).map(|()| Built::Now)
    };
    let _ = std::fs::remove_file(&lock_path);
    outcome
}

/// The cache key of a file: a hash of its canonical path, size and modification time.
pub fn key_of(path: &Path, meta: &std::fs::Metadata) -> String {
    let mtime = meta.modified().map(nanos).unwrap_or_default();
    key_of_identity(&path.display().to_string(), meta.len(), &mtime.to_string())
}

/// The cache key of a source at `location` (a canonical path or an object's URL) of `len`
/// bytes whose version is `stamp` (modification time in nanoseconds, or an ETag).
pub(crate) fn key_of_identity(location: &str, len: u64, stamp: &str) -> String {
    let identity = format!("{location}\0{len}\0{stamp}");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(identity.as_bytes()))
}

/// Where the pyramid of `key` is kept in `dir`.
pub fn built_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.tif"))
}

/// Marks a pyramid used now (its modification time is its last use).
fn touch(path: &Path) {
    if let Ok(f) = File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Removes what interrupted builds left in `dir`: partial files and lock files whose lock
/// nobody holds (a build under way in another instance holds its lock and is left alone).
fn recover(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(key) = name
            .strip_suffix(".tif.partial")
            .or_else(|| name.strip_suffix(".lock"))
        else {
            continue;
        };
        let lock_path = dir.join(format!("{key}.lock"));
        let Ok(lock) = File::create(&lock_path) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let partial = pyramid::partial_path(&built_path(dir, key));
            if std::fs::remove_file(&partial).is_ok() {
                tracing::warn!("removed the partial pyramid {key} of an interrupted build");
            }
            let _ = std::fs::remove_file(&lock_path);
        }
    }
    Ok(())
}

/// Deletes the least recently used pyramids in `dir` until they take at most `limit`
/// bytes, never the one of `keep` (just built); returns the bytes kept.
pub fn evict(dir: &Path, limit: u64, keep: Option<&str>) -> u64 {
    let mut pyramids: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let path = e.path();
            let meta = e.metadata().ok()?;
            let tif = path.extension().is_some_and(|x| x == "tif") && meta.is_file();
            tif.then(|| {
                (
                    meta.modified().ok().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                    path,
                )
            })
        })
        .collect();
    pyramids.sort();
    let mut total: u64 = pyramids.iter().map(|p| p.1).sum();
    for (_, size, path) in pyramids {
        if total <= limit {
            break;
        }
        let kept = keep.is_some_and(|k| path.file_stem().is_some_and(|s| s == k));
        if !kept && std::fs::remove_file(&path).is_ok() {
            tracing::info!(
                "pyramid cache over PYRAMID_CACHE_SIZE: removed the least recently used ({} MB)",
                size >> 20
            );
            total -= size;
        }
    }
    crate::telemetry::pyramid_cache_bytes(total);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, bytes: usize) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, vec![0u8; bytes]).expect("write");
        path
    }

    fn aged(path: &Path, seconds_ago: u64) {
        let f = File::options().write(true).open(path).expect("open");
        f.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago))
            .expect("mtime");
    }

    #[test]
    fn a_changed_file_gets_another_key() {
        let dir = tempfile::tempdir().expect("dir");
        let a = file(dir.path(), "a.png", 10);
        let key = |p: &Path| key_of(p, &std::fs::metadata(p).expect("meta"));
        let first = key(&a);
        assert_eq!(first, key(&a), "stable");
        assert_eq!(first.len(), 32);
        aged(&a, 100);
        let touched = key(&a);
        assert_ne!(first, touched, "another mtime");
        std::fs::write(&a, vec![0u8; 11]).expect("grow");
        aged(&a, 100);
        assert_ne!(touched, key(&a), "another size");
        let b = file(dir.path(), "b.png", 11);
        aged(&b, 100);
        assert_ne!(key(&a), key(&b), "another path");
    }

    #[test]
    fn eviction_takes_the_least_recently_used_first_and_spares_the_new_one() {
        let dir = tempfile::tempdir().expect("dir");
        for (name, age) in [("old", 300), ("mid", 200), ("new", 100)] {
            aged(&file(dir.path(), &format!("{name}.tif"), 1000), age);
        }
        file(dir.path(), "x.tif.partial", 5000);
        assert_eq!(evict(dir.path(), 2500, None), 2000);
        assert!(!dir.path().join("old.tif").exists());
        assert!(dir.path().join("mid.tif").exists());
        assert!(
            dir.path().join("x.tif.partial").exists(),
            "builds are not counted"
        );
        assert_eq!(evict(dir.path(), 0, Some("new")), 1000);
        assert!(
            dir.path().join("new.tif").exists(),
            "the one just built stays"
        );
    }

    #[test]
    fn recovery_removes_partial_files_whose_lock_nobody_holds() {
        let dir = tempfile::tempdir().expect("dir");
        file(dir.path(), "dead.tif.partial", 10);
        file(dir.path(), "dead.lock", 0);
        file(dir.path(), "live.tif.partial", 10);
        let held = File::create(dir.path().join("live.lock")).expect("lock");
        held.lock().expect("held");
        recover(dir.path()).expect("recover");
        assert!(!dir.path().join("dead.tif.partial").exists());
        assert!(!dir.path().join("dead.lock").exists());
        assert!(
            dir.path().join("live.tif.partial").exists(),
            "a build under way"
        );
    }

    #[test]
    fn a_locked_build_is_left_to_its_holder() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(dir.path(), "src.png", 10);
        let bytes: Arc<dyn ByteSource> =
            Arc::new(iipsrv_formats::bytes::FileBytes::open(&path).expect("open"));
        let source = || (bytes.clone(), path.as_path());
        let held = File::create(dir.path().join("k.lock")).expect("lock");
        held.lock().expect("held");
        let busy = build_locked(dir.path(), "k", source(), &pyramid::Quiet);
        assert_eq!(busy.ok(), Some(Built::Busy));
        file(dir.path(), "k.tif", 10);
        let done = build_locked(dir.path(), "k", source(), &pyramid::Quiet);
        assert_eq!(done.ok(), Some(Built::Already));
    }
}
