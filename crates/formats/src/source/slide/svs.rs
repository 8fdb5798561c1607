//! Aperio SVS: a TIFF whose first directory's ImageDescription starts with `Aperio`.
//! Every tiled directory is a level of the pyramid (the reduced ones carry no
//! NewSubfileType); the second directory, in strips, is the thumbnail; other directories
//! in strips are the label and the macro, named by the first word of their description's
//! second line. The first description's `|`-separated `key = value` fields hold the
//! metadata: `MPP` (microns per pixel), `AppMag` (objective magnification), `ScanScope ID`
//! (the scanner) and others, kept as OpenSlide names them (`aperio.<key>`).
//!
//! Format: OpenSlide's description of Aperio (openslide.org/formats/aperio).

use super::{microns, openslide_properties, Associated, Directory, Layout};

/// The layout of an Aperio slide, when `dirs` is one.
pub(crate) fn layout(dirs: &[Directory]) -> Option<Layout> {
    let first = dirs.first()?.description.as_deref()?;
    if !first.starts_with("Aperio") {
        return None;
    }
    let levels: Vec<usize> = (0..dirs.len()).filter(|&i| dirs[i].tiled).collect();
    if levels.first() != Some(&0) {
        return None;
    }
    let associated = (1..dirs.len())
        .filter(|&i| !dirs[i].tiled)
        .filter_map(|i| Some((kind(i, &dirs[i])?, i)))
        .collect();
    let fields = fields(first);
    let mpp = fields
        .iter()
        .find(|(k, _)| k == "MPP")
        .and_then(|(_, v)| microns(v));
    let mut properties: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (format!("aperio.{k}"), v.clone()))
        .collect();
    let mag = fields.iter().find(|(k, _)| k == "AppMag");
    let mpp = mpp.map(|m| (m, m));
    properties.extend(openslide_properties(
        "aperio",
        mag.map(|m| m.1.as_str()),
        mpp,
    ));
    Some(Layout {
        levels,
        associated,
        mpp,
        properties,
        background: 0,
        ..Layout::default()
    })
}

/// Which associated image directory `index` (in strips) is: the second directory is the
/// thumbnail; others are named by their description's second line.
fn kind(index: usize, dir: &Directory) -> Option<Associated> {
    if index == 1 {
        return Some(Associated::Thumbnail);
    }
    let second = dir.description.as_deref()?.lines().nth(1)?;
    Associated::from_name(second.split_whitespace().next()?)
}

/// The `key = value` fields of an Aperio description (after its first `|`), trimmed; a
/// field without `=` is skipped.
fn fields(description: &str) -> Vec<(String, String)> {
    description
        .split('|')
        .skip(1)
        .filter_map(|f| {
            let (k, v) = f.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(description: &str, tiled: bool) -> Directory {
        Directory::summary(description, tiled)
    }

    const HEAD: &str = "Aperio Image Library v12.0.15\r\n";

    #[test]
    fn levels_thumbnail_label_and_macro() {
        let dirs = [
            dir(&format!("{HEAD}2000x1500 (240x240) JPEG/RGB Q=70|AppMag = 20|MPP = 0.499|ScanScope ID = SS1"), true),
            dir(HEAD, false),
            dir(HEAD, true),
            dir(&format!("{HEAD}label 300x360"), false),
            dir(&format!("{HEAD}macro 800x300"), false),
        ];
        let l = layout(&dirs).expect("aperio");
        assert_eq!(l.levels, vec![0, 2]);
        assert_eq!(l.associated(Associated::Thumbnail), Some(1));
        assert_eq!(l.associated(Associated::Label), Some(3));
        assert_eq!(l.associated(Associated::Macro), Some(4));
        assert_eq!(l.mpp, Some((0.499, 0.499)));
        let get = |k: &str| l.properties.iter().find(|p| p.0 == k).map(|p| p.1.as_str());
        assert_eq!(get("aperio.ScanScope ID"), Some("SS1"));
        assert_eq!(get("openslide.objective-power"), Some("20"));
        assert_eq!(get("openslide.mpp-x"), Some("0.499"));
    }

    #[test]
    fn lying_descriptions_give_no_size_and_other_files_no_layout() {
        let dirs = [dir("Aperio|MPP = -3|MPP|=|AppMag = x", true)];
        let l = layout(&dirs).expect("aperio");
        assert_eq!(l.mpp, None);
        assert!(layout(&[dir("ImageJ=1.5", true)]).is_none());
        assert!(layout(&[dir("Aperio", false)]).is_none());
        assert!(layout(&[]).is_none());
    }
}
