//! Where open images and encoded answers are kept: the [`registry`] (ids to open
//! sources, path safety, revalidation, purge generations, sequences), the in-process
//! caches of finished [`answers`] and decoded [`tiles`], the disk cache of [`pyramids`] of
//! large flat images, the shared [`tier`] (memcached or
//! Redis) and [`objects`] (S3 and HTTP stores, with their block cache).

pub mod answers;
#[cfg(feature = "object-storage")]
pub mod objects;
#[cfg(not(feature = "object-storage"))]
#[path = "objects/none.rs"]
pub mod objects;
pub(crate) mod open_images;
pub mod pyramids;
pub mod registry;
pub mod tier;
pub mod tiles;

/// Nanoseconds since the epoch of a modification time: the version stamp of files and of
/// objects whose store gives no ETag.
pub(crate) fn nanos(t: std::time::SystemTime) -> u128 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}
