//! From identifier to open image: path safety in one place, then a bounded cache of
//! parsed images keyed by path and modification time.
//!
//! Identifiers resolve to objects when an object rule takes them (`ObjectStores`), else
//! under the image root (FILESYSTEM_PREFIX) plus FILESYSTEM_SUFFIX. `..` components, NUL
//! bytes and backslash traversal are refused, and the canonical path (symlinks followed)
//! must stay under the canonical root. A file is checked (one stat) on every request; an
//! object and an image's purge generation in the shared tier once per
//! REVALIDATE_INTERVAL.

use super::nanos;
use super::objects::{ObjectRef, ObjectStores};
use super::open_images::{OpenImages, Resident};
use super::pyramids::{self, Build, Lookup, Pyramids, Used};
use super::tier::SharedTier;
use super::tiles::{CachedTiles, TileCache};
use crate::error::{Error, Flow, Halt, Result};
use iipsrv_core::sequence::{self, Views};
use iipsrv_formats::bytes::{ByteSource, FileBytes};
use iipsrv_formats::open::{open_bytes, open_file, Opening};
use iipsrv_formats::source::slide::Associated;
use iipsrv_formats::source::ImageSource;
use quick_cache::sync::Cache;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use xxhash_rust::xxh3::xxh3_64;

/// Longest identifier accepted, in bytes.
pub(crate) const MAX_ID_LEN: usize = 1024;

/// An open image and the file facts answers depend on.
#[derive(Clone)]
pub struct Opened {
    /// The image.
    pub source: Arc<dyn ImageSource>,
    /// This version of the image: its canonical path or object URL (with `#page<n>` for
    /// a page of a stack), modification time in nanoseconds (an object's ETag) and purge
    /// generation, made once when it is opened; the part of every answer and decoded-tile
    /// key that a changed file or a purge changes. Never shown to clients.
    pub version: Arc<str>,
    /// Last modification time.
    pub mtime: SystemTime,
    /// The angles of the sequence this view belongs to (None for a single file).
    pub views: Option<Arc<Views>>,
    /// The build of this image's pyramid, while it is under way: `source` is then the
    /// image as stored, and views it cannot give cheaply are answered 503.
    pub building: Option<Arc<Build>>,
}

/// What opening a file or object gave: the source, the views of a stack, and the pyramid
/// build under way when the source is a flat image's stored level meanwhile.
struct Found {
    source: Arc<dyn ImageSource>,
    views: Option<Views>,
    building: Option<Arc<Build>>,
    /// The built pyramid the source reads, when it is one.
    pyramid: Option<Arc<Used>>,
}

impl Found {
    fn ready(source: Arc<dyn ImageSource>, views: Option<Views>) -> Found {
        Found {
            source,
            views,
            building: None,
            pyramid: None,
        }
    }
}

/// A parsed image in the registry, with what it was opened from.
#[derive(Clone)]
struct Entry {
    opened: Opened,
    /// The file's modification time in nanoseconds, or the object's ETag.
    stamp: String,
    /// The purge generation it was opened under.
    generation: u64,
    /// When the stamp (objects) and generation were last confirmed.
    checked: Instant,
    /// The built pyramid it reads, marked used as it is served.
    pyramid: Option<Arc<Used>>,
}

/// Resolves identifiers and keeps parsed images.
pub(crate) struct Registry {
    /// The image directory (None when every id is an object).
    root: Option<PathBuf>,
    suffix: String,
    pattern: String,
    /// Location (canonical path or object URL, `#page<n>` for pages) → the open image.
    images: OpenImages<Entry>,
    /// Path under the root → its canonical path and the identity of the file found there
    /// when it was checked, so that an unchanged file costs one stat, not a readlink per
    /// path component.
    canonical: Cache<PathBuf, (PathBuf, FileIdentity)>,
    /// Decoded tiles of the images worth it ([`ImageSource::worth_caching`]).
    tiles: Option<Arc<TileCache>>,
    /// The object rules and clients.
    objects: Option<ObjectStores>,
    /// The shared tier, for purge generations.
    tier: Option<Arc<SharedTier>>,
    /// How long an object's stamp and an image's generation are trusted.
    revalidate: Duration,
    /// The pyramids of large flat images (PYRAMID_CACHE_DIR).
    pyramids: Option<Pyramids>,
    /// The associated images of slides served under `<id>;<name>`
    /// (SLIDE_ASSOCIATED_IMAGES); others are not found.
    associated: Vec<Associated>,
}

impl Resident for Entry {
    fn resident_bytes(&self) -> u64 {
        self.opened.source.resident_bytes()
    }
}

/// What tells one file from another, even one put in its place: device, inode and the
/// inode's change time (which no process can set back).
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileIdentity(u64, u64, i64, i64);

impl FileIdentity {
    fn of(m: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity(m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
    }
}

impl Registry {
    /// A registry serving files under `root` (ids + `suffix`; sequences named with
    /// `pattern`, FILENAME_PATTERN); `capacity` images are kept parsed, and flat images
    /// decoded into memory up to `flat_bytes`. Without a root, only objects are served.
    pub fn new(
        root: Option<&Path>,
        suffix: &str,
        pattern: &str,
        (capacity, flat_bytes): (usize, u64),
    ) -> Result<Registry> {
        let root = root
            .map(|root| {
                root.canonicalize().map_err(|e| {
                    Error::Internal(format!(
                        "image directory {} is not usable: {e}",
                        root.display()
                    ))
                })
            })
            .transpose()?;
        Ok(Registry {
            root,
            suffix: suffix.to_string(),
            pattern: pattern.to_string(),
            images: OpenImages::new(capacity, flat_bytes),
            canonical: Cache::new(capacity.max(1) * 4),
            tiles: None,
            objects: None,
            tier: None,
            revalidate: Duration::from_secs(10),
            pyramids: None,
            associated: Vec::new(),
        })
    }

    /// Serves these associated images of slides (label, macro, thumbnail) as their own
    /// identifiers; the others stay hidden.
    pub(crate) fn with_associated(mut self, associated: &[Associated]) -> Registry {
        self.associated = associated.to_vec();
        self
    }

    /// Keeps the decoded tiles of the images opened from now on in `tiles`.
    pub(crate) fn with_tile_cache(mut self, tiles: Option<Arc<TileCache>>) -> Registry {
        self.tiles = tiles;
        self
    }

    /// Builds pyramids of large flat images in `pyramids`.
    pub(crate) fn with_pyramids(mut self, pyramids: Option<Pyramids>) -> Registry {
        self.pyramids = pyramids;
        self
    }

    /// Serves the ids that `objects` routes from object storage.
    #[cfg(feature = "object-storage")]
    pub(crate) fn with_objects(mut self, objects: Option<ObjectStores>) -> Registry {
        self.objects = objects;
        self
    }

    /// Follows purge generations in `tier`, checked every `revalidate` (which also bounds
    /// how long an object is trusted unchanged).
    pub(crate) fn with_tier(
        mut self,
        tier: Option<Arc<SharedTier>>,
        revalidate: Duration,
    ) -> Registry {
        self.tier = tier;
        self.revalidate = revalidate;
        self
    }

    /// `source` reading through the decoded-tile cache when it has one and the image is
    /// worth it, its tiles keyed by a hash of the image's `version`.
    fn tile_cached(&self, source: Arc<dyn ImageSource>, version: &str) -> Arc<dyn ImageSource> {
        match &self.tiles {
            Some(tiles) if source.worth_caching() => {
                let image = xxh3_64(version.as_bytes());
                Arc::new(CachedTiles::new(source, image, tiles.clone()))
            }
            _ => source,
        }
    }

    /// The canonical image root (None when every id is an object).
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The canonical path and the file's metadata (one stat serves the regular-file check
    /// and the modification time).
    fn locate(&self, id: &str) -> Result<(PathBuf, std::fs::Metadata)> {
        self.check_id(id)?;
        let relative = id.trim_start_matches('/');
        self.locate_file(&format!("{relative}{}", self.suffix), id)
    }

    /// Refuses identifiers that are empty, too long, or try to climb out of the root.
    fn check_id(&self, id: &str) -> Result<()> {
        if id.is_empty() {
            return Err(Error::NotFound("empty image identifier".into()));
        }
        if id.len() > MAX_ID_LEN {
            return Err(Error::bad("image identifier is too long"));
        }
        if id.contains('\0') {
            return Err(Error::bad("image identifier contains a NUL byte"));
        }
        if id.split(['/', '\\']).any(|c| c == "..") {
            return Err(Error::Forbidden(
                "image identifier may not contain '..'".into(),
            ));
        }
        Ok(())
    }

    /// The canonical path and metadata of `relative` under the root; errors name `id`.
    /// A file already checked is the same file when its identity has not changed.
    fn locate_file(&self, relative: &str, id: &str) -> Result<(PathBuf, std::fs::Metadata)> {
        let root = self
            .root
            .as_ref()
            .ok_or_else(|| Error::image_not_found(id))?;
        let candidate = root.join(relative);
        let meta = std::fs::metadata(&candidate).map_err(|_| Error::image_not_found(id))?;
        if let Some((canonical, seen)) = self.canonical.get(&candidate) {
            if seen == FileIdentity::of(&meta) && meta.is_file() {
                return Ok((canonical, meta));
            }
        }
        let canonical = candidate
            .canonicalize()
            .map_err(|_| Error::image_not_found(id))?;
        if !canonical.starts_with(root) {
            return Err(Error::Forbidden(
                "image path leaves the image directory".into(),
            ));
        }
        match std::fs::metadata(&canonical) {
            Ok(m) if m.is_file() => {
                let identity = FileIdentity::of(&m);
                self.canonical
                    .insert(candidate, (canonical.clone(), identity));
                Ok((canonical, m))
            }
            _ => Err(Error::image_not_found(id)),
        }
    }

    /// Forgets every open image (SIGHUP): the next request reads each file anew.
    pub fn clear(&self) {
        self.images.clear();
        self.canonical.clear();
        if let Some(tiles) = &self.tiles {
            tiles.clear();
        }
        if let Some(objects) = &self.objects {
            objects.clear();
        }
    }

    /// How many images are held open, and the bytes of pixels they hold in memory.
    pub(crate) fn open_count(&self) -> (usize, u64) {
        (self.images.len(), self.images.resident())
    }

    /// Opens an image by id, from the cache when the file has not changed.
    pub fn open(&self, id: &str) -> Result<Opened> {
        self.open_view(id, None)
    }

    /// Opens an image by id; when the id is a sequence rather than a file, the view at
    /// `angles` (horizontal, vertical; default 0, 90) of it.
    pub(crate) fn open_view(&self, id: &str, angles: Option<(i32, i32)>) -> Result<Opened> {
        self.open_view_within(id, angles, false)
            .map_err(Halt::into_error)
    }

    /// [`Registry::open_view`]; with `only_open`, an image that is not already open (or
    /// has changed) is not opened: [`Halt::NeedsWorker`], for the quick path, which must
    /// not parse files.
    pub(crate) fn open_view_within(
        &self,
        id: &str,
        angles: Option<(i32, i32)>,
        only_open: bool,
    ) -> Flow<Opened> {
        let served = |kind: &Associated| self.associated.contains(kind);
        if let Some((slide, kind)) = Associated::split_id(id).filter(|(_, k)| served(k)) {
            return self.open_associated(slide, kind, id, only_open);
        }
        if let Some(object) = self.route(id)? {
            let first = self.open_object(&object, 0, only_open)?;
            return match stack_page(&first, angles, id)? {
                Some(page) => self.open_object(&object, page, only_open),
                None => Ok(first),
            };
        }
        match self.locate(id) {
            Ok(found) => {
                let first = self.open_located(found.clone(), id, 0, only_open)?;
                match stack_page(&first, angles, id)? {
                    Some(page) => self.open_located(found, id, page, only_open),
                    None => Ok(first),
                }
            }
            Err(Error::NotFound(_)) if only_open => Err(Halt::NeedsWorker),
            Err(Error::NotFound(m)) => match self.sequence(id)? {
                Some((ext, views)) => {
                    let at = angles.unwrap_or(sequence::DEFAULT_ANGLES);
                    let relative = id.trim_start_matches('/');
                    let name = sequence::file_name(relative, &self.pattern, at, &ext);
                    let found = self.locate_file(&name, id).map_err(|_| {
                        Error::NotFound(format!("no view {},{} of sequence {id}", at.0, at.1))
                    })?;
                    let mut opened = self.open_located(found, id, 0, only_open)?;
                    opened.views = Some(Arc::new(views));
                    Ok(opened)
                }
                None => Err(Error::NotFound(m).into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Associated image `kind` of the slide `slide` (asked as `id`); not found when the
    /// file is no slide or has no such image.
    fn open_associated(
        &self,
        slide: &str,
        kind: Associated,
        id: &str,
        only_open: bool,
    ) -> Flow<Opened> {
        let opened = match self.route(slide)? {
            Some(object) => self.open_object(&object, kind.page(), only_open),
            None => self.open_located(self.locate(slide)?, id, kind.page(), only_open),
        };
        opened.map_err(|halt| match halt {
            Halt::Failed(Error::NotFound(_)) => {
                Error::NotFound(format!("{slide} has no {} image", kind.name())).into()
            }
            other => other,
        })
    }

    /// The object `id` names, when an object rule takes it (no request made).
    fn route(&self, id: &str) -> Result<Option<ObjectRef>> {
        let Some(objects) = &self.objects else {
            return Ok(None);
        };
        self.check_id(id)?;
        objects.route(id, &self.suffix).transpose()
    }

    /// The registry key of page `page` of the file or object at `location`.
    fn key(location: &str, page: usize) -> String {
        match page {
            0 => location.to_string(),
            p => format!("{location}#page{p}"),
        }
    }

    /// Whether an entry's stamp (objects) and generation were confirmed recently enough.
    fn fresh(&self, entry: &Entry) -> bool {
        entry.checked.elapsed() < self.revalidate
    }

    /// A held entry checked again: kept (and its check time renewed) when the file or
    /// object is still as `stamp` says and its purge generation has not moved.
    fn revalidated(
        &self,
        key: String,
        entry: Entry,
        stamp: &str,
        location: &str,
    ) -> Option<Opened> {
        if entry.stamp != stamp || self.generation(location) != entry.generation {
            return None;
        }
        Some(self.renewed(key, entry))
    }

    /// An open object whose check failed because the store is unreachable: kept as it was
    /// (answers already cached stay servable through a store outage) and not checked
    /// again before the next interval, so an outage costs one failed check per interval.
    fn stale(&self, key: String, entry: Entry, error: &str) -> Opened {
        tracing::warn!("object store unreachable ({error}); serving what is open and cached");
        self.renewed(key, entry)
    }

    /// Keeps `entry` under `key` as checked now; its image.
    fn renewed(&self, key: String, entry: Entry) -> Opened {
        let opened = entry.opened.clone();
        let checked = Instant::now();
        self.images.insert(key, Entry { checked, ..entry });
        opened
    }

    /// The purge generation of `location` (0 without a shared tier).
    fn generation(&self, location: &str) -> u64 {
        self.tier.as_ref().map_or(0, |t| t.generation(location))
    }

    /// Opens page `page` of an object, from the cache while it is trusted unchanged; with
    /// `only_open`, from the cache or not at all (a HEAD request is network).
    fn open_object(&self, object: &ObjectRef, page: usize, only_open: bool) -> Flow<Opened> {
        let key = Self::key(&object.url, page);
        let held = self.images.get(&key);
        let held = held.filter(|e| self.current(e));
        if let Some(entry) = held.as_ref().filter(|e| self.fresh(e)) {
            return Ok(entry.opened.clone());
        }
        if only_open {
            return Err(Halt::NeedsWorker);
        }
        let objects = self
            .objects
            .as_ref()
            .ok_or_else(|| Error::Internal("no object stores".into()))?;
        let stat = match objects.stat(object) {
            Ok(stat) => stat,
            Err(Error::Upstream(e)) => {
                return match held {
                    Some(entry) => Ok(self.stale(key, entry, &e)),
                    None => Err(Error::Upstream(e).into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let stamp = stat.tag();
        if let Some(opened) =
            held.and_then(|e| self.revalidated(key.clone(), e, &stamp, &object.url))
        {
            return Ok(opened);
        }
        let bytes = objects.bytes(object, &stat);
        let found = self.open_object_bytes(bytes, page, &object.url, &stamp)?;
        Ok(self.keep(key, &object.url, stamp, stat.mtime, found)?)
    }

    /// Opens a located file (page `page` of a stack), from the cache when unchanged (and,
    /// with a shared tier, its generation confirmed within the interval); with
    /// `only_open`, from the cache or not at all.
    fn open_located(
        &self,
        (path, meta): (PathBuf, std::fs::Metadata),
        id: &str,
        page: usize,
        only_open: bool,
    ) -> Flow<Opened> {
        let mtime = meta.modified().map_err(|_| Error::image_not_found(id))?;
        let location = path.display().to_string();
        let key = Self::key(&location, page);
        let stamp = nanos(mtime).to_string();
        let held = self.images.get(&key).filter(|e| e.stamp == stamp);
        if let Some(entry) = held.filter(|e| self.current(e)) {
            if self.tier.is_none() || self.fresh(&entry) {
                return Ok(entry.opened);
            }
            if only_open {
                return Err(Halt::NeedsWorker);
            }
            if let Some(opened) = self.revalidated(key.clone(), entry, &stamp, &location) {
                return Ok(opened);
            }
        }
        if only_open {
            return Err(Halt::NeedsWorker);
        }
        let found = self.open_file(&path, &meta, page)?;
        Ok(self.keep(key, &location, stamp, mtime, found)?)
    }

    /// Whether a held entry may still be served: not when it is the stored level of a
    /// flat image whose pyramid build has ended (built, or failed), which is opened again.
    /// A built pyramid it reads is marked used.
    fn current(&self, entry: &Entry) -> bool {
        if let Some(used) = &entry.pyramid {
            used.mark();
        }
        match (&entry.opened.building, &self.pyramids) {
            (Some(build), Some(pyramids)) => !pyramids.settled(build),
            _ => true,
        }
    }

    /// Opens page `page` of the file at `path`, through the pyramid cache when there is one.
    fn open_file(&self, path: &Path, meta: &std::fs::Metadata, page: usize) -> Result<Found> {
        let bytes: Arc<dyn ByteSource> = Arc::new(FileBytes::open(path)?);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        self.open_origin(bytes, page, &name, || pyramids::key_of(path, meta))
    }

    /// Opens page `page` of an object (at `url`, its version `stamp`), through the pyramid
    /// cache when there is one.
    fn open_object_bytes(
        &self,
        bytes: Arc<dyn ByteSource>,
        page: usize,
        url: &str,
        stamp: &str,
    ) -> Result<Found> {
        let len = bytes.len();
        let key = || pyramids::key_of_identity(url.as_bytes(), len, stamp);
        self.open_origin(bytes, page, url.rsplit('/').next().unwrap_or(url), key)
    }

    /// Opens page `page` of the image in `bytes` (`name` in log lines), through the pyramid
    /// cache when there is one (the key of its pyramid from `key`).
    fn open_origin(
        &self,
        bytes: Arc<dyn ByteSource>,
        page: usize,
        name: &str,
        key: impl FnOnce() -> String,
    ) -> Result<Found> {
        match self.pyramids.as_ref().filter(|_| page == 0) {
            Some(pyramids) => self.through_pyramids(pyramids, &key(), bytes, name),
            None => ready(open_bytes(bytes, page, name, None)?),
        }
    }

    /// The first page of the image in `bytes` (`name` in log lines) whose pyramid would be
    /// `key`: that pyramid when it is built; else, a flat image over PYRAMID_THRESHOLD gets
    /// its pyramid queued, and meanwhile its stored level (a TIFF whose strips or tiles are
    /// cheap to read) or a 503 (a JPEG or PNG); any other image (or one whose build failed,
    /// or whose builder is gone) as it is.
    fn through_pyramids(
        &self,
        pyramids: &Pyramids,
        key: &str,
        bytes: Arc<dyn ByteSource>,
        name: &str,
    ) -> Result<Found> {
        match pyramids.lookup(key) {
            Lookup::Built(used) => {
                let mut found = ready(open_file(&used.path, 0, None)?)?;
                found.pyramid = Some(used);
                return Ok(found);
            }
            Lookup::Failed => return ready(open_bytes(bytes, 0, name, None)?),
            Lookup::Missing => {}
        }
        let Opening::Flat(flat) = open_bytes(bytes.clone(), 0, name, Some(pyramids.threshold()))?
        else {
            return ready(open_bytes(bytes, 0, name, None)?);
        };
        let Some(build) = pyramids.start(key.to_string(), bytes.clone(), name) else {
            return ready(open_bytes(bytes, 0, name, None)?);
        };
        let stored = flat.stored.filter(|s| cheap_parts(s.info()));
        Ok(Found {
            source: stored.ok_or_else(|| build.preparing())?,
            views: None,
            building: Some(build),
            pyramid: None,
        })
    }

    /// Keeps a newly opened image under `key`, its version tagged with `stamp` and the
    /// current purge generation of `location`; refused when its decoded pixels would not
    /// fit the budget for flat images (it would be decoded anew for every request).
    fn keep(
        &self,
        key: String,
        location: &str,
        stamp: String,
        mtime: SystemTime,
        found: Found,
    ) -> Result<Opened> {
        let Found {
            source,
            views,
            building,
            pyramid,
        } = found;
        let resident = source.resident_bytes();
        if !self.images.fits(resident) {
            return Err(Error::BadImage(format!(
                "this image without a pyramid needs {} MB decoded, more than MAX_FLAT_CACHE_SIZE \
                 allows; convert it to a tiled pyramidal TIFF",
                resident.div_ceil(1 << 20)
            )));
        }
        let generation = self.generation(location);
        // The stored level of a flat image, its pyramid and the image served as it is have
        // other tiles: their answers and decoded tiles are kept apart.
        let stage = match (&building, &pyramid) {
            (Some(_), _) => "|stored",
            (None, Some(_)) => "|pyramid",
            (None, None) => "",
        };
        let version: Arc<str> = format!("{key}|{stamp}|g{generation}{stage}").into();
        let opened = Opened {
            source: self.tile_cached(source, &version),
            version,
            mtime,
            views: views.map(Arc::new),
            building,
        };
        let entry = Entry {
            opened: opened.clone(),
            stamp,
            generation,
            checked: Instant::now(),
            pyramid,
        };
        self.images.insert(key, entry);
        Ok(opened)
    }

    /// Purges image `id`: its generation goes up in the shared tier (so that no instance
    /// uses its stored answers again once it next checks), and this registry forgets it.
    /// Returns the new generation (None without a tier) and the versions forgotten, whose
    /// answers the caller drops from RAM.
    pub fn purge(&self, id: &str) -> Result<(Option<u64>, Vec<Arc<str>>)> {
        let location = match self.route(id)? {
            Some(object) => object.url,
            None => self.locate(id)?.0.display().to_string(),
        };
        let generation = self.tier.as_ref().map(|t| t.purge(&location)).transpose()?;
        let page_prefix = format!("{location}#page");
        let forgotten = std::sync::Mutex::new(Vec::new());
        self.images.retain(|key, entry| {
            let of_it = key == &location || key.starts_with(&page_prefix);
            if of_it {
                if let Ok(mut f) = forgotten.lock() {
                    f.push(entry.opened.version.clone());
                }
            }
            !of_it
        });
        Ok((generation, forgotten.into_inner().unwrap_or_default()))
    }

    /// The extension and views of sequence `id` (its `000_090` file names the extension),
    /// or None when there is no such sequence.
    fn sequence(&self, id: &str) -> Result<Option<(String, Views)>> {
        if self.pattern.is_empty() {
            return Ok(None);
        }
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let relative = id.trim_start_matches('/');
        let candidate = root.join(relative);
        let (Some(dir), Some(stem)) = (
            candidate.parent(),
            candidate.file_name().and_then(|n| n.to_str()),
        ) else {
            return Ok(None);
        };
        let Ok(dir) = dir.canonicalize() else {
            return Ok(None);
        };
        if !dir.starts_with(root) {
            return Err(Error::Forbidden(
                "image path leaves the image directory".into(),
            ));
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(None);
        };
        let names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(stem))
            .collect();
        let ext = names
            .iter()
            .find_map(|n| match sequence::parse_name(n, stem, &self.pattern) {
                Some((0, 90, ext)) => Some(ext.to_string()),
                _ => None,
            });
        Ok(ext.map(|ext| {
            let views =
                sequence::views(names.iter().map(String::as_str), stem, &self.pattern, &ext);
            (ext, views)
        }))
    }
}

/// Pixels of a stored tile or strip above which a flat image's stored level is not read
/// while its pyramid is built (every view would decode whole strips of that size).
const MAX_STORED_PART_PIXELS: u64 = 16 << 20;

/// Whether the stored level of a flat image is read in parts small enough to answer views
/// near full resolution cheaply while its pyramid is built.
fn cheap_parts(info: &iipsrv_core::info::ImageInfo) -> bool {
    info.levels
        .first()
        .is_some_and(|l| l.tile_width as u64 * l.tile_height as u64 <= MAX_STORED_PART_PIXELS)
}

/// The source of an opened image that is ready to serve (no flat image was held back).
fn ready(opening: Opening) -> Result<Found> {
    match opening {
        Opening::Ready(source, views) => Ok(Found::ready(source, views)),
        Opening::Flat(_) => Err(Error::Internal("flat image not opened".into())),
    }
}

/// The page of a stack that `angles` asks (its first number), when it is not the first;
/// the error when the stack has no such page.
fn stack_page(first: &Opened, angles: Option<(i32, i32)>, id: &str) -> Result<Option<usize>> {
    let pages = first.views.as_ref().map_or(0, |v| v.pages.len());
    match angles.map(|a| a.0) {
        Some(page) if pages > 0 && page != 0 => usize::try_from(page)
            .ok()
            .filter(|&p| p < pages)
            .map(Some)
            .ok_or_else(|| Error::NotFound(format!("no page {page} of {id}"))),
        _ => Ok(None),
    }
}
