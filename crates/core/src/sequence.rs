//! Image sequences as the original names them (FILENAME_PATTERN, default `_pyr_`): an
//! identifier that is not a file stands for the files
//! `<id><pattern><horizontal>_<vertical>.<ext>`, angles written with at least three digits
//! (`%03d`), e.g. `vase_pyr_000_090.tif`. The sequence exists when the `000_090` file does;
//! the horizontal angles are those with a `_090` file, the vertical ones those with a
//! `000_` file, as the original lists them. IIP SDS (or JTLS) picks the view; the default
//! is horizontal 0, vertical 90. Spectral stacks use the horizontal index as the band.
//! Pure naming rules; the registry does the file-system work.

/// Extensions a sequence file may have (TIFF and JPEG2000, as in the original).
pub(crate) const EXTENSIONS: &[&str] = &["tif", "tiff", "jp2", "jpx", "j2k"];

/// The default view: horizontal 0, vertical 90.
pub const DEFAULT_ANGLES: (i32, i32) = (0, 90);

/// The angles a sequence has, sorted; or the pages of a multi-page TIFF stack (horizontal
/// 0..n, vertical 0, with their names).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Views {
    /// Horizontal angles (or band indices).
    pub horizontal: Vec<i32>,
    /// Vertical angles.
    pub vertical: Vec<i32>,
    /// Stack pages: name and scale of each horizontal view; empty for a sequence.
    pub pages: Vec<crate::info::Page>,
}

impl Views {
    /// The views of a stack of pages.
    pub fn of_pages(pages: &[crate::info::Page]) -> Views {
        Views {
            horizontal: (0..pages.len() as i32).collect(),
            vertical: vec![0],
            pages: pages.to_vec(),
        }
    }

    /// The band name of horizontal view `h`: the page name, else the index.
    pub fn band_name(&self, h: i32) -> String {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.pages.get(i))
            .and_then(|p| p.name.clone())
            .unwrap_or_else(|| h.to_string())
    }
}

/// The relative file name of one view of sequence `id`.
pub fn file_name(id: &str, pattern: &str, (h, v): (i32, i32), ext: &str) -> String {
    format!("{id}{pattern}{h:03}_{v:03}.{ext}")
}

/// Reads `name` (a file name, no directory) as a view of the sequence whose file names
/// start with `stem` + `pattern`: its (horizontal, vertical) angles and extension.
pub fn parse_name<'a>(name: &'a str, stem: &str, pattern: &str) -> Option<(i32, i32, &'a str)> {
    let rest = name.strip_prefix(stem)?.strip_prefix(pattern)?;
    let (angles, ext) = rest.rsplit_once('.')?;
    let (h, v) = angles.split_once('_')?;
    let (h, v) = (h.parse().ok()?, v.parse().ok()?);
    EXTENSIONS.contains(&ext).then_some((h, v, ext))
}

/// The views of a sequence from the file names of its directory (entries of other
/// sequences or with another extension are skipped).
pub fn views<'a>(
    names: impl IntoIterator<Item = &'a str>,
    stem: &str,
    pattern: &str,
    ext: &str,
) -> Views {
    let mut v = Views::default();
    for name in names {
        match parse_name(name, stem, pattern) {
            Some((h, 90, e)) if e == ext => v.horizontal.push(h),
            _ => {}
        }
        match parse_name(name, stem, pattern) {
            Some((0, a, e)) if e == ext => v.vertical.push(a),
            _ => {}
        }
    }
    v.horizontal.sort_unstable();
    v.horizontal.dedup();
    v.vertical.sort_unstable();
    v.vertical.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_views_as_the_original() {
        assert_eq!(
            file_name("a/vase", "_pyr_", (0, 90), "tif"),
            "a/vase_pyr_000_090.tif"
        );
        assert_eq!(
            file_name("v", "_pyr_", (-5, 1200), "jp2"),
            "v_pyr_-05_1200.jp2"
        );
        assert_eq!(
            parse_name("vase_pyr_010_090.tif", "vase", "_pyr_"),
            Some((10, 90, "tif"))
        );
        assert_eq!(parse_name("vase_pyr_010_090.png", "vase", "_pyr_"), None);
        assert_eq!(parse_name("vase2_pyr_010_090.tif", "vase", "_pyr_"), None);
        let names = [
            "vase_pyr_000_000.tif",
            "vase_pyr_000_090.tif",
            "vase_pyr_000_180.tif",
            "vase_pyr_030_000.tif",
            "vase_pyr_045_090.tif",
            "other_pyr_090_090.tif",
        ];
        let v = views(names, "vase", "_pyr_", "tif");
        assert_eq!(v.horizontal, vec![0, 45]);
        assert_eq!(v.vertical, vec![0, 90, 180]);
    }
}
