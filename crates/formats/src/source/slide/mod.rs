//! Microscope slide layouts inside TIFF: which directories of a scanner's file are the
//! pyramid, which are its associated images (label, macro, thumbnail), and what its
//! description says (microns per pixel, magnification, scanner, channels): Aperio SVS
//! ([`svs`]), Philips TIFF ([`philips`], sparse tiles on white), Ventana BIF ([`bif`]),
//! OME-TIFF ([`ome`], whose planes are a stack's pages) and Hamamatsu NDPI ([`ndpi`],
//! whose levels are single JPEGs read around a tile by their restart markers). One module per format;
//! each reads only the directories' summaries ([`Directory`]), never bytes, so the TIFF
//! reader stays the one place that parses the file and reads tiles.
//!
//! The associated images are opened as pages of the file numbered from the top of the
//! page range down ([`Associated::page`]), so that a server opens them as it opens the
//! pages of a stack, under the identifier `<slide>;label` ([`Associated::split_id`]).
//! An associated image kept in a description rather than a directory (Philips' base64
//! JPEGs) is handed over as its JPEG bytes ([`Layout::embedded`]).

pub(crate) mod bif;
pub(crate) mod ndpi;
pub(crate) mod ome;
pub(crate) mod philips;
pub(crate) mod svs;

use iipsrv_core::info::Metadata;

/// What the slide readers see of one TIFF directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Directory {
    /// ImageDescription.
    pub description: Option<String>,
    /// Whether the directory has tiles (not strips).
    pub tiled: bool,
    /// The XMP packet (tag 700), as text.
    pub xmp: Option<String>,
    /// NDPI's tags, in a directory of an NDPI file.
    pub ndpi: Option<ndpi::Summary>,
}

#[cfg(test)]
impl Directory {
    /// The summary of a directory with this description, for the vendor modules' tests.
    pub(crate) fn summary(description: &str, tiled: bool) -> Directory {
        Directory {
            description: Some(description.into()),
            tiled,
            ..Directory::default()
        }
    }
}

/// An image a slide file holds beside its pyramid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Associated {
    /// The slide's label: may carry a patient's name or a barcode.
    Label,
    /// The whole glass slide at low resolution, label included.
    Macro,
    /// A small picture of the scanned area.
    Thumbnail,
}

impl Associated {
    /// Every kind, in page order.
    pub const ALL: [Associated; 3] = [Associated::Label, Associated::Macro, Associated::Thumbnail];

    /// The name in identifiers and settings (OpenSlide's names).
    pub fn name(self) -> &'static str {
        match self {
            Associated::Label => "label",
            Associated::Macro => "macro",
            Associated::Thumbnail => "thumbnail",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<Associated> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The page number under which this image of a slide is opened: from `usize::MAX`
    /// down, far from the page numbers of a stack.
    pub fn page(self) -> usize {
        usize::MAX - self as usize
    }

    /// The associated image page `page` names, when it is one.
    pub fn of_page(page: usize) -> Option<Associated> {
        Self::ALL.into_iter().find(|a| a.page() == page)
    }

    /// An identifier naming an associated image, `<slide>;<name>` (e.g. `a/b.svs;label`),
    /// split into the slide's identifier and the kind; None for any other identifier.
    pub fn split_id(id: &str) -> Option<(&str, Associated)> {
        let (slide, name) = id.rsplit_once(';')?;
        (!slide.is_empty()).then_some(())?;
        Some((slide, Associated::from_name(name)?))
    }
}

/// A slide's layout: the directories (indices into the chain) of its levels, largest
/// first, and of its associated images; what its description says.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    /// The directories of the pyramid.
    pub levels: Vec<usize>,
    /// The directories of the associated images.
    pub associated: Vec<(Associated, usize)>,
    /// The associated images kept in a description, not a directory: their JPEG bytes.
    pub embedded: Vec<(Associated, Vec<u8>)>,
    /// Why the slide is not read, when the vendor module knows the layout but not how to
    /// read it right (e.g. Ventana tiles that overlap).
    pub unsupported: Option<String>,
    /// Microns per pixel at full resolution, horizontally and vertically.
    pub mpp: Option<(f64, f64)>,
    /// The vendor's properties, named as OpenSlide names them.
    pub properties: Vec<(String, String)>,
    /// The 8-bit value of the samples of tiles the file leaves out (byte count 0): 0, or
    /// 255 (white) for brightfield scanners that store only the tissue.
    pub background: u8,
    /// The description as it may be shown (IIP `OBJ=description`, metadata), when the
    /// vendor keeps images in it that must not be shown that way (Philips' label, which
    /// SLIDE_ASSOCIATED_IMAGES may hide, is base64 in its XML).
    pub description: Option<String>,
}

impl Layout {
    /// The directory of associated image `kind`, when the slide has one.
    pub fn associated(&self, kind: Associated) -> Option<usize> {
        self.associated
            .iter()
            .find_map(|&(k, i)| (k == kind).then_some(i))
    }

    /// The JPEG bytes of associated image `kind`, when the slide keeps it in a description.
    pub fn embedded(&self, kind: Associated) -> Option<&[u8]> {
        self.embedded
            .iter()
            .find_map(|(k, jpeg)| (*k == kind).then_some(jpeg.as_slice()))
    }

    /// Puts what the description says into an image's metadata: the physical size and
    /// the properties.
    pub fn describe(&self, metadata: &mut Metadata) {
        if let Some((x, y)) = self.mpp {
            metadata.pixels_per_cm = Some((1e4 / x, 1e4 / y));
        }
        metadata.properties.clone_from(&self.properties);
        if let Some(shown) = &self.description {
            metadata.description = Some(shown.clone());
        }
    }
}

/// The layout of the slide whose chain of directories is `dirs`, when a vendor module
/// recognises it.
pub(crate) fn layout(dirs: &[Directory]) -> Option<Layout> {
    svs::layout(dirs)
        .or_else(|| philips::layout(dirs))
        .or_else(|| bif::layout(dirs))
        .or_else(|| ndpi::layout(dirs))
}

/// OpenSlide's own properties of a slide, after the vendor's: `openslide.vendor`, and the
/// objective power and microns per pixel when the description gives them.
pub(crate) fn openslide_properties(
    vendor: &str,
    objective: Option<&str>,
    mpp: Option<(f64, f64)>,
) -> Vec<(String, String)> {
    let mut out = vec![("openslide.vendor".to_string(), vendor.to_string())];
    if let Some(power) = objective {
        out.push(("openslide.objective-power".into(), power.into()));
    }
    if let Some((x, y)) = mpp {
        out.push(("openslide.mpp-x".into(), x.to_string()));
        out.push(("openslide.mpp-y".into(), y.to_string()));
    }
    out
}

/// A length per pixel in microns from a description's text: finite, positive and below a
/// metre (anything else is a lying description, ignored).
pub(crate) fn microns(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associated_ids_split_at_the_last_semicolon() {
        assert_eq!(
            Associated::split_id("a;b/slide.svs;label"),
            Some(("a;b/slide.svs", Associated::Label))
        );
        assert_eq!(Associated::split_id("slide.svs;labels"), None);
        assert_eq!(Associated::split_id(";macro"), None);
        assert_eq!(Associated::split_id("slide.svs"), None);
    }

    #[test]
    fn associated_pages_are_far_from_stack_pages() {
        for kind in Associated::ALL {
            assert_eq!(Associated::of_page(kind.page()), Some(kind));
            assert!(kind.page() > 1 << 32);
        }
        assert_eq!(Associated::of_page(0), None);
    }

    #[test]
    fn lying_lengths_are_ignored() {
        assert_eq!(microns(" 0.499 "), Some(0.499));
        for bad in ["", "abc", "-1", "0", "NaN", "inf", "1e300"] {
            assert_eq!(microns(bad), None, "{bad}");
        }
    }
}
