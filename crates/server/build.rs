//! Embeds the viewer's front end into the binary: OpenSeadragon's built script and button
//! images, from the npm package pinned in `viewer/package-lock.json`, so `/viewer/<id>`
//! works offline with no CDN and no files beside the binary. When the package is not
//! installed yet, `npm ci` is run in `viewer/` (npm's registry or its local cache); when
//! that is impossible the build still succeeds, with a warning, and the viewer page says
//! what is missing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the npm package keeps its built files.
const OSD_BUILD: &str = "../../viewer/node_modules/openseadragon/build/openseadragon";

fn main() {
    println!("cargo:rerun-if-changed=../../viewer/package-lock.json");
    println!("cargo:rerun-if-changed={OSD_BUILD}/openseadragon.min.js");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let build = root.join(OSD_BUILD);
    if !build.join("openseadragon.min.js").is_file() {
        install(&root.join("../../viewer"));
    }
    let files = if build.join("openseadragon.min.js").is_file() {
        assets(&build)
    } else {
        println!(
            "cargo:warning=OpenSeadragon is not installed (run `npm ci` in viewer/): \
             the /viewer pages will say so"
        );
        Vec::new()
    };
    let mut table = String::from("&[\n");
    for (name, path) in &files {
        let _ = writeln!(table, "    ({name:?}, include_bytes!({path:?})),");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("viewer_assets.rs"), table).expect("OUT_DIR is writable");
}

/// Runs `npm ci` in `viewer/`; a missing npm or registry only costs the viewer.
fn install(dir: &Path) {
    let ran = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--omit=dev"])
        .current_dir(dir)
        .status();
    if !matches!(ran, Ok(s) if s.success()) {
        println!("cargo:warning=`npm ci` in viewer/ failed: {ran:?}");
    }
}

/// The script and every button image, as (URL name, absolute path) pairs.
fn assets(build: &Path) -> Vec<(String, String)> {
    let mut files = vec![(
        "openseadragon.min.js".to_string(),
        build.join("openseadragon.min.js").display().to_string(),
    )];
    let mut images: Vec<PathBuf> = std::fs::read_dir(build.join("images"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    images.sort();
    for path in images {
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            files.push((format!("images/{name}"), path.display().to_string()));
        }
    }
    files
}
