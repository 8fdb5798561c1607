//! The integration tests of the iipsrv binary and the crates below it: real files made by
//! the tests (or vips), the handler called without sockets, the binary over real sockets,
//! and the daemons it talks to (memcached, redis-server, an S3 store), all started by
//! [`harness`] on free ports. One test binary, one module per subject; the modules of an
//! optional backend run when the binary is built with its cargo feature (the default).

mod harness;

mod access;
#[cfg(feature = "avif")]
mod avif;
mod bit_depths;
mod check;
mod convert;
mod convert_masters;
mod fastcgi_hostile;
mod fastcgi_protocol;
mod faults;
mod flat_images;
mod hardening;
mod hostile_load;
mod hostile_requests;
mod hostile_tiff;
mod http_semantics;
mod image_types;
mod jpeg2000;
mod lifecycle;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "object-storage")]
mod object_storage;
mod options;
mod processing;
mod protocols;
mod pyramid_cache;
mod server_e2e;
#[cfg(all(feature = "memcached", feature = "redis"))]
mod shared_tier;
mod slides;
mod static_export;
mod tiff_variants;
