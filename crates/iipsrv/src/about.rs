//! What `iipsrv --version` says: the version, the git commit of the build, the cargo
//! features and the formats and codecs compiled in — what a bug report or a package
//! inventory needs to know of a binary.

/// The long version text.
pub(crate) fn long_version() -> String {
    let features: Vec<&str> = [
        ("object-storage", cfg!(feature = "object-storage")),
        ("redis", cfg!(feature = "redis")),
        ("memcached", cfg!(feature = "memcached")),
        ("avif", cfg!(feature = "avif")),
        ("openslide", cfg!(feature = "openslide")),
    ]
    .iter()
    .filter_map(|&(name, on)| on.then_some(name))
    .collect();
    format!(
        "{} (commit {})\nfeatures: {}\nsources: {}\nanswers: {}",
        env!("CARGO_PKG_VERSION"),
        env!("IIPSRV_COMMIT"),
        if features.is_empty() {
            "none".to_string()
        } else {
            features.join(", ")
        },
        sources(),
        answers()
    )
}

/// The image files read (all built in: there are no decoder plug-ins).
const SOURCES: &str = "TIFF and BigTIFF (none, LZW, deflate, zstd, JPEG, WebP; \
    1-32 bits, float, CIELAB), JPEG2000 (OpenJPEG), JPEG (libjpeg-turbo), PNG";

/// The image files read, with OpenSlide's version when it is built in.
fn sources() -> String {
    #[cfg(feature = "openslide")]
    return format!(
        "{SOURCES}; other slide formats through OpenSlide {}",
        iipsrv_formats::source::openslide::version()
    );
    #[cfg(not(feature = "openslide"))]
    SOURCES.to_string()
}

/// The answer formats written, with libavif's encoders when AVIF is built in.
fn answers() -> String {
    let mut a = "JPEG (libjpeg-turbo), PNG, WebP (libwebp), TIFF".to_string();
    if iipsrv_formats::codec::avif::BUILT {
        a.push_str(&format!(
            ", AVIF (libavif: {})",
            iipsrv_formats::codec::avif::versions()
        ));
    }
    a
}
