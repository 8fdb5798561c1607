//! Pyramids of large flat images, built on first use into PYRAMID_CACHE_DIR and kept there.
//!
//! A flat image (a JPEG, a PNG, a striped or single-level TIFF) of more pixels than
//! PYRAMID_THRESHOLD is not decoded into memory: the first request queues a build of a tiled
//! pyramidal TIFF of it ([`iipsrv_formats::pyramid::build_bytes`]: streaming, bounded
//! memory) on one builder thread, whose encoders run on a pool of all cores but one. Until
//! the pyramid is there, a TIFF answers what its stored level can give cheaply (views near
//! full resolution) and everything else — and every request for a JPEG or PNG — is answered
//! 503 with a Retry-After from the build's progress: never a hang, never an unbounded queue.
//!
//! On disk, the pyramid of a source is `KEY.tif`, KEY a hash of the source's identity (for
//! a file its canonical path, size, modification and change times and inode; for an object
//! its URL, size and ETag) and of the builder's format, so that a changed source gets a new
//! pyramid (the old one ages out). It is written as `KEY.tif.partial` and renamed when
//! complete, so no reader sees half a file. The builder holds an exclusive lock on
//! `KEY.lock` while it builds, so instances sharing the directory never build the same
//! pyramid twice; lock files are never deleted (deleting one would let a process holding
//! the old file and one holding a new file build at once), and a build interrupted by a
//! crash leaves a partial file whose lock nobody holds, removed at the next start. Only
//! names of that form are touched: other files in the directory are left alone. The
//! pyramids are kept under PYRAMID_CACHE_SIZE by deleting the least recently used (by
//! modification time, renewed at most once a minute while an instance serves one).

use super::nanos;
use crate::error::Error;
use crate::settings::PyramidSettings;
use iipsrv_formats::bytes::ByteSource;
use iipsrv_formats::error::SourceError;
use iipsrv_formats::pyramid::error::{BuildError, InputError};
use iipsrv_formats::pyramid::{self, Compression, Options};
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Builds waiting for the builder thread; a request finding the queue full is answered
/// 503 like the others and queues the build again on its next try.
const QUEUE: usize = 64;

/// How long a build another instance holds the lock of is left alone before this one
/// checks again (it may have finished, or died).
const ELSEWHERE_RETRY: Duration = Duration::from_secs(2);

/// How long a build that failed for a reason that may pass (the disk, the object store)
/// is not tried again.
const RETRY_FAILED: Duration = Duration::from_secs(60);

/// How often a pyramid in use has its modification time (its last use) renewed.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The builder's format, part of every key: a change to [`OPTIONS`] or to the builder's
/// output bumps it, so that pyramids of the old format are no longer used.
const FORMAT: &str = "v1";

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
    /// PYRAMID_CACHE_DIR, its size and threshold.
    settings: PyramidSettings,
    /// The builds, shared with the builder thread.
    shared: Arc<Shared>,
    /// The builder thread's queue.
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
    /// Built: the pyramid, marked used.
    Built(Arc<Used>),
    /// Its build failed (a source the builder does not take, or a failure that may pass,
    /// for a minute): served as it is.
    Failed,
    /// Not built yet.
    Missing,
}

/// A built pyramid in use: its path, and when its last use was written down.
pub(crate) struct Used {
    /// `KEY.tif`.
    pub(crate) path: PathBuf,
    /// When its modification time was last renewed.
    touched: Mutex<Instant>,
}

/// The state of one [`Build`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum State {
    /// Waiting for the builder thread.
    Queued = 0,
    /// Being built here.
    Running = 1,
    /// Another instance holds its lock.
    Elsewhere = 2,
    /// It failed; see [`Build::lasting`].
    Failed = 3,
}

/// One pyramid to build, and how far it has come.
pub struct Build {
    /// The key of its pyramid.
    key: String,
    /// The source's bytes (a file or an object); dropped when the build has ended.
    bytes: Mutex<Option<Arc<dyn ByteSource>>>,
    /// The source's file name, for log lines and errors (which never show where images are
    /// kept).
    name: String,
    /// Its [`State`].
    state: AtomicU8,
    /// Whether its failure will not pass (the source itself is at fault).
    lasting: AtomicBool,
    /// Rows of the source in the pyramid so far.
    rows: AtomicU64,
    /// Rows of the source.
    total: AtomicU64,
    /// When it was queued, started, failed, or last found busy elsewhere.
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

    /// The build of `key`, when one is tracked.
    fn tracked(&self, key: &str) -> Option<Arc<Build>> {
        self.shared.builds.lock().ok()?.get(key).cloned()
    }

    /// Stops tracking the build of `key`.
    fn forget(&self, key: &str) {
        if let Ok(mut builds) = self.shared.builds.lock() {
            builds.remove(key);
        }
    }

    /// What is known of the pyramid whose key is `key`; a built one is marked used now.
    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        let built = built_path(&self.settings.dir, key);
        if built.is_file() {
            self.forget(key);
            let used = Used {
                path: built,
                touched: Mutex::new(Instant::now()),
            };
            touch(&used.path);
            return Lookup::Built(Arc::new(used));
        }
        match self.tracked(key) {
            Some(b) if b.state() == State::Failed => {
                if b.lasting.load(Ordering::Acquire) || b.elapsed() < RETRY_FAILED {
                    return Lookup::Failed;
                }
                self.forget(key);
                Lookup::Missing
            }
            _ => Lookup::Missing,
        }
    }

    /// The build of `key` from `bytes` (`name` in log lines): the one under way, or a new
    /// one queued; None when the builder thread is gone (the source is then served as it
    /// is).
    pub(crate) fn start(
        &self,
        key: String,
        bytes: Arc<dyn ByteSource>,
        name: &str,
    ) -> Option<Arc<Build>> {
        if let Some(b) = self.tracked(&key) {
            self.retry_elsewhere(&b);
            return Some(b);
        }
        let build = Arc::new(Build::new(key.clone(), bytes, name));
        match self.queue.try_send(build.clone()) {
            Ok(()) => {
                if let Ok(mut builds) = self.shared.builds.lock() {
                    builds.insert(key, build.clone());
                }
                tracing::info!("pyramid of {} queued", build.name);
                Some(build)
            }
            Err(TrySendError::Full(_)) => Some(build),
            Err(TrySendError::Disconnected(_)) => None,
        }
    }

    /// Whether the provisional image of `build` should be opened again: its pyramid is
    /// built (here or by another instance), or its build failed or was dropped.
    pub(crate) fn settled(&self, build: &Arc<Build>) -> bool {
        if built_path(&self.settings.dir, &build.key).is_file() {
            return true;
        }
        match self.tracked(&build.key) {
            Some(b) if Arc::ptr_eq(&b, build) => {
                self.retry_elsewhere(build);
                b.state() == State::Failed
            }
            _ => true,
        }
    }

    /// Queues a build another instance held again once [`ELSEWHERE_RETRY`] has passed
    /// (once, however many requests see it at that moment).
    fn retry_elsewhere(&self, build: &Arc<Build>) {
        if build.elapsed() < ELSEWHERE_RETRY || !build.moved(State::Elsewhere, State::Queued) {
            return;
        }
        if self.queue.try_send(build.clone()).is_err() {
            build.set(State::Elsewhere);
        }
    }
}

impl Used {
    /// Renews the pyramid's modification time (its last use) when the last renewal is
    /// older than [`TOUCH_EVERY`].
    pub(crate) fn mark(&self) {
        let Ok(mut touched) = self.touched.lock() else {
            return;
        };
        if touched.elapsed() >= TOUCH_EVERY {
            *touched = Instant::now();
            touch(&self.path);
        }
    }
}

impl Build {
    /// A queued build of the pyramid `key` of `bytes`.
    fn new(key: String, bytes: Arc<dyn ByteSource>, name: &str) -> Build {
        Build {
            key,
            name: name.to_string(),
            bytes: Mutex::new(Some(bytes)),
            state: AtomicU8::new(State::Queued as u8),
            lasting: AtomicBool::new(false),
            rows: AtomicU64::new(0),
            total: AtomicU64::new(0),
            since: Mutex::new(Instant::now()),
        }
    }

    /// Its state now.
    fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Queued,
            1 => State::Running,
            2 => State::Elsewhere,
            _ => State::Failed,
        }
    }

    /// Moves it to `state`, from now.
    fn set(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
        self.restart_clock();
    }

    /// Moves it from `from` to `to` when it is in `from`; whether it moved.
    fn moved(&self, from: State, to: State) -> bool {
        let moved = self
            .state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if moved {
            self.restart_clock();
        }
        moved
    }

    /// Starts the time [`Self::elapsed`] measures again, from now.
    fn restart_clock(&self) {
        if let Ok(mut since) = self.since.lock() {
            *since = Instant::now();
        }
    }

    /// Time since it was queued, started, failed or last found busy elsewhere.
    fn elapsed(&self) -> Duration {
        self.since.lock().map(|s| s.elapsed()).unwrap_or_default()
    }

    /// The source's bytes, while the build has not ended.
    fn bytes(&self) -> Option<Arc<dyn ByteSource>> {
        self.bytes.lock().ok()?.clone()
    }

    /// Ends the build: its source is let go.
    fn end(&self) {
        if let Ok(mut bytes) = self.bytes.lock() {
            *bytes = None;
        }
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
    /// Where and how big.
    settings: PyramidSettings,
    /// The builds, shared with the request threads.
    shared: Arc<Shared>,
}

impl Builder {
    /// Takes builds from `rx` until the cache is dropped; returning drops `rx`, which tells
    /// the request threads the builder is gone.
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
            let Some(bytes) = build.bytes() else { continue };
            build.set(State::Running);
            tracing::info!("building the pyramid of {}", build.name);
            let source = (bytes, Path::new(&build.name));
            let dir = &self.settings.dir;
            let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.install(|| build_locked(dir, &build.key, source, &*build))
            }));
            let outcome = built.unwrap_or(Err(BuildError::Internal {
                what: "the builder panicked",
            }));
            self.finish(&build, outcome);
        }
    }

    /// Records how a build ended.
    fn finish(&self, build: &Arc<Build>, outcome: Result<Built, BuildError>) {
        let forget = || {
            build.end();
            if let Ok(mut builds) = self.shared.builds.lock() {
                builds.remove(&build.key);
            }
        };
        match outcome {
            Ok(Built::Now) => {
                let seconds = build.elapsed().as_secs_f64();
                tracing::info!("pyramid of {} built in {seconds:.1} s", build.name);
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
                build.lasting.store(lasting(&e), Ordering::Release);
                build.end();
                build.set(State::Failed);
            }
        }
        crate::telemetry::pyramid_progress(0.0);
    }
}

/// Whether a build failed for good: the source itself is unreadable, corrupt or of a kind
/// the builder does not take. Failures of the disk, the network or the store may pass.
fn lasting(e: &BuildError) -> bool {
    match e {
        BuildError::Open { cause, .. } | BuildError::Read { cause, .. } => !matches!(
            cause,
            InputError::Io { .. }
                | InputError::Source(SourceError::Io { .. } | SourceError::Remote { .. })
        ),
        BuildError::Unsupported { .. } | BuildError::WebpGrey { .. } => true,
        _ => false,
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
    if built.is_file() {
        return Ok(Built::Already);
    }
    pyramid::build_bytes(bytes, name, &built, &OPTIONS, progress)?;
    Ok(Built::Now)
}

/// The canonical path and pyramid key of the file at `path` when it is a flat image of
/// more than `threshold` pixels — one the server builds a pyramid of; None otherwise (or
/// when it cannot be read).
pub fn flat_key(path: &Path, threshold: u64) -> Option<(PathBuf, String)> {
    let path = path.canonicalize().ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    match iipsrv_formats::open::open_file(&path, 0, Some(threshold)) {
        Ok(iipsrv_formats::open::Opening::Flat(_)) => {
            let key = key_of(&path, &meta);
            Some((path, key))
        }
        _ => None,
    }
}

/// The cache key of a file: a hash of the builder's format and the file's canonical path
/// (its bytes), size, modification and change times and inode (a file replaced by a copy
/// that keeps the size and modification time is still another file).
pub fn key_of(path: &Path, meta: &std::fs::Metadata) -> String {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let mtime = meta.modified().map(nanos).unwrap_or_default();
    let stamp = format!(
        "{mtime}\0{}.{}\0{}",
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino()
    );
    key_of_identity(path.as_os_str().as_bytes(), meta.len(), &stamp)
}

/// The cache key of a source at `location` (a canonical path's bytes or an object's URL)
/// of `len` bytes whose version is `stamp` (times and inode of a file, an object's ETag).
pub(crate) fn key_of_identity(location: &[u8], len: u64, stamp: &str) -> String {
    let mut identity = format!("{FORMAT}\0").into_bytes();
    identity.extend_from_slice(location);
    identity.extend_from_slice(format!("\0{len}\0{stamp}").as_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&identity))
}

/// Whether `name` is a key (32 lowercase hexadecimal digits).
fn is_key(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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

/// Removes the partial files interrupted builds left in `dir`: those whose lock nobody
/// holds (a build under way in another instance holds its lock and is left alone).
fn recover(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_suffix(".tif.partial").filter(|k| is_key(k)) else {
            continue;
        };
        let Ok(lock) = File::create(dir.join(format!("{key}.lock"))) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let partial = pyramid::partial_path(&built_path(dir, key));
            if std::fs::remove_file(&partial).is_ok() {
                tracing::warn!("removed the partial pyramid {key} of an interrupted build");
            }
        }
    }
    Ok(())
}

/// Deletes the least recently used pyramids (`KEY.tif`, nothing else) in `dir` until they
/// take at most `limit` bytes, never the one of `keep` (just built); returns the bytes kept.
pub fn evict(dir: &Path, limit: u64, keep: Option<&str>) -> u64 {
    let mut pyramids: Vec<(SystemTime, u64, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name.strip_suffix(".tif").filter(|k| is_key(k))?.to_string();
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            Some((used, meta.len(), key))
        })
        .collect();
    pyramids.sort();
    let mut total: u64 = pyramids.iter().map(|p| p.1).sum();
    for (_, size, key) in pyramids {
        if total <= limit {
            break;
        }
        if keep != Some(key.as_str()) && std::fs::remove_file(built_path(dir, &key)).is_ok() {
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

    /// The key numbered `n`.
    fn k(n: u8) -> String {
        format!("{n:032x}")
    }

    #[test]
    fn a_changed_file_gets_another_key() {
        let dir = tempfile::tempdir().expect("dir");
        let a = file(dir.path(), "a.png", 10);
        let key = |p: &Path| key_of(p, &std::fs::metadata(p).expect("meta"));
        let first = key(&a);
        assert_eq!(first, key(&a), "stable");
        assert!(is_key(&first));
        aged(&a, 100);
        let touched = key(&a);
        assert_ne!(first, touched, "another mtime");
        std::fs::write(&a, vec![0u8; 11]).expect("grow");
        aged(&a, 100);
        assert_ne!(touched, key(&a), "another size");
        let b = file(dir.path(), "b.png", 11);
        aged(&b, 100);
        assert_ne!(key(&a), key(&b), "another path");
        let before = key(&b);
        let copy = file(dir.path(), "c.png", 11);
        aged(&copy, 100);
        std::fs::rename(&copy, &b).expect("replace");
        assert_ne!(
            before,
            key(&b),
            "a copy put in its place with the same size and mtime"
        );
    }

    #[test]
    fn eviction_takes_the_least_recently_used_first_and_spares_the_new_one() {
        let dir = tempfile::tempdir().expect("dir");
        for (n, age) in [(1, 300), (2, 200), (3, 100)] {
            aged(&file(dir.path(), &format!("{}.tif", k(n)), 1000), age);
        }
        file(dir.path(), &format!("{}.tif.partial", k(4)), 5000);
        aged(&file(dir.path(), "scan.tif", 5000), 900);
        assert_eq!(evict(dir.path(), 2500, None), 2000);
        assert!(!built_path(dir.path(), &k(1)).exists());
        assert!(built_path(dir.path(), &k(2)).exists());
        assert!(
            dir.path().join(format!("{}.tif.partial", k(4))).exists(),
            "builds are not counted"
        );
        assert!(
            dir.path().join("scan.tif").exists(),
            "no other file is touched"
        );
        assert_eq!(evict(dir.path(), 0, Some(&k(3))), 1000);
        assert!(
            built_path(dir.path(), &k(3)).exists(),
            "the one just built stays"
        );
    }

    #[test]
    fn recovery_removes_partial_files_whose_lock_nobody_holds() {
        let dir = tempfile::tempdir().expect("dir");
        let (dead, live) = (k(1), k(2));
        file(dir.path(), &format!("{dead}.tif.partial"), 10);
        file(dir.path(), &format!("{dead}.lock"), 0);
        file(dir.path(), &format!("{live}.tif.partial"), 10);
        file(dir.path(), "notes.tif.partial", 10);
        let held = File::create(dir.path().join(format!("{live}.lock"))).expect("lock");
        held.lock().expect("held");
        recover(dir.path()).expect("recover");
        assert!(!dir.path().join(format!("{dead}.tif.partial")).exists());
        assert!(
            dir.path().join(format!("{dead}.lock")).exists(),
            "lock files stay"
        );
        assert!(
            dir.path().join(format!("{live}.tif.partial")).exists(),
            "a build under way"
        );
        assert!(dir.path().join("notes.tif.partial").exists(), "not ours");
    }

    #[test]
    fn a_locked_build_is_left_to_its_holder() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(dir.path(), "src.png", 10);
        let bytes: Arc<dyn ByteSource> =
            Arc::new(iipsrv_formats::bytes::FileBytes::open(&path).expect("open"));
        let source = || (bytes.clone(), path.as_path());
        let key = k(7);
        let held = File::create(dir.path().join(format!("{key}.lock"))).expect("lock");
        held.lock().expect("held");
        let busy = build_locked(dir.path(), &key, source(), &pyramid::Quiet);
        assert_eq!(busy.ok(), Some(Built::Busy));
        file(dir.path(), &format!("{key}.tif"), 10);
        let done = build_locked(dir.path(), &key, source(), &pyramid::Quiet);
        assert_eq!(done.ok(), Some(Built::Already));
    }

    #[test]
    fn only_failures_of_the_source_last() {
        let corrupt = BuildError::open(Path::new("a"), SourceError::corrupt("bad"));
        assert!(lasting(&corrupt));
        let remote = BuildError::open(Path::new("a"), SourceError::remote("503"));
        assert!(!lasting(&remote));
        let disk = BuildError::output(
            Path::new("a"),
            pyramid::error::OutputStep::Finish,
            std::io::Error::other("no space"),
        );
        assert!(!lasting(&disk));
    }
}
