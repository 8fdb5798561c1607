//! Where open images and encoded answers are kept: the [`registry`] (ids to open
//! sources, path safety, revalidation, purge generations, sequences), the in-process
//! caches of finished [`answers`] and decoded [`tiles`], the shared [`tier`] (memcached or
//! Redis) and [`objects`] (S3 and HTTP stores, with their block cache).

pub mod answers;
pub mod objects;
pub mod registry;
pub mod tier;
pub mod tiles;
