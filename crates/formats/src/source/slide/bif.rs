//! Ventana BIF (and Ventana TIFF): a tiled pyramid whose XMP packet (tag 700) holds an
//! `iScan` element (the root, or a child of a `Metadata` root), usually in the label's
//! directory. The levels are the tiled directories described `level=N mag=M quality=Q`,
//! level 0 first whatever their order in the file; the directory described `Label Image`
//! or `Label_Image` is the one OpenSlide calls `macro` (it shows the whole slide), the one
//! described `Thumbnail` the thumbnail. Every attribute of `iScan` is a property
//! `ventana.<name>`; `ScanRes` is the microns per pixel and `Magnification` the objective
//! power.
//!
//! Tile overlaps: a scanner may stitch level 0's tiles with overlaps, given by the
//! `TileJointInfo` elements (`OverlapX`, `OverlapY`) of the `EncodeInfo` XMP packet of
//! level 0, which OpenSlide honours by placing each tile off the plain grid. We read only
//! the plain grid: a file with no `EncodeInfo`, or whose joints all overlap by 0, is read
//! as its TIFF tiles lie (as OpenSlide reads the former; the latter is not checked against
//! OpenSlide, which refuses our synthetic `EncodeInfo`); a file with any non-zero overlap,
//! or an `EncodeInfo` we cannot parse, is refused as unsupported rather than shown
//! misplaced by a few pixels at every tile.
//!
//! Format: OpenSlide's description of Ventana (openslide.org/formats/ventana).

use super::ome::attribute;
use super::{microns, openslide_properties, Associated, Directory, Layout};
use quick_xml::events::{BytesStart, Event};
use quick_xml::XmlVersion;

/// The layout of a Ventana slide whose chain of directories is `dirs`, when it is one.
pub(crate) fn layout(dirs: &[Directory]) -> Option<Layout> {
    let fields = dirs.iter().find_map(|d| iscan(d.xmp.as_deref()?))?;
    let mut levels: Vec<(u64, usize)> = (0..dirs.len())
        .filter(|&i| dirs[i].tiled)
        .filter_map(|i| Some((level_number(dirs[i].description.as_deref()?)?, i)))
        .collect();
    levels.sort_unstable();
    if levels.first()?.0 != 0 {
        return None;
    }
    let associated = (0..dirs.len())
        .filter_map(|i| Some((kind(dirs[i].description.as_deref()?)?, i)))
        .collect();
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let mpp = get("ScanRes").and_then(|v| microns(v));
    let mut properties: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (format!("ventana.{k}"), v.clone()))
        .collect();
    let mpp = mpp.map(|m| (m, m));
    let objective = get("Magnification").map(String::as_str);
    properties.extend(openslide_properties("ventana", objective, mpp));
    let unsupported = dirs[levels[0].1]
        .xmp
        .as_deref()
        .filter(|xmp| overlaps(xmp))
        .map(|_| "Ventana BIF whose tiles overlap (TileJointInfo): not read natively".into());
    Some(Layout {
        levels: levels.into_iter().map(|(_, i)| i).collect(),
        associated,
        mpp,
        properties,
        background: 255,
        unsupported,
        ..Layout::default()
    })
}

/// N of a level's description `level=N mag=M quality=Q`.
fn level_number(description: &str) -> Option<u64> {
    let first = description.split_whitespace().next()?;
    first.strip_prefix("level=")?.parse().ok()
}

/// The associated image a directory's description names: the label's directory holds
/// the whole slide (OpenSlide's `macro`).
fn kind(description: &str) -> Option<Associated> {
    match description.trim() {
        "Label Image" | "Label_Image" => Some(Associated::Macro),
        "Thumbnail" => Some(Associated::Thumbnail),
        _ => None,
    }
}

/// The attributes of the `iScan` element of an XMP packet: the root element, or a child
/// of a `Metadata` root; None when there is none (or the XML breaks before it).
fn iscan(xmp: &str) -> Option<Vec<(String, String)>> {
    let mut reader = quick_xml::Reader::from_str(xmp);
    let mut depth = 0usize;
    let mut in_metadata = false;
    loop {
        let (e, opens) = match reader.read_event().ok()? {
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                continue;
            }
            Event::Eof => return None,
            _ => continue,
        };
        let name = e.local_name();
        match (depth, name.as_ref()) {
            (0, b"iScan") => return Some(attributes(&e)),
            (1, b"iScan") if in_metadata => return Some(attributes(&e)),
            (0, b"Metadata") => in_metadata = true,
            (0, _) => return None,
            _ => {}
        }
        depth += usize::from(opens);
    }
}

/// Every attribute of an element whose value decodes, by name.
fn attributes(e: &BytesStart) -> Vec<(String, String)> {
    e.attributes()
        .flatten()
        .filter_map(|a| {
            let name = String::from_utf8(a.key.local_name().as_ref().to_vec()).ok()?;
            let value = a.normalized_value(XmlVersion::Implicit1_0).ok()?;
            Some((name, value.into_owned()))
        })
        .collect()
}

/// Whether level 0's XMP packet says its tiles overlap: a `TileJointInfo` with a non-zero
/// `OverlapX` or `OverlapY`, or joints we cannot read (broken XML, a value not a number).
fn overlaps(xmp: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(xmp);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e))
                if e.local_name().as_ref() == b"TileJointInfo" =>
            {
                let shifted = |name: &str| {
                    attribute(&e, name).is_some_and(|v| v.trim().parse::<f64>() != Ok(0.0))
                };
                if shifted("OverlapX") || shifted("OverlapY") {
                    return true;
                }
            }
            Ok(Event::Eof) => return false,
            Ok(_) => {}
            Err(_) => return xmp.contains("TileJointInfo"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(description: &str, tiled: bool, xmp: Option<&str>) -> Directory {
        Directory {
            xmp: xmp.map(str::to_string),
            ..Directory::summary(description, tiled)
        }
    }

    const ISCAN: &str = r#"<?xml version="1.0"?><Metadata><iScan Magnification="40" ScanRes="0.2325" UnitNumber="BI1"><AOI0 Left="1"/></iScan></Metadata>"#;

    fn joint(x: &str) -> String {
        format!(
            r#"<EncodeInfo Ver="2"><TileJointInfo Tile1="1" Tile2="2" OverlapX="{x}" OverlapY="0"/></EncodeInfo>"#
        )
    }

    #[test]
    fn levels_by_number_label_thumbnail_and_properties() {
        let dirs = [
            dir("Label_Image", false, Some(ISCAN)),
            dir("Thumbnail", false, None),
            dir("level=1 mag=20 quality=90", true, None),
            dir("level=0 mag=40 quality=90", true, Some(&joint("0"))),
        ];
        let l = layout(&dirs).expect("ventana");
        assert_eq!(l.levels, [3, 2]);
        assert_eq!(l.associated(Associated::Macro), Some(0));
        assert_eq!(l.associated(Associated::Thumbnail), Some(1));
        assert_eq!(l.associated(Associated::Label), None);
        assert_eq!(l.mpp, Some((0.2325, 0.2325)));
        assert!(l.unsupported.is_none());
        let get = |k: &str| l.properties.iter().find(|p| p.0 == k).map(|p| p.1.as_str());
        assert_eq!(get("ventana.UnitNumber"), Some("BI1"));
        assert_eq!(get("openslide.objective-power"), Some("40"));
        assert_eq!(get("openslide.mpp-y"), Some("0.2325"));
    }

    #[test]
    fn overlapping_tiles_are_refused_and_other_files_have_no_layout() {
        for bad in [
            joint("12"),
            joint("x"),
            "<EncodeInfo><TileJointInfo".to_string(),
        ] {
            let dirs = [
                dir("level=0 mag=40", true, Some(ISCAN)),
                dir("", false, Some(&bad)),
            ];
            assert!(layout(&dirs).expect("ventana").unsupported.is_none());
            let dirs = [
                dir("Label Image", false, Some(ISCAN)),
                dir("level=0", true, Some(&bad)),
            ];
            assert!(
                layout(&dirs).expect("ventana").unsupported.is_some(),
                "{bad}"
            );
        }
        let root = r#"<iScan ScanRes="-1"/>"#;
        let l = layout(&[dir("level=0", true, Some(root))]).expect("root iScan");
        assert_eq!(l.mpp, None);
        for xmp in [
            "<x><iScan/></x>",
            "<Metadata><a><iScan/></a></Metadata>",
            "<iScan",
            "",
        ] {
            assert!(
                layout(&[dir("level=0", true, Some(xmp))]).is_none(),
                "{xmp}"
            );
        }
        assert!(layout(&[dir("level=1", true, Some(ISCAN))]).is_none());
        assert!(layout(&[dir("level=0", false, Some(ISCAN))]).is_none());
    }
}
