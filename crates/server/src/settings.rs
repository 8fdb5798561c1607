//! The one place for configuration: the original server's environment variables (same
//! names, same defaults) and a command-line flag for each; flags win ([`Config`], what a
//! user writes). [`Config::settings`] parses it once, at start-up, into typed values
//! ([`Settings`]: enums, `bool`, `Option`, [`Duration`]); a bad value stops the start with a
//! [`ConfigError`] naming the variable, and nothing after start-up sees a raw code.

use crate::access::policy::Policy;
use crate::forwarded::Trusted;
use crate::render::budget::MemoryBudget;
use crate::render::{self, MaxLayers, TiffCompression};
use clap::Parser;
use iipsrv_core::pixel::Interpolation;
use iipsrv_core::protocol::iiif::Version;
use iipsrv_core::view::SizeLimits;
use iipsrv_formats::codec::avif;
use iipsrv_formats::source::slide::Associated;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// iipsrv — IIPImage image server (IIIF from pyramidal TIFF).
///
/// Every setting can be given as an environment variable (as the original iipsrv reads
/// them) or as the flag shown; the flag wins.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "iipsrv",
    version,
    about = "IIPImage image server in Rust: IIIF, IIP, DeepZoom and Zoomify from pyramidal TIFF and JPEG2000",
    long_about = None,
    after_help = "Also: iipsrv check PATH...  reports what the server sees in image files and what would make them servable or faster.\n      iipsrv convert INPUT OUTPUT.tif [--tile N] [--compression jpeg|deflate|webp|zstd|lzw|none] [--quality Q] [--bigtiff]\n            makes a tiled pyramidal TIFF from a JPEG, PNG or TIFF (iipsrv convert --help).\n      iipsrv convert INPUT --static iiif3|iiif2|deepzoom|zoomify OUT_DIR [--id URL]\n            writes a static level-0 tile tree that any web server serves.\n      iipsrv purge ID...  purges images across the shared tier (MEMCACHED_SERVERS or REDIS_URL).\n      iipsrv man  prints this manual as a man page (roff)."
)]
pub struct Config {
    /// HTTP address to listen on (default 127.0.0.1:8080 when no FastCGI socket is used).
    #[arg(long = "http", value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// FastCGI: listen on HOST:PORT, or on a Unix socket path.
    #[arg(long, value_name = "HOST:PORT|PATH")]
    pub bind: Option<String>,

    /// FastCGI listen backlog.
    #[arg(long, default_value_t = 2048)]
    pub backlog: i32,

    /// Directory prefixed to every image path; an s3://bucket/prefix/ or http(s):// URL
    /// serves every id from object storage instead; when unset, a generated demo image
    /// is served.
    #[arg(long, env = "FILESYSTEM_PREFIX", value_name = "DIR|URL")]
    pub filesystem_prefix: Option<PathBuf>,

    /// Suffix appended to every image path (e.g. ".tif").
    #[arg(long, env = "FILESYSTEM_SUFFIX", default_value = "")]
    pub filesystem_suffix: String,

    /// Marks image sequences: an id that is not a file names the files
    /// `<id><pattern><horizontal>_<vertical>.tif` (e.g. `vase_pyr_000_090.tif`).
    #[arg(long, env = "FILENAME_PATTERN", default_value = "_pyr_")]
    pub filename_pattern: String,

    /// The associated images of microscope slides served as their own ids, `<id>;<name>`
    /// (e.g. `slide.svs;label`): a comma-separated list of `label`, `macro` and
    /// `thumbnail`, or `none`. A label (and the macro, which shows it) may carry a
    /// patient's name, so only the thumbnail is served unless they are listed.
    #[arg(long, env = "SLIDE_ASSOCIATED_IMAGES", default_value = "thumbnail")]
    pub slide_associated_images: String,

    /// Logging level 0-4 (0 none, 1 requests and errors, 2 debug, 3-4 trace).
    #[arg(long, env = "VERBOSITY", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=6))]
    pub verbosity: u8,

    /// Log file (appended), or "syslog"; standard error when unset.
    #[arg(long, env = "LOGFILE")]
    pub logfile: Option<PathBuf>,

    /// Default JPEG quality 1-100.
    #[arg(long, env = "JPEG_QUALITY", default_value_t = 75, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: u8,

    /// PNG compression effort 0-9.
    #[arg(long, env = "PNG_QUALITY", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub png_quality: u8,

    /// WebP quality 0-100, or -1 for lossless.
    #[arg(long, env = "WEBP_QUALITY", default_value_t = 50, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-1..=100))]
    pub webp_quality: i32,

    /// AVIF quality 0-100, or -1 for lossless.
    #[arg(long, env = "AVIF_QUALITY", default_value_t = 50, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-1..=100))]
    pub avif_quality: i32,

    /// AV1 encoder of AVIF answers: 0 auto (libavif's choice), 1 aom, 2 rav1e, 3 svt (or
    /// the name); an encoder this libavif lacks, or another value, is a start-up warning
    /// and means auto.
    #[arg(
        long,
        env = "AVIF_CODEC",
        default_value = "0",
        allow_hyphen_values = true
    )]
    pub avif_codec: String,

    /// TIFF answer compression: 0 none, 1 LZW, 2 deflate, 3 JPEG, 4 WebP, 5 zstd.
    #[arg(long, env = "TIFF_COMPRESSION", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=5))]
    pub tiff_compression: u8,

    /// TIFF answer quality: JPEG/WebP 0-100, deflate level 1-9, zstd level 1-19.
    #[arg(long, env = "TIFF_QUALITY", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub tiff_quality: u8,

    /// Encoded-answer cache size in MB (0 disables it).
    #[arg(long, env = "MAX_IMAGE_CACHE_SIZE", default_value_t = 5.0)]
    pub max_image_cache_size: f64,

    /// Decoded-tile cache size in MB (0 disables it): decoded tiles of compressed images,
    /// shared by overlapping regions and re-encoded tiles (not in the original).
    #[arg(long, env = "DECODED_CACHE_SIZE", default_value_t = 128.0)]
    pub decoded_cache_size: f64,

    /// MB of flat images (JPEG, PNG, TIFF without a pyramid) held decoded in memory, least
    /// recently used evicted; a larger one is refused (not in the original).
    #[arg(long, env = "MAX_FLAT_CACHE_SIZE", default_value_t = 1024.0)]
    pub max_flat_cache_size: f64,

    /// PYRAMID_CACHE_DIR, PYRAMID_CACHE_SIZE and PYRAMID_THRESHOLD.
    #[command(flatten)]
    pub pyramids: PyramidArgs,

    /// MB that renders in progress may take together, estimated from each view before it
    /// is decoded; beyond it 503 + Retry-After; 0 no limit (not in the original).
    #[arg(long, env = "MAX_RENDER_MEMORY", default_value_t = 1024.0)]
    pub max_render_memory: f64,

    /// memcached servers, comma-separated host[:port] (default port 11211); empty disables.
    #[arg(long, env = "MEMCACHED_SERVERS", default_value = "")]
    pub memcached_servers: String,

    /// Redis (or Valkey) URL for the shared tier instead of memcached, e.g.
    /// redis://cache:6379/0 (not in the original).
    #[arg(long, env = "REDIS_URL", default_value = "")]
    pub redis_url: String,

    /// Ids served from object storage: "id-prefix=>URL" items, comma-separated, where URL
    /// is s3://bucket/prefix/ or an http(s):// base with Range support; ids starting with
    /// id-prefix/ (every id for an empty prefix) are objects under URL (not in the
    /// original). S3 settings come from the AWS_* variables and ~/.aws files.
    #[arg(long, env = "OBJECT_MAP", default_value = "")]
    pub object_map: String,

    /// RAM cache of object-storage blocks in MB (TIFF directories, tiles read nearby).
    #[arg(long, env = "OBJECT_CACHE_SIZE", default_value_t = 64.0)]
    pub object_cache_size: f64,

    /// Object-storage block size in KB: the least a request fetches.
    #[arg(long, env = "OBJECT_BLOCK_SIZE", default_value_t = 64, value_parser = clap::value_parser!(u64).range(4..=16384))]
    pub object_block_size: u64,

    /// Seconds an open object (and an image's purge generation in the shared tier) is
    /// trusted before it is checked again (a HEAD request; a tier lookup).
    #[arg(long, env = "REVALIDATE_INTERVAL", default_value_t = 10)]
    pub revalidate_interval: u64,

    /// Token of the admin endpoint POST /admin/purge/<id> (Authorization: Bearer
    /// <token>); unset turns the endpoint off (404).
    #[arg(long, env = "ADMIN_TOKEN")]
    pub admin_token: Option<String>,

    /// Addresses (IPs or CIDR ranges, comma-separated; "*" for any) of proxies whose
    /// X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Prefix are believed when
    /// building info.json ids; empty believes none (BASE_URL wins over both).
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Access policy: a TOML file of rules matched against image ids (open, degraded to a
    /// size, restricted; granted by login, kiosk addresses, a proxy's identity header,
    /// signed URLs or bearer tokens), with the IIIF Authorization Flow 2.0 services;
    /// unset leaves every image open (not in the original).
    #[arg(long = "auth-policy", env = "AUTH_POLICY", value_name = "FILE")]
    pub auth_policy: Option<PathBuf>,

    /// Seconds an answer stays in memcached or Redis (memcached keeps at most 30 days).
    #[arg(long, env = "MEMCACHED_TIMEOUT", default_value_t = 86400)]
    pub memcached_timeout: u32,

    /// Number of open-image descriptions kept (-1 unlimited).
    #[arg(
        long,
        env = "MAX_METADATA_CACHE_SIZE",
        default_value_t = 1000,
        allow_negative_numbers = true
    )]
    pub max_metadata_cache_size: i64,

    /// Largest output width or height in pixels (-1 for no limit).
    #[arg(
        long,
        env = "MAX_CVT",
        default_value_t = 5000,
        allow_negative_numbers = true
    )]
    pub max_cvt: i64,

    /// 1 allows output larger than the source region, 0 refuses it.
    #[arg(long, env = "ALLOW_UPSCALING", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub allow_upscaling: u8,

    /// Resampling: 0 nearest, 1 bilinear, 2 bicubic, 3 Lanczos-3.
    #[arg(long, env = "INTERPOLATION", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub interpolation: u8,

    /// 1 embeds the image's ICC profile in answers, 0 strips it.
    #[arg(long, env = "EMBED_ICC", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub embed_icc: u8,

    /// Largest ICC profile embedded, in bytes (-1 no limit, 0 none).
    #[arg(
        long,
        env = "MAX_ICC",
        default_value_t = 65536,
        allow_negative_numbers = true
    )]
    pub max_icc: i64,

    /// Watermark image (a TIFF) added to every answer.
    #[arg(long, env = "WATERMARK", value_name = "FILE")]
    pub watermark: Option<PathBuf>,

    /// Chance 0-1 that each block of an answer gets the watermark.
    #[arg(long, env = "WATERMARK_PROBABILITY", default_value_t = 1.0)]
    pub watermark_probability: f32,

    /// Opacity 0-1 of the watermark.
    #[arg(long, env = "WATERMARK_OPACITY", default_value_t = 1.0)]
    pub watermark_opacity: f32,

    /// 1 sends stored JPEG tiles as they are when no processing is asked; 0 re-encodes.
    #[arg(long, env = "CODEC_PASSTHROUGH", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub codec_passthrough: u8,

    /// Answer `/health` (the process is up) and `/ready` (the image directory is
    /// readable) for load balancers and orchestrators; 0 turns both off (404).
    #[arg(long, env = "HEALTH_ENDPOINTS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub health_endpoints: u8,

    /// Serve the pages for people: `/` lists the images, `/viewer/<id>` opens one in the
    /// built-in OpenSeadragon viewer; 0 turns both off (404).
    #[arg(long, env = "VIEWER", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub viewer: u8,

    /// Answer `/metrics` (Prometheus text format); 0 turns it off (404).
    #[arg(long, env = "METRICS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub metrics: u8,

    /// Access-Control-Allow-Origin value ("*" or an origin); unset disables CORS.
    #[arg(long, env = "CORS")]
    pub cors: Option<String>,

    /// Public base URL of the IIIF service, used for info.json ids behind a rewriting proxy.
    #[arg(long, env = "BASE_URL")]
    pub base_url: Option<String>,

    /// Cache-Control header of image answers.
    #[arg(long, env = "CACHE_CONTROL", default_value = "max-age=86400")]
    pub cache_control: String,

    /// URL prefix to protocol map, "prefix=>protocol" (comma-separated list; protocols
    /// IIIF, IIP, DeepZoom, Zoomify).
    #[arg(
        long,
        env = "URI_MAP",
        default_value = "iiif=>IIIF,deepzoom=>DeepZoom,zoomify=>Zoomify"
    )]
    pub uri_map: String,

    /// Default IIIF API version (2 or 3).
    #[arg(long, env = "IIIF_VERSION", default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub iiif_version: u8,

    /// Raw JSON object merged into every info.json.
    #[arg(long, env = "IIIF_EXTRA_INFO")]
    pub iiif_extra_info: Option<String>,

    /// 1 offers the original's extra IIIF qualities negative, stretch, equalization and
    /// log (listed in info.json `extraQualities`); 0 refuses them (400).
    #[arg(long, env = "IIIF_EXTENSIONS", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub iiif_extensions: u8,

    /// Delimiter of a page (or stack slice) number at the end of a IIIF identifier, e.g.
    /// `;` for `stack.tif;3`; unset: identifiers are whole file names.
    #[arg(long, env = "IIIF_DELIMITER")]
    pub iiif_delimiter: Option<String>,

    /// Rights statement: IIIF v3 "rights", v2 "attribution".
    #[arg(long, env = "COPYRIGHT")]
    pub copyright: Option<String>,

    /// JPEG2000 quality layers decoded: 0 half of those in the file (the default), -1
    /// all, n at most n (IIP LYR may ask for fewer).
    #[arg(
        long,
        env = "MAX_LAYERS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub max_layers: i32,

    /// Kakadu JPEG2000 read mode (0 fast, 1 fussy, 2 resilient): accepted for
    /// compatibility; it has no effect, as this server has no Kakadu build.
    #[arg(long, env = "KAKADU_READMODE", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub kakadu_readmode: u8,

    /// The original's dynamic decoder plug-ins (comma-separated libraries): not loaded, as
    /// every format is built in; setting it gives a start-up warning.
    #[arg(long, env = "DECODER_MODULES")]
    pub decoder_modules: Option<String>,

    /// Worker threads for decoding and encoding (default: all cores).
    #[arg(long, env = "OMP_NUM_THREADS")]
    pub omp_num_threads: Option<usize>,

    /// The bounds of the FastCGI front end (FCGI_*).
    #[command(flatten)]
    pub fastcgi: FastCgiConfig,
}

/// A protocol reachable through URI_MAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// IIIF Image API.
    Iiif,
    /// Internet Imaging Protocol (query string).
    Iip,
    /// DeepZoom.
    DeepZoom,
    /// Zoomify.
    Zoomify,
}

/// One URI_MAP entry: requests whose path starts with `/prefix/` go to `protocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriMap {
    /// Path prefix without slashes.
    pub prefix: String,
    /// Protocol handling it.
    pub protocol: Protocol,
}

/// A setting that cannot be used: the variable it came from and a one-line reason that
/// names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ConfigError {
    /// The environment variable (or the flag's variable name), e.g. `URI_MAP`.
    pub variable: &'static str,
    /// Why the value cannot be used, naming the variable.
    pub reason: String,
}

impl ConfigError {
    fn new(variable: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            variable,
            reason: reason.into(),
        }
    }
}

/// The configuration as the server uses it: parsed and checked once, at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where images are found and how they are kept open.
    pub images: ImageSettings,
    /// The caches of answers and decoded tiles, and the shared tier.
    pub caches: CacheSettings,
    /// How answers are rendered and encoded (the watermark is loaded by the application,
    /// from [`Settings::watermark`]).
    pub output: render::Settings,
    /// WATERMARK with its probability and opacity.
    pub watermark: Option<WatermarkSettings>,
    /// What the handler answers and how (protocols, headers, endpoints).
    pub web: WebSettings,
    /// AUTH_POLICY, parsed (None: every image open).
    pub access: Option<Policy>,
}

/// Where images are found (files and objects) and how they are kept open.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// FILESYSTEM_SUFFIX, appended to every id.
    pub suffix: String,
    /// FILENAME_PATTERN, marking the files of a sequence.
    pub pattern: String,
    /// MAX_METADATA_CACHE_SIZE: how many open images are kept (unlimited as 2^20).
    pub open_images: usize,
    /// MAX_FLAT_CACHE_SIZE in bytes: flat images held decoded in memory.
    pub flat_bytes: u64,
    /// PYRAMID_CACHE_DIR, PYRAMID_CACHE_SIZE and PYRAMID_THRESHOLD (None: no directory).
    pub pyramids: Option<PyramidSettings>,
    /// OBJECT_MAP's rules (id prefix, store URL), then FILESYSTEM_PREFIX's when a URL.
    pub object_rules: Vec<(String, String)>,
    /// OBJECT_CACHE_SIZE, MB of object blocks.
    pub object_cache_mb: f64,
    /// OBJECT_BLOCK_SIZE in KB.
    pub object_block_kb: u64,
    /// REVALIDATE_INTERVAL: how long an open object and a purge generation are trusted.
    pub revalidate: Duration,
    /// SLIDE_ASSOCIATED_IMAGES: the associated images of slides that are served.
    pub associated: Vec<Associated>,
}

/// The options of the pyramid cache, shared by the server, `iipsrv warm` and `iipsrv check`.
#[derive(Debug, Clone, clap::Args)]
pub struct PyramidArgs {
    /// Directory where pyramids of large flat images (JPEG, PNG, striped or single-level
    /// TIFF over PYRAMID_THRESHOLD) are built on first use and kept; empty: none are built,
    /// flat images are served from memory as before (not in the original).
    #[arg(long = "pyramid-cache-dir", env = "PYRAMID_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// MB of disk the built pyramids may take; the least recently used are deleted beyond
    /// it (not in the original).
    #[arg(
        long = "pyramid-cache-size",
        value_name = "MB",
        env = "PYRAMID_CACHE_SIZE",
        default_value_t = 10240.0
    )]
    pub cache_size: f64,

    /// Megapixels above which a flat image gets a pyramid built in PYRAMID_CACHE_DIR
    /// rather than its levels made in memory (not in the original).
    #[arg(
        long = "pyramid-threshold",
        value_name = "MEGAPIXELS",
        env = "PYRAMID_THRESHOLD",
        default_value_t = 16.0
    )]
    pub threshold: f64,
}

impl PyramidArgs {
    /// PYRAMID_CACHE_DIR and its size and threshold, when the directory is set.
    pub fn settings(&self) -> Result<Option<PyramidSettings>, ConfigError> {
        let Some(dir) = self
            .cache_dir
            .as_ref()
            .filter(|d: &&PathBuf| !d.as_os_str().is_empty())
        else {
            return Ok(None);
        };
        let mb = megabytes("PYRAMID_CACHE_SIZE", self.cache_size)?;
        let threshold = self.threshold;
        if !threshold.is_finite() || threshold < 0.0 {
            return Err(ConfigError::new(
                "PYRAMID_THRESHOLD",
                format!("PYRAMID_THRESHOLD={threshold}: megapixels, 0 or more"),
            ));
        }
        Ok(Some(PyramidSettings {
            dir: dir.clone(),
            limit_bytes: (mb * 1048576.0) as u64,
            threshold_pixels: (threshold * 1e6) as u64,
        }))
    }
}

/// Where and when pyramids of large flat images are built.
#[derive(Debug, Clone, PartialEq)]
pub struct PyramidSettings {
    /// PYRAMID_CACHE_DIR.
    pub dir: PathBuf,
    /// PYRAMID_CACHE_SIZE in bytes.
    pub limit_bytes: u64,
    /// PYRAMID_THRESHOLD in pixels.
    pub threshold_pixels: u64,
}

/// The in-process caches and the shared tier.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// MAX_IMAGE_CACHE_SIZE, MB of encoded answers (0: none).
    pub answers_mb: f64,
    /// DECODED_CACHE_SIZE, MB of decoded tiles (0: none).
    pub decoded_mb: f64,
    /// The shared tier, when MEMCACHED_SERVERS or REDIS_URL is set.
    pub tier: Option<Tier>,
    /// MEMCACHED_TIMEOUT: how long an answer stays in the tier.
    pub tier_expiry: Duration,
}

/// The engine of the shared tier: one of the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tier {
    /// MEMCACHED_SERVERS: host[:port] items, comma-separated.
    Memcached(String),
    /// REDIS_URL.
    Redis(String),
}

/// WATERMARK, WATERMARK_PROBABILITY and WATERMARK_OPACITY.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkSettings {
    /// The watermark image.
    pub path: PathBuf,
    /// Chance 0-1 that a block of an answer gets it.
    pub probability: f32,
    /// Its opacity, 0-1.
    pub opacity: f32,
}

/// What the handler answers, and the headers and endpoints around it.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// URI_MAP: path prefixes to protocols.
    pub maps: Vec<UriMap>,
    /// IIIF_VERSION: the IIIF API version of paths that do not name one.
    pub iiif_version: Version,
    /// IIIF_EXTRA_INFO: merged into every info.json.
    pub extra_info: Option<serde_json::Map<String, serde_json::Value>>,
    /// COPYRIGHT: IIIF v3 "rights", v2 "attribution".
    pub copyright: Option<String>,
    /// IIIF_EXTENSIONS: the extra qualities are offered.
    pub iiif_extensions: bool,
    /// IIIF_DELIMITER (non-empty): separates a page number from a IIIF identifier.
    pub iiif_delimiter: Option<String>,
    /// MAX_CVT and ALLOW_UPSCALING.
    pub limits: SizeLimits,
    /// CORS: the Access-Control-Allow-Origin value.
    pub cors: Option<String>,
    /// BASE_URL: the public base of info.json ids (non-empty).
    pub base_url: Option<String>,
    /// CACHE_CONTROL of image answers.
    pub cache_control: String,
    /// HEALTH_ENDPOINTS: `/health` and `/ready`.
    pub health: bool,
    /// VIEWER: `/` and `/viewer/<id>`.
    pub viewer: bool,
    /// METRICS: `/metrics`.
    pub metrics: bool,
    /// ADMIN_TOKEN (non-empty): turns on `POST /admin/purge/<id>`.
    pub admin_token: Option<String>,
    /// TRUSTED_PROXIES.
    pub proxies: Trusted,
}

impl Config {
    /// Parses the process arguments and environment.
    pub fn from_env() -> Config {
        Config::parse()
    }

    /// Parses explicit arguments (and the environment), for tests and embedding.
    pub fn from_args<I, T>(args: I) -> std::result::Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::try_parse_from(args)
    }

    /// The typed settings, every value checked; the first unusable one is the error.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        if self.omp_num_threads == Some(0) {
            return Err(ConfigError::new(
                "OMP_NUM_THREADS",
                "OMP_NUM_THREADS must be at least 1",
            ));
        }
        let web = self.web_settings()?;
        let access = self.access_policy()?;
        refuse_open_proxies(&web.proxies, access.as_ref())?;
        Ok(Settings {
            images: self.image_settings()?,
            caches: self.cache_settings()?,
            output: self.output_settings()?,
            watermark: self.watermark.clone().map(|path| WatermarkSettings {
                path,
                probability: self.watermark_probability,
                opacity: self.watermark_opacity,
            }),
            web,
            access,
        })
    }

    /// Settings that are accepted but do nothing here, each as a one-line warning for the
    /// start-up log, so a configuration moved from the original is not silently half-read.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(m) = self
            .decoder_modules
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            w.push(format!(
                "DECODER_MODULES={m} is ignored: decoders are built in (TIFF, JPEG2000, JPEG, PNG), no modules are loaded"
            ));
        }
        w.extend(self.avif_codec().1);
        w
    }

    /// The AVIF encoder to use, and the warning when AVIF_CODEC cannot be honoured: a value
    /// naming no encoder, one this libavif was built without, or any but auto in a build
    /// without AVIF. libavif's own choice (auto) in each of those cases.
    fn avif_codec(&self) -> (avif::Codec, Option<String>) {
        let code = self.avif_codec.trim();
        let Some(codec) = avif::Codec::from_setting(code) else {
            let w = format!(
                "AVIF_CODEC={code} names no encoder (0 auto, 1 aom, 2 rav1e, 3 svt): auto is used"
            );
            return (avif::Codec::Auto, Some(w));
        };
        if codec == avif::Codec::Auto || avif::can_encode(codec) {
            return (codec, None);
        }
        let w = if avif::BUILT {
            format!(
                "AVIF_CODEC={code}: libavif has no {} encoder (it has: {}): auto is used",
                codec.name(),
                avif::versions()
            )
        } else {
            format!("AVIF_CODEC={code} is ignored: not built with AVIF (cargo feature `avif`)")
        };
        (avif::Codec::Auto, Some(w))
    }

    /// FILESYSTEM_PREFIX when it names a directory (not a URL).
    pub fn local_prefix(&self) -> Option<&Path> {
        self.filesystem_prefix
            .as_deref()
            .filter(|p| !p.to_str().is_some_and(is_url))
    }

    fn image_settings(&self) -> Result<ImageSettings, ConfigError> {
        Ok(ImageSettings {
            suffix: self.filesystem_suffix.clone(),
            pattern: self.filename_pattern.clone(),
            open_images: usize::try_from(self.max_metadata_cache_size).unwrap_or(1 << 20),
            flat_bytes: (megabytes("MAX_FLAT_CACHE_SIZE", self.max_flat_cache_size)? * 1048576.0)
                as u64,
            pyramids: self.pyramids.settings()?,
            object_rules: self.object_rules()?,
            object_cache_mb: megabytes("OBJECT_CACHE_SIZE", self.object_cache_size)?,
            object_block_kb: self.object_block_size,
            revalidate: Duration::from_secs(self.revalidate_interval),
            associated: associated_images(&self.slide_associated_images)?,
        })
    }

    /// The object rules (id prefix, URL): OBJECT_MAP's, then FILESYSTEM_PREFIX's when it
    /// is a URL (for every id).
    fn object_rules(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut rules = parse_map(&self.object_map)?;
        if let Some(url) = self.filesystem_prefix.as_ref().and_then(|p| p.to_str()) {
            if is_url(url) {
                rules.push((String::new(), url.to_string()));
            }
        }
        if !rules.is_empty() && !cfg!(feature = "object-storage") {
            return Err(ConfigError::new(
                "OBJECT_MAP",
                "OBJECT_MAP or a FILESYSTEM_PREFIX URL needs object storage, which this build \
                 leaves out (cargo feature `object-storage`)",
            ));
        }
        Ok(rules)
    }

    fn cache_settings(&self) -> Result<CacheSettings, ConfigError> {
        Ok(CacheSettings {
            answers_mb: megabytes("MAX_IMAGE_CACHE_SIZE", self.max_image_cache_size)?,
            decoded_mb: megabytes("DECODED_CACHE_SIZE", self.decoded_cache_size)?,
            tier: self.tier()?,
            tier_expiry: Duration::from_secs(self.memcached_timeout.into()),
        })
    }

    /// MEMCACHED_SERVERS or REDIS_URL, not both, and only when this build has the engine.
    fn tier(&self) -> Result<Option<Tier>, ConfigError> {
        let tier = match (self.memcached_servers.trim(), self.redis_url.trim()) {
            ("", "") => return Ok(None),
            (m, "") => Tier::Memcached(m.to_string()),
            ("", r) => Tier::Redis(r.to_string()),
            _ => {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "set MEMCACHED_SERVERS or REDIS_URL, not both: the tier is one engine",
                ))
            }
        };
        let (variable, built) = match tier {
            Tier::Memcached(_) => ("MEMCACHED_SERVERS", cfg!(feature = "memcached")),
            Tier::Redis(_) => ("REDIS_URL", cfg!(feature = "redis")),
        };
        if !built {
            return Err(ConfigError::new(
                variable,
                format!("{variable} is set, but this build leaves that engine out (cargo features `memcached`, `redis`)"),
            ));
        }
        Ok(Some(tier))
    }

    fn output_settings(&self) -> Result<render::Settings, ConfigError> {
        let memory = megabytes("MAX_RENDER_MEMORY", self.max_render_memory)?;
        Ok(render::Settings {
            interpolation: Interpolation::from_setting(self.interpolation),
            jpeg_quality: self.jpeg_quality,
            png_level: self.png_quality,
            webp_quality: u8::try_from(self.webp_quality).ok(),
            avif_quality: u8::try_from(self.avif_quality).ok(),
            avif_codec: self.avif_codec().0,
            tiff_compression: TiffCompression::from_setting(self.tiff_compression),
            tiff_quality: self.tiff_quality,
            passthrough: self.codec_passthrough == 1,
            max_icc: match (self.embed_icc, self.max_icc) {
                (0, _) => 0,
                (_, n) => usize::try_from(n).unwrap_or(usize::MAX),
            },
            max_layers: MaxLayers::from_setting(self.max_layers),
            watermark: None,
            memory: MemoryBudget::new((memory * 1048576.0) as u64),
        })
    }

    fn web_settings(&self) -> Result<WebSettings, ConfigError> {
        let proxies = Trusted::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::new("TRUSTED_PROXIES", e.to_string()))?;
        Ok(WebSettings {
            maps: self.uri_maps()?,
            iiif_version: if self.iiif_version == 2 {
                Version::V2
            } else {
                Version::V3
            },
            extra_info: self.extra_info()?,
            copyright: self.copyright.clone(),
            iiif_extensions: self.iiif_extensions == 1,
            iiif_delimiter: self.iiif_delimiter.clone().filter(|d| !d.is_empty()),
            limits: SizeLimits {
                max_size: u32::try_from(self.max_cvt).ok().filter(|&m| m > 0),
                allow_upscaling: self.allow_upscaling == 1,
            },
            cors: self.cors.clone(),
            base_url: self.base_url.clone().filter(|b| !b.is_empty()),
            cache_control: self.cache_control.clone(),
            health: self.health_endpoints == 1,
            viewer: self.viewer == 1,
            metrics: self.metrics == 1,
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            proxies,
        })
    }

    /// AUTH_POLICY, read and parsed.
    fn access_policy(&self) -> Result<Option<Policy>, ConfigError> {
        let Some(path) = self
            .auth_policy
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        else {
            return Ok(None);
        };
        Policy::load(path).map(Some).map_err(|e| {
            ConfigError::new(
                "AUTH_POLICY",
                format!("AUTH_POLICY {}: {e}", path.display()),
            )
        })
    }

    /// The URI_MAP entries.
    fn uri_maps(&self) -> Result<Vec<UriMap>, ConfigError> {
        let bad = |reason: String| ConfigError::new("URI_MAP", reason);
        let mut maps = Vec::new();
        for item in self
            .uri_map
            .split([',', ' '])
            .filter(|s| !s.trim().is_empty())
        {
            let (prefix, proto) = item
                .split_once("=>")
                .ok_or_else(|| bad(format!("URI_MAP entry {item:?} is not prefix=>protocol")))?;
            let protocol = match proto.trim().to_ascii_lowercase().as_str() {
                "iiif" => Protocol::Iiif,
                "iip" => Protocol::Iip,
                "deepzoom" => Protocol::DeepZoom,
                "zoomify" => Protocol::Zoomify,
                p => return Err(bad(format!("URI_MAP protocol {p:?} is not supported"))),
            };
            maps.push(UriMap {
                prefix: prefix.trim().trim_matches('/').to_string(),
                protocol,
            });
        }
        Ok(maps)
    }

    /// The parsed IIIF_EXTRA_INFO object.
    fn extra_info(
        &self,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ConfigError> {
        let Some(raw) = self
            .iiif_extra_info
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        else {
            return Ok(None);
        };
        let text = if raw.trim_start().starts_with('{') {
            raw.to_string()
        } else {
            format!("{{{raw}}}")
        };
        match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(m)) => Ok(Some(m)),
            _ => Err(ConfigError::new(
                "IIIF_EXTRA_INFO",
                "IIIF_EXTRA_INFO is not a JSON object",
            )),
        }
    }
}

/// Whether a FILESYSTEM_PREFIX or OBJECT_MAP target names objects rather than a directory.
pub(crate) fn is_url(s: &str) -> bool {
    ["s3://", "http://", "https://"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Parses OBJECT_MAP: `id-prefix=>URL` items, comma-separated.
fn parse_map(map: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let bad = |reason: String| ConfigError::new("OBJECT_MAP", reason);
    let mut rules = Vec::new();
    for item in map.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (prefix, url) = item
            .split_once("=>")
            .ok_or_else(|| bad(format!("OBJECT_MAP entry {item:?} is not prefix=>URL")))?;
        let url = url.trim();
        if !is_url(url) {
            return Err(bad(format!(
                "OBJECT_MAP target {url:?} is not an s3://, http:// or https:// URL"
            )));
        }
        rules.push((prefix.trim().trim_matches('/').to_string(), url.to_string()));
    }
    Ok(rules)
}

/// SLIDE_ASSOCIATED_IMAGES: `none`, or names of associated images separated by commas.
fn associated_images(list: &str) -> Result<Vec<Associated>, ConfigError> {
    if list.trim() == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|name| {
            Associated::from_name(name.trim()).ok_or_else(|| {
                ConfigError::new(
                    "SLIDE_ASSOCIATED_IMAGES",
                    format!("{:?} is not label, macro, thumbnail or none", name.trim()),
                )
            })
        })
        .collect()
}

/// A size in MB from `variable`, which must be a number >= 0.
fn megabytes(variable: &'static str, value: f64) -> Result<f64, ConfigError> {
    if value < 0.0 || !value.is_finite() {
        return Err(ConfigError::new(
            variable,
            format!("{variable} must be a number of MB >= 0"),
        ));
    }
    Ok(value)
}

/// The bounds of the FastCGI front end, each a limit of `iipsrv_core::fastcgi::Limits`:
/// a connection that goes past one is closed with a log line.
#[derive(Debug, Clone, clap::Args)]
pub struct FastCgiConfig {
    /// FastCGI: the most parameter bytes one connection holds while its requests arrive
    /// (one request's, or its multiplexed requests' together).
    #[arg(long, env = "FCGI_MAX_PARAMS", default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1024..=16_777_216))]
    pub fcgi_max_params: u32,

    /// FastCGI: the most name-value pairs of one request.
    #[arg(long, env = "FCGI_MAX_PAIRS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub fcgi_max_pairs: u32,

    /// FastCGI: the most request-body (STDIN) bytes of one request; bodies are read and
    /// dropped (no answer needs one).
    #[arg(long, env = "FCGI_MAX_STDIN", default_value_t = 65536, value_parser = clap::value_parser!(u32).range(0..=1_073_741_824))]
    pub fcgi_max_stdin: u32,

    /// FastCGI: the most requests multiplexed on one connection at once (FCGI_MAX_REQS).
    #[arg(long, env = "FCGI_MAX_REQS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub fcgi_max_reqs: u32,

    /// FastCGI: the most connections served at once (FCGI_MAX_CONNS); more wait in the
    /// listen backlog.
    #[arg(long, env = "FCGI_MAX_CONNS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub fcgi_max_conns: u32,

    /// FastCGI: seconds a connection may keep a request it began waiting for its next
    /// bytes (slow senders); idle kept-alive connections wait as long as they like.
    #[arg(long, env = "FCGI_READ_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub fcgi_read_timeout: u64,
}

impl FastCgiConfig {
    /// The limits the FastCGI record layer holds each connection to.
    pub fn limits(&self) -> iipsrv_core::fastcgi::Limits {
        iipsrv_core::fastcgi::Limits {
            params_bytes: self.fcgi_max_params as usize,
            pairs: self.fcgi_max_pairs as usize,
            stdin_bytes: self.fcgi_max_stdin as usize,
            requests: self.fcgi_max_reqs as usize,
            connections: self.fcgi_max_conns as usize,
        }
    }

    /// The longest wait for the rest of a request that has begun.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.fcgi_read_timeout)
    }
}

/// Refuses an access policy whose kiosk or external rules would believe forwarded headers
/// from every peer (TRUSTED_PROXIES=*): anyone could then claim an address or identity.
fn refuse_open_proxies(proxies: &Trusted, policy: Option<&Policy>) -> Result<(), ConfigError> {
    if policy.is_some_and(Policy::believes_proxies) && proxies.trusts_everyone() {
        return Err(ConfigError::new(
            "TRUSTED_PROXIES",
            "TRUSTED_PROXIES trusts every peer, so with AUTH_POLICY's kiosk or external rules \
             anyone could claim their address or identity: list the proxies",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_maps_parse() {
        let m =
            parse_map("remote=>s3://images/scans/, web => https://example.org/iiif").expect("ok");
        assert_eq!(m[0], ("remote".into(), "s3://images/scans/".into()));
        assert_eq!(m[1], ("web".into(), "https://example.org/iiif".into()));
        assert!(parse_map("x=>/var/images").is_err());
        assert!(parse_map("nonsense").is_err());
    }

    fn settings(args: &[&str]) -> Result<Settings, ConfigError> {
        let all = std::iter::once("iipsrv").chain(args.iter().copied());
        Config::from_args(all).expect("parses").settings()
    }

    #[test]
    fn defaults_match_the_original() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.output.jpeg_quality, 75);
        assert_eq!(s.web.limits.max_size, Some(5000));
        assert!(s.web.limits.allow_upscaling);
        assert_eq!(s.web.cache_control, "max-age=86400");
        assert_eq!(s.web.maps[0].prefix, "iiif");
        assert_eq!(s.web.iiif_version, Version::V3);
        assert_eq!(s.output.webp_quality, Some(50));
        assert_eq!(s.output.avif_quality, Some(50));
        assert_eq!(s.output.avif_codec, avif::Codec::Auto);
        assert_eq!(s.output.tiff_compression, TiffCompression::Deflate);
        assert_eq!(s.output.tiff_quality, 1);
        assert!(!s.web.iiif_extensions);
        assert_eq!(s.web.iiif_delimiter, None);
        assert_eq!(s.output.max_layers, MaxLayers::Half);
        assert_eq!(s.images.revalidate, Duration::from_secs(10));
        assert!(s.caches.tier.is_none());
    }

    #[test]
    fn decoder_modules_is_a_warning_not_an_error() {
        let args = ["iipsrv", "--decoder-modules", "/usr/lib/iipsrv/libkdu.so"];
        let c = Config::from_args(args).expect("parses");
        assert!(c.settings().is_ok());
        assert!(c.warnings()[0].starts_with("DECODER_MODULES=/usr/lib/iipsrv/libkdu.so is ignored"));
        let plain = Config::from_args(["iipsrv", "--decoder-modules", ""]).expect("parses");
        assert!(plain.warnings().is_empty());
    }

    #[test]
    fn avif_codec_falls_back_to_auto_with_a_warning() {
        let config = |code: &str| {
            Config::from_args(["iipsrv", "--avif-codec", code, "--avif-quality", "-1"])
                .expect("parses")
        };
        let bogus = config("7");
        assert_eq!(
            bogus.settings().expect("ok").output.avif_codec,
            avif::Codec::Auto
        );
        assert_eq!(bogus.settings().expect("ok").output.avif_quality, None);
        assert!(bogus.warnings()[0].starts_with("AVIF_CODEC=7 names no encoder"));
        assert!(config("0").warnings().is_empty());
        for (code, codec) in [("1", avif::Codec::Aom), ("3", avif::Codec::Svt)] {
            let c = config(code);
            let chosen = c.settings().expect("ok").output.avif_codec;
            if avif::can_encode(codec) {
                assert_eq!(chosen, codec);
                assert!(c.warnings().is_empty());
            } else {
                assert_eq!(chosen, avif::Codec::Auto);
                assert!(c.warnings()[0].starts_with(&format!("AVIF_CODEC={code}")));
            }
        }
        assert!(Config::from_args(["iipsrv", "--avif-quality", "101"]).is_err());
    }

    #[test]
    fn codes_become_typed_values() {
        let s = settings(&[
            "--max-cvt",
            "-1",
            "--webp-quality",
            "-1",
            "--embed-icc",
            "0",
        ])
        .expect("settings");
        assert_eq!(s.web.limits.max_size, None);
        assert_eq!(s.output.webp_quality, None);
        assert_eq!(s.output.max_icc, 0);
        let s = settings(&[
            "--max-layers",
            "-1",
            "--tiff-compression",
            "3",
            "--viewer",
            "0",
        ])
        .expect("settings");
        assert_eq!(s.output.max_layers, MaxLayers::All);
        assert_eq!(s.output.tiff_compression, TiffCompression::Jpeg);
        assert!(!s.web.viewer);
    }

    #[test]
    fn bad_values_are_refused_naming_the_variable() {
        assert!(Config::from_args(["iipsrv", "--jpeg-quality", "0"]).is_err());
        assert!(Config::from_args(["iipsrv", "--iiif-version", "4"]).is_err());
        for (args, variable) in [
            (&["--uri-map", "x=>nope"][..], "URI_MAP"),
            (&["--iiif-extra-info", "[1]"][..], "IIIF_EXTRA_INFO"),
            (&["--decoded-cache-size=-1"][..], "DECODED_CACHE_SIZE"),
            (&["--object-map", "a=>ftp://x"][..], "OBJECT_MAP"),
            (&["--trusted-proxies", "x"][..], "TRUSTED_PROXIES"),
            (&["--omp-num-threads", "0"][..], "OMP_NUM_THREADS"),
            (
                &["--memcached-servers", "m", "--redis-url", "redis://r/"][..],
                "REDIS_URL",
            ),
        ] {
            let e = settings(args).expect_err("refused");
            assert_eq!(e.variable, variable);
            assert!(e.to_string().contains(variable), "{e}");
        }
    }
}
