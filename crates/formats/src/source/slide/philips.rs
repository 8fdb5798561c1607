//! Philips TIFF: a tiled pyramid as a chain of directories whose first ImageDescription is
//! Philips' XML (a `DataObject` of type `DPUfsImport` with DICOM attributes). Tiles of the
//! scanned background may be left out (TileByteCounts 0): they are white, as the glass
//! of a brightfield slide. The pixel size is the first `DICOM_PIXEL_SPACING` attribute
//! (row and column spacing in millimetres). The label and macro, kept as base64 inside
//! the XML, are not read.
//!
//! Format: OpenSlide's description of Philips TIFF (openslide.org/formats/philips).

use super::{microns, Directory, Layout};

/// The layout of a Philips TIFF whose chain of directories is `dirs`, when it is one.
pub(crate) fn layout(dirs: &[Directory]) -> Option<Layout> {
    let first = dirs.first()?.description.as_deref()?;
    if !first.contains("<DataObject") || !first.contains("DPUfsImport") {
        return None;
    }
    let levels: Vec<usize> = (0..dirs.len()).filter(|&i| dirs[i].tiled).collect();
    if levels.first() != Some(&0) {
        return None;
    }
    let mpp = pixel_spacing(first);
    let mut properties = vec![("openslide.vendor".to_string(), "philips".to_string())];
    if let Some((x, y)) = mpp {
        properties.push(("openslide.mpp-x".into(), x.to_string()));
        properties.push(("openslide.mpp-y".into(), y.to_string()));
    }
    Some(Layout {
        levels,
        associated: Vec::new(),
        mpp,
        properties,
        background: 255,
    })
}

/// Microns per pixel (x, y) from the first `DICOM_PIXEL_SPACING` attribute after the
/// whole-slide image's type (`WSI`; the label's and macro's come before it), whose value
/// is `"row" "column"` in millimetres (the quotes escaped as `&quot;` in the XML).
fn pixel_spacing(xml: &str) -> Option<(f64, f64)> {
    let wsi = xml.find(">WSI<").unwrap_or(0);
    let rest = &xml[wsi..];
    let rest = &rest[rest.find("\"DICOM_PIXEL_SPACING\"")?..];
    let value = &rest[rest.find('>')? + 1..];
    let value = value[..value.find("</")?].replace("&quot;", "\"");
    let mut mm = value
        .split('"')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| microns(&(v.parse::<f64>().ok()? * 1000.0).to_string()));
    let (row, column) = (mm.next()??, mm.next()??);
    Some((column, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_closed_before_its_tag_opens_is_no_spacing() {
        // "</" before the attribute's '>' (found by fuzzing: a panic on slicing)
        let xml = "<x>WSI<\"DICOM_PIXEL_SPACING\" A=\"</b\" B=\"1\">&quot;0.25&quot;";
        assert_eq!(pixel_spacing(xml), None);
    }

    fn dir(description: &str, tiled: bool) -> Directory {
        Directory::summary(description, tiled)
    }

    const XML: &str = r#"<?xml version="1.0"?><DataObject ObjectType="DPUfsImport"><Attribute Name="DICOM_PIXEL_SPACING" Group="0x0028" Element="0x0030" PMSVR="IDoubleArray">&quot;0.000243&quot; &quot;0.000250&quot;</Attribute></DataObject>"#;

    #[test]
    fn levels_spacing_and_white_background() {
        let dirs = [dir(XML, true), dir("", true), dir("", false)];
        let l = layout(&dirs).expect("philips");
        assert_eq!(l.levels, [0, 1]);
        assert_eq!(l.background, 255);
        let (x, y) = l.mpp.expect("spacing");
        assert!((x - 0.25).abs() < 1e-9 && (y - 0.243).abs() < 1e-9);
    }

    #[test]
    fn lying_spacing_gives_no_size_and_other_files_no_layout() {
        let xml = r#"<DataObject ObjectType="DPUfsImport"><Attribute Name="DICOM_PIXEL_SPACING">"-1" "x"</Attribute>"#;
        assert_eq!(layout(&[dir(xml, true)]).map(|l| l.mpp), Some(None));
        let truncated =
            r#"<DataObject ObjectType="DPUfsImport"><Attribute Name="DICOM_PIXEL_SPACING""#;
        assert_eq!(layout(&[dir(truncated, true)]).map(|l| l.mpp), Some(None));
        assert!(layout(&[dir("<DataObject>", true)]).is_none());
        assert!(layout(&[dir(xml, false)]).is_none());
    }
}
