//! Compiles `csrc/jpeg_rows.c` (row-by-row JPEG decoding for `iipsrv convert`) against the
//! libjpeg-turbo headers that turbojpeg-sys exports.

fn main() {
    jpeg_rows();
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
