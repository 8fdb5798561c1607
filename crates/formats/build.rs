//! Compiles the C parts of the codecs: `csrc/jpeg_rows.c` (row-by-row JPEG decoding for
//! `iipsrv convert`) against the libjpeg-turbo headers that turbojpeg-sys exports, and, with
//! the feature `avif`, `csrc/avif_encode.c` against the system libavif found by pkg-config;
//! with the feature `openslide`, the system OpenSlide's link directives; with the feature
//! `htj2k`, `csrc/ojph_encode.cpp` against the system OpenJPH.

fn main() {
    jpeg_rows();
    #[cfg(feature = "avif")]
    avif_encode();
    #[cfg(feature = "openslide")]
    openslide();
    #[cfg(feature = "htj2k")]
    ojph_encode();
}

/// The link directives of the system OpenSlide (`src/source/openslide/ffi.rs`); 3.4.1
/// (Debian 12) is the oldest its API is used as.
#[cfg(feature = "openslide")]
fn openslide() {
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("3.4")
        .probe("openslide")
    {
        panic!(
            "the `openslide` feature needs OpenSlide 3.4 or newer and its pkg-config file \
             (Debian: apt-get install libopenslide-dev), or build without it: {e}"
        );
    }
}

/// The C part of `src/codec/jpeg_bands.rs`.
fn jpeg_rows() {
    println!("cargo:rerun-if-changed=csrc/jpeg_rows.c");
    let mut build = cc::Build::new();
    build.file("csrc/jpeg_rows.c").warnings(true);
    if let Ok(dirs) = std::env::var("DEP_TURBOJPEG_INCLUDE") {
        for dir in dirs.split(',') {
            build.include(dir);
        }
    }
    build.compile("iipsrv_jpeg_rows");
}

/// The C part of `src/codec/avif.rs`; pkg-config also emits the link directives of
/// libavif. Version 0.11 (Debian 12) is the oldest the C part is written for.
#[cfg(feature = "avif")]
fn avif_encode() {
    println!("cargo:rerun-if-changed=csrc/avif_encode.c");
    let lib = match pkg_config::Config::new()
        .atleast_version("0.11")
        .probe("libavif")
    {
        Ok(lib) => lib,
        Err(e) => panic!(
            "the `avif` feature needs libavif 0.11 or newer and its pkg-config file \
             (Debian: apt-get install libavif-dev), or build with --no-default-features: {e}"
        ),
    };
    let mut build = cc::Build::new();
    build.file("csrc/avif_encode.c").warnings(true);
    for dir in &lib.include_paths {
        build.include(dir);
    }
    for (name, value) in &lib.defines {
        build.define(name, value.as_deref());
    }
    build.compile("iipsrv_avif_encode");
}

/// The C++ part of `src/codec/htj2k_encode.rs`, against OpenJPH 0.9 (Debian 12:
/// libopenjph-dev), whose headers are in `<openjph/...>`. Its pkg-config file is probed
/// for its presence only: Debian's lists no flags (empty Libs), so the library is named here.
#[cfg(feature = "htj2k")]
fn ojph_encode() {
    println!("cargo:rerun-if-changed=csrc/ojph_encode.cpp");
    let lib = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("openjph");
    if let Err(e) = lib {
        panic!(
            "the `htj2k` feature needs OpenJPH and its headers (Debian: apt-get install \
             libopenjph-dev), or build with --no-default-features: {e}"
        );
    }
    cc::Build::new()
        .cpp(true)
        .file("csrc/ojph_encode.cpp")
        .warnings(true)
        .compile("iipsrv_ojph_encode");
    println!("cargo:rustc-link-lib=openjph");
}
