//! Zoomify requests: `<id>/ImageProperties.xml` and `<id>/TileGroup<g>/<z>-<x>-<y>.jpg`.
//! `z` is the resolution number (0 = smallest level); the tile group is ignored, as in the
//! original. NUMTILES counts the tiles of every level, as the newest original does.

use crate::error::{RequestError, Result};
use crate::info::ImageInfo;

/// A parsed Zoomify request.
#[derive(Debug, Clone, PartialEq)]
pub enum ZoomifyRequest {
    /// `ImageProperties.xml`.
    Properties {
        /// Image identifier.
        id: String,
    },
    /// One tile.
    Tile {
        /// Image identifier.
        id: String,
        /// Resolution number, 0 = smallest.
        z: u32,
        /// Column.
        x: u32,
        /// Row.
        y: u32,
    },
}

fn decode(s: &str) -> Result<String> {
    super::decode(s, "Zoomify")
}

/// Parses the path after the Zoomify prefix (or the `Zoomify=` argument).
pub fn parse(path: &str) -> Result<ZoomifyRequest> {
    let path = path.trim_start_matches('/');
    if let Some(id) = path.strip_suffix("/ImageProperties.xml") {
        return Ok(ZoomifyRequest::Properties { id: decode(id)? });
    }
    let bad = || {
        RequestError::bad(
            "Zoomify: expected <id>/ImageProperties.xml or <id>/TileGroup<g>/<z>-<x>-<y>.jpg",
        )
    };
    let (rest, file) = path.rsplit_once('/').ok_or_else(bad)?;
    let (id, group) = rest.rsplit_once('/').ok_or_else(bad)?;
    if !group.starts_with("TileGroup") {
        return Err(bad());
    }
    let stem = file.strip_suffix(".jpg").ok_or_else(bad)?;
    let parts: Vec<u32> = stem
        .split('-')
        .map(|s| s.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let [z, x, y] = parts[..] else {
        return Err(bad());
    };
    Ok(ZoomifyRequest::Tile {
        id: decode(id)?,
        z,
        x,
        y,
    })
}

/// The `ImageProperties.xml` document.
pub fn properties(info: &ImageInfo) -> String {
    let tiles: u64 = info
        .levels
        .iter()
        .map(|l| l.tiles_across() as u64 * l.tiles_down() as u64)
        .sum();
    format!(
        "<IMAGE_PROPERTIES WIDTH=\"{}\" HEIGHT=\"{}\" NUMTILES=\"{tiles}\" NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"{}\"/>",
        info.width, info.height, info.levels[0].tile_width
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse("a.tif/ImageProperties.xml").expect("props"),
            ZoomifyRequest::Properties { id: "a.tif".into() }
        );
        assert_eq!(
            parse("d/a.tif/TileGroup7/4-15-11.jpg").expect("tile"),
            ZoomifyRequest::Tile {
                id: "d/a.tif".into(),
                z: 4,
                x: 15,
                y: 11
            }
        );
        for bad in [
            "a.tif",
            "a.tif/TileGroup0/1-2.jpg",
            "a.tif/Group0/1-2-3.jpg",
            "a.tif/TileGroup0/1-2-x.jpg",
            "a.tif/TileGroup0/1-2-3.png",
        ] {
            assert_eq!(parse(bad).map_err(|e| e.status()).err(), Some(400), "{bad}");
        }
    }
}
