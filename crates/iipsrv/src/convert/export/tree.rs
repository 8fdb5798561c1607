//! The files of a static tree and the server URLs they are the answers of: where each
//! layout puts its descriptor and tiles under OUT_DIR, and which DeepZoom and Zoomify tiles
//! a client asks ([`deepzoom()`], [`zoomify()`]; IIIF's are in [`super::iiif`]). Pure: no file
//! is touched here.
//!
//! Paths follow the protocols' own URL forms, as our server answers them: DeepZoom
//! `NAME.dzi` and `NAME_files/LEVEL/COL_ROW.jpg`
//! (<https://learn.microsoft.com/en-us/previous-versions/windows/silverlight/dotnet-windows-silverlight/cc645077(v=vs.95)>),
//! Zoomify `NAME/ImageProperties.xml` and `NAME/TileGroupN/Z-X-Y.jpg`, IIIF `NAME/info.json`
//! and `NAME/REGION/SIZE/0/default.jpg`.

use super::super::StaticLayout;
use iipsrv_core::info::ImageInfo;
use iipsrv_core::protocol::deepzoom;
use std::path::{Path, PathBuf};

/// Tiles per Zoomify tile group (directory), as Zoomify clients count them.
const ZOOMIFY_GROUP: u64 = 256;

/// One layout's tree of one image: the URLs asked of the server (the image's id there) and
/// the files written (the tree's NAME), both from the same relative rest.
#[derive(Debug, Clone)]
pub(super) struct Site {
    /// The layout.
    pub(super) layout: StaticLayout,
    /// The image's id on the in-process server, percent-encoded.
    id: String,
    /// The tree's name: its files are NAME.dzi and NAME_files (DeepZoom) or NAME/.
    name: String,
    /// The directory the tree is written in.
    dir: PathBuf,
}

impl Site {
    /// The tree of the image the server knows as `id`, named `name`, written under `dir`.
    pub(super) fn new(layout: StaticLayout, id: &str, name: &str, dir: &Path) -> Site {
        Site {
            layout,
            id: encode(id),
            name: name.to_string(),
            dir: dir.to_path_buf(),
        }
    }

    /// The server's URL prefix of the layout.
    fn prefix(&self) -> &'static str {
        match self.layout {
            StaticLayout::Iiif3 => "/iiif/3/",
            StaticLayout::Iiif2 => "/iiif/2/",
            StaticLayout::Deepzoom => "/deepzoom/",
            StaticLayout::Zoomify => "/zoomify/",
        }
    }

    /// What joins the name and a rest: DeepZoom's rests follow the name directly.
    fn joiner(&self) -> &'static str {
        match self.layout {
            StaticLayout::Deepzoom => "",
            _ => "/",
        }
    }

    /// The server URL whose answer is the file at `rest`.
    pub(super) fn url(&self, rest: &str) -> String {
        format!("{}{}{}{rest}", self.prefix(), self.id, self.joiner())
    }

    /// The file of `rest` in the tree.
    pub(super) fn file(&self, rest: &str) -> PathBuf {
        self.dir
            .join(format!("{}{}{rest}", self.name, self.joiner()))
    }

    /// The descriptor's rest: `.dzi`, `ImageProperties.xml` or `info.json`.
    pub(super) fn descriptor(&self) -> &'static str {
        match self.layout {
            StaticLayout::Deepzoom => ".dzi",
            StaticLayout::Zoomify => "ImageProperties.xml",
            StaticLayout::Iiif3 | StaticLayout::Iiif2 => "info.json",
        }
    }

    /// The entries the tree adds to its directory.
    pub(super) fn entries(&self) -> Vec<String> {
        entries(self.layout, &self.name)
    }
}

/// The entries a tree named `name` in `layout` adds to its directory, the descriptor last
/// (moved into place last, a client never finds it without its tiles).
pub(super) fn entries(layout: StaticLayout, name: &str) -> Vec<String> {
    match layout {
        StaticLayout::Deepzoom => vec![format!("{name}_files"), format!("{name}.dzi")],
        _ => vec![name.to_string()],
    }
}

/// `s` percent-encoded as one URL path segment (everything but unreserved characters).
pub(super) fn encode(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// The DeepZoom tiles a client asks, as rests: every level from 1×1 up, each with the
/// columns and rows of its size (⌈size / 2^k⌉, as clients compute it), but no more than the
/// pyramid level the server answers it from has (levels below the smallest pyramid level
/// are answered from that level).
pub(super) fn deepzoom(info: &ImageInfo) -> Vec<String> {
    let top = max_level(info);
    let mut rests = Vec::new();
    for level in 0..=top {
        let shrink = 1u64 << (top - level);
        let (w, h) = (
            (info.width as u64).div_ceil(shrink),
            (info.height as u64).div_ceil(shrink),
        );
        let r = deepzoom::resolution(info, level) as usize;
        let stored = &info.levels[info.levels.len() - 1 - r];
        let tile = stored.tile_width as u64;
        let across = w.div_ceil(tile).min(stored.tiles_across() as u64);
        let down = h.div_ceil(tile).min(stored.tiles_down() as u64);
        for y in 0..down {
            for x in 0..across {
                rests.push(format!("_files/{level}/{x}_{y}.jpg"));
            }
        }
    }
    rests
}

/// The highest DeepZoom level: ⌈log2(max(width, height))⌉.
fn max_level(info: &ImageInfo) -> u32 {
    let m = info.width.max(info.height).max(1);
    u32::BITS - (m - 1).leading_zeros()
}

/// The Zoomify tiles, as rests: every stored level from the smallest (z = 0), its tiles in
/// rows, each in the tile group its number over the whole pyramid falls in (256 a group).
pub(super) fn zoomify(info: &ImageInfo) -> Vec<String> {
    let mut rests = Vec::new();
    let mut number = 0u64;
    for (z, level) in info.levels.iter().rev().enumerate() {
        for y in 0..level.tiles_down() {
            for x in 0..level.tiles_across() {
                let group = number / ZOOMIFY_GROUP;
                rests.push(format!("TileGroup{group}/{z}-{x}-{y}.jpg"));
                number += 1;
            }
        }
    }
    rests
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_files_share_the_rest() {
        let dzi = Site::new(StaticLayout::Deepzoom, "a b.tif", "a b", Path::new("/o"));
        assert_eq!(dzi.url(".dzi"), "/deepzoom/a%20b.tif.dzi");
        assert_eq!(
            dzi.file("_files/0/0_0.jpg"),
            Path::new("/o/a b_files/0/0_0.jpg")
        );
        assert_eq!(dzi.entries(), ["a b_files", "a b.dzi"]);
        let v2 = Site::new(StaticLayout::Iiif2, "x.tif", "x", Path::new("/o"));
        assert_eq!(v2.url("info.json"), "/iiif/2/x.tif/info.json");
        assert_eq!(v2.file("info.json"), Path::new("/o/x/info.json"));
        assert_eq!(v2.entries(), ["x"]);
    }

    #[test]
    fn deepzoom_levels_go_down_to_one_pixel() {
        // 1000×600 in tiles of 256, three stored levels (1000, 500, 250 wide).
        let info = iipsrv_core::info::dyadic_info(1000, 600, 3);
        let rests = deepzoom(&info);
        assert_eq!(max_level(&info), 10);
        // level 10: 4×3 tiles, level 9: 2×2 (500×300), levels 0-8: 1 each.
        assert_eq!(rests.len(), 12 + 4 + 9);
        assert!(rests.contains(&"_files/10/3_2.jpg".to_string()));
        assert!(rests.contains(&"_files/0/0_0.jpg".to_string()));
    }

    #[test]
    fn zoomify_groups_count_tiles_over_the_pyramid() {
        let info = iipsrv_core::info::dyadic_info(8000, 8000, 6);
        let rests = zoomify(&info);
        // 32², 16², 8², 4², 2², 1 tiles.
        assert_eq!(rests.len(), 1024 + 256 + 64 + 16 + 4 + 1);
        assert_eq!(rests[0], "TileGroup0/0-0-0.jpg");
        // z 0-3 hold 1 + 4 + 16 + 64 = 85 tiles: number 255 is z 4's 171st, (10, 10).
        assert_eq!(rests[255], "TileGroup0/4-10-10.jpg");
        assert_eq!(rests[256], "TileGroup1/4-11-10.jpg");
        assert_eq!(
            rests.last().map(String::as_str),
            Some("TileGroup5/5-31-31.jpg")
        );
    }
}
