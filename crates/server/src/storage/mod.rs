//! Where open images and encoded answers are kept: the [`registry`] (ids to open
//! sources, path safety, revalidation, purge generations, sequences), the in-process
//! caches ([`cache`]: answers, decoded tiles, object blocks; [`cached_tiles`] wraps a
//! source), the shared [`tier`] (memcached or Redis) and [`objects`] (S3 and HTTP stores).

pub mod cache;
pub mod cached_tiles;
pub mod objects;
pub mod registry;
pub mod tier;
