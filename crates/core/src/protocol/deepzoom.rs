//! DeepZoom (Microsoft DZI) requests: `<id>.dzi` for the descriptor and
//! `<id>_files/<level>/<x>_<y>.<jpg|png>` for tiles. DeepZoom levels count from a 1×1
//! image (level 0) up to full resolution (level ceil(log2(max(w, h)))); they map onto the
//! pyramid as the original does: the top DeepZoom level is the full resolution, and levels
//! below the smallest pyramid level are answered with that smallest level.

use crate::error::{RequestError, Result};
use crate::info::ImageInfo;
use crate::view::Format;

/// A parsed DeepZoom request.
#[derive(Debug, Clone, PartialEq)]
pub enum DeepZoomRequest {
    /// The `.dzi` descriptor of an image.
    Descriptor {
        /// Image identifier.
        id: String,
    },
    /// One tile.
    Tile {
        /// Image identifier.
        id: String,
        /// DeepZoom level.
        level: u32,
        /// Column.
        x: u32,
        /// Row.
        y: u32,
        /// Format from the extension.
        format: Format,
    },
}

fn decode(s: &str) -> Result<String> {
    super::decode(s, "DeepZoom")
}

/// Parses the path after the DeepZoom prefix (or the `DeepZoom=` argument).
pub fn parse(path: &str) -> Result<DeepZoomRequest> {
    let path = path.trim_start_matches('/');
    if let Some(id) = path.strip_suffix(".dzi") {
        return Ok(DeepZoomRequest::Descriptor { id: decode(id)? });
    }
    let bad = || RequestError::bad("DeepZoom: expected <id>.dzi or <id>_files/<level>/<x>_<y>.jpg");
    let (id, rest) = path.rsplit_once("_files/").ok_or_else(bad)?;
    let (level, file) = rest.split_once('/').ok_or_else(bad)?;
    let (xy, ext) = file.rsplit_once('.').ok_or_else(bad)?;
    let (x, y) = xy.split_once('_').ok_or_else(bad)?;
    let format = match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => Format::Jpeg,
        "png" => Format::Png,
        "webp" => Format::Webp,
        "avif" => Format::Avif,
        _ => {
            return Err(RequestError::bad(format!(
                "DeepZoom: unsupported tile format {ext}"
            )))
        }
    };
    Ok(DeepZoomRequest::Tile {
        id: decode(id)?,
        level: level.parse().map_err(|_| bad())?,
        x: x.parse().map_err(|_| bad())?,
        y: y.parse().map_err(|_| bad())?,
        format,
    })
}

/// The highest DeepZoom level of an image: ceil(log2(max(width, height))).
pub(crate) fn max_level(info: &ImageInfo) -> u32 {
    let m = info.width.max(info.height).max(1);
    u32::BITS - (m - 1).leading_zeros()
}

/// The IIP resolution number (0 = smallest pyramid level) of a DeepZoom level, clamped.
pub fn resolution(info: &ImageInfo, level: u32) -> u32 {
    let n = info.levels.len() as i64;
    let r = level as i64 - max_level(info) as i64 + n - 1;
    r.clamp(0, n - 1) as u32
}

/// The `.dzi` descriptor (no XML declaration, as the newest original).
pub fn descriptor(info: &ImageInfo, format: Format) -> String {
    let tile = info.levels[0].tile_width;
    format!(
        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" TileSize=\"{tile}\" Overlap=\"0\" Format=\"{}\"><Size Width=\"{}\" Height=\"{}\"/></Image>",
        format.extension(),
        info.width,
        info.height
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(w: u32, h: u32, levels: usize) -> ImageInfo {
        crate::info::dyadic_info(w, h, levels)
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse("a%20b.tif.dzi").expect("dzi"),
            DeepZoomRequest::Descriptor {
                id: "a b.tif".into()
            }
        );
        assert_eq!(
            parse("dir/a.tif_files/12/3_4.jpg").expect("tile"),
            DeepZoomRequest::Tile {
                id: "dir/a.tif".into(),
                level: 12,
                x: 3,
                y: 4,
                format: Format::Jpeg
            }
        );
        for bad in [
            "a.tif",
            "a.tif_files/x/0_0.jpg",
            "a.tif_files/1/0-0.jpg",
            "a.tif_files/1/0_0.gif",
            "a.tif_files/1",
        ] {
            assert_eq!(parse(bad).map_err(|e| e.status()).err(), Some(400), "{bad}");
        }
    }

    #[test]
    fn levels_map_like_the_original() {
        let i = info(4000, 3000, 5);
        assert_eq!(max_level(&i), 12);
        assert_eq!(resolution(&i, 12), 4);
        assert_eq!(resolution(&i, 13), 4);
        assert_eq!(resolution(&i, 8), 0);
        assert_eq!(resolution(&i, 0), 0);
        assert_eq!(max_level(&info(20000, 15000, 8)), 15);
        assert_eq!(max_level(&info(256, 100, 1)), 8);
    }

    #[test]
    fn descriptor_text() {
        assert_eq!(
            descriptor(&info(4000, 3000, 5), Format::Jpeg),
            "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" TileSize=\"256\" Overlap=\"0\" Format=\"jpg\"><Size Width=\"4000\" Height=\"3000\"/></Image>"
        );
    }
}
