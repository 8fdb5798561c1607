//! Philips TIFF: a tiled pyramid as a chain of directories whose first ImageDescription is
//! Philips' XML (a `DataObject` of type `DPUfsImport` with DICOM attributes). Tiles of the
//! scanned background may be left out (TileByteCounts 0): they are white, as the glass
//! of a brightfield slide. The pixel size is the first `DICOM_PIXEL_SPACING` attribute
//! (row and column spacing in millimetres). The label and macro are directories in strips
//! whose description starts with `Label` or `Macro`, or else JPEGs kept as base64 text in
//! the XML: the `PIM_DP_IMAGE_DATA` of the scanned image (`DPScannedImage`) whose
//! `PIM_DP_IMAGE_TYPE` is `LABELIMAGE` or `MACROIMAGE` (text that does not decode is no
//! image).
//!
//! Format: OpenSlide's description of Philips TIFF (openslide.org/formats/philips).

use super::{microns, openslide_properties, Associated, Directory, Layout};
use base64::Engine;
use quick_xml::events::Event;

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
    let associated: Vec<(Associated, usize)> = (1..dirs.len())
        .filter(|&i| !dirs[i].tiled)
        .filter_map(|i| Some((kind(dirs[i].description.as_deref()?)?, i)))
        .collect();
    let embedded = embedded(first)
        .into_iter()
        .filter(|(k, _)| !associated.iter().any(|(a, _)| a == k))
        .collect();
    let mpp = pixel_spacing(first);
    let properties = openslide_properties("philips", None, mpp);
    Some(Layout {
        levels,
        associated,
        embedded,
        mpp,
        properties,
        background: 255,
        description: Some(without_image_data(first)),
        ..Layout::default()
    })
}

/// The XML description with the text of every `PIM_DP_IMAGE_DATA` attribute (the base64
/// label, macro and thumbnail JPEGs) left out, as it may be shown: the label can carry a
/// patient's name, and SLIDE_ASSOCIATED_IMAGES decides whether it is shown at all.
fn without_image_data(xml: &str) -> String {
    const NAME: &str = "\"PIM_DP_IMAGE_DATA\"";
    let mut shown = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(at) = rest.find(NAME) {
        let Some(open) = rest[at..].find('>').map(|o| at + o + 1) else {
            break;
        };
        shown.push_str(&rest[..open]);
        rest = &rest[open..];
        rest = &rest[rest.find('<').unwrap_or(rest.len())..];
    }
    shown.push_str(rest);
    shown
}

/// The associated image of a directory in strips described `Label…` or `Macro…`.
fn kind(description: &str) -> Option<Associated> {
    let d = description.trim_start();
    if d.starts_with("Label") {
        Some(Associated::Label)
    } else if d.starts_with("Macro") {
        Some(Associated::Macro)
    } else {
        None
    }
}

/// The label and macro JPEGs of Philips' XML: each `DPScannedImage` data object's image
/// data (base64) by its image type, the first of each kind; images whose text does not
/// decode are left out.
fn embedded(xml: &str) -> Vec<(Associated, Vec<u8>)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    // per open data object: (image type, image data); the attribute being read
    let mut objects: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut attribute: Option<Vec<u8>> = None;
    let mut out: Vec<(Associated, Vec<u8>)> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"DataObject" => objects.push((None, None)),
                b"Attribute" => {
                    attribute = super::ome::attribute(&e, "Name").map(String::into_bytes)
                }
                _ => {}
            },
            Ok(Event::Text(t)) => {
                let (Some(name), Some(object)) = (&attribute, objects.last_mut()) else {
                    continue;
                };
                let text = String::from_utf8_lossy(t.as_ref()).trim().to_string();
                match name.as_slice() {
                    b"PIM_DP_IMAGE_TYPE" => object.0 = Some(text),
                    b"PIM_DP_IMAGE_DATA" => object.1 = Some(text),
                    _ => {}
                }
            }
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"Attribute" => attribute = None,
                b"DataObject" => {
                    if let Some(image) = objects.pop().and_then(decoded) {
                        if !out.iter().any(|(k, _)| *k == image.0) {
                            out.push(image);
                        }
                    }
                }
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => return out,
            Ok(_) => {}
        }
    }
}

/// A data object's (image type, base64 image data) as an associated image's JPEG bytes.
fn decoded((kind, data): (Option<String>, Option<String>)) -> Option<(Associated, Vec<u8>)> {
    let kind = match kind?.as_str() {
        "LABELIMAGE" => Associated::Label,
        "MACROIMAGE" => Associated::Macro,
        _ => return None,
    };
    let text: Vec<u8> = data?.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Some((kind, jpeg))
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

    fn scanned(kind: &str, data: &str) -> String {
        format!(
            r#"<DataObject ObjectType="DPScannedImage"><Attribute Name="PIM_DP_IMAGE_DATA">{data}</Attribute><Attribute Name="PIM_DP_IMAGE_TYPE">{kind}</Attribute></DataObject>"#
        )
    }

    #[test]
    fn label_and_macro_from_base64_or_directories() {
        let images = [
            scanned("LABELIMAGE", "/9j/\n4A=="),
            scanned("MACROIMAGE", "not base64!"),
            scanned("WSI", "AAAA"),
            scanned("LABELIMAGE", "AAAA"),
        ];
        let xml = format!(
            r#"<DataObject ObjectType="DPUfsImport"><Attribute Name="PIM_DP_SCANNED_IMAGES"><Array>{}</Array></Attribute></DataObject>"#,
            images.concat()
        );
        let l = layout(&[dir(&xml, true)]).expect("philips");
        assert_eq!(
            l.embedded(Associated::Label),
            Some(&[0xff, 0xd8, 0xff, 0xe0][..])
        );
        assert_eq!(l.embedded(Associated::Macro), None);
        let dirs = [dir(&xml, true), dir("Label x", false), dir("Macro", false)];
        let l = layout(&dirs).expect("philips");
        assert_eq!(l.associated(Associated::Label), Some(1));
        assert_eq!(l.associated(Associated::Macro), Some(2));
        assert!(l.embedded.is_empty());
        let truncated = &xml[..xml.len() / 2];
        assert!(layout(&[dir(truncated, true)]).is_some());
        let shown = layout(&[dir(&xml, true)]).and_then(|l| l.description);
        let shown = shown.expect("description");
        assert!(
            !shown.contains("/9j/") && !shown.contains("AAAA"),
            "{shown}"
        );
        assert!(shown.contains(r#"<Attribute Name="PIM_DP_IMAGE_DATA"></Attribute>"#));
        assert!(
            shown.contains("LABELIMAGE") && shown.ends_with("</Array></Attribute></DataObject>")
        );
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
