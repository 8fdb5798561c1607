//! IIIF Image API 2.1 and 3.0 request grammar:
//! `{id}/{region}/{size}/{rotation}/{quality}.{format}`, `{id}/info.json`, and the base
//! URI `{id}`. Parsing is pure text; [`ImageParams::resolve`] then turns the parameters
//! into a [`View`] against the image's size and the server's limits.
//!
//! Versions: a path may start with `2/` or `3/` to pick the API version (for example
//! `/iiif/2/<id>/info.json`); otherwise the configured default applies. An identifier
//! whose first segment is literally `2` or `3` can therefore not be served unprefixed.
//!
//! Spec: <https://iiif.io/api/image/3.0/>, <https://iiif.io/api/image/2.1/>.

use crate::error::{RequestError, Result};
use crate::view::{Contrast, Format, Gamma, Process, Quality, Rect, Rotation, SizeLimits, View};

/// IIIF Image API major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Image API 2.1.
    V2,
    /// Image API 3.0.
    V3,
}

impl Version {
    /// The JSON-LD context URI of this version.
    pub fn context(self) -> &'static str {
        match self {
            Version::V2 => "http://iiif.io/api/image/2/context.json",
            Version::V3 => "http://iiif.io/api/image/3/context.json",
        }
    }

    /// The URI of this version's level-2 compliance profile (Link headers).
    pub fn profile(self) -> &'static str {
        match self {
            Version::V2 => "http://iiif.io/api/image/2/level2.json",
            Version::V3 => "http://iiif.io/api/image/3/level2.json",
        }
    }
}

/// What the request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The base URI: answered with a redirect to the info.json.
    Base,
    /// The image information document.
    Info,
    /// An image.
    Image(ImageParams),
}

/// A parsed IIIF request.
#[derive(Debug, Clone, PartialEq)]
pub struct IiifRequest {
    /// The version asked for in the path, if any.
    pub version: Option<Version>,
    /// The identifier, percent-decoded.
    pub id: String,
    /// The identifier exactly as it appeared in the path (for building URIs).
    pub raw_id: String,
    /// What is asked.
    pub target: Target,
}

/// The region parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Region {
    /// `full`.
    Full,
    /// `square`: the centred square of the shorter side.
    Square,
    /// `x,y,w,h` in pixels.
    Pixels(u32, u32, u32, u32),
    /// `pct:x,y,w,h` in percent of the full size.
    Percent(f64, f64, f64, f64),
}

/// The size parameter. `upscale` is the v3 `^` prefix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// `max` (and v2 `full`).
    Max {
        /// `^` given.
        upscale: bool,
    },
    /// `w,`.
    Width(u32, bool),
    /// `,h`.
    Height(u32, bool),
    /// `pct:n`.
    Percent(f64, bool),
    /// `w,h`, aspect not kept.
    Exact(u32, u32, bool),
    /// `!w,h`, fitted inside the box.
    Fit(u32, u32, bool),
}

impl ImageParams {
    /// The parameters as a path `{region}/{size}/{rotation}/{quality}.{format}`, which
    /// [`parse`] reads back to the same parameters (used by the fuzzer's round trip).
    pub fn to_path(&self) -> String {
        let region = match self.region {
            Region::Full => "full".to_string(),
            Region::Square => "square".to_string(),
            Region::Pixels(x, y, w, h) => format!("{x},{y},{w},{h}"),
            Region::Percent(x, y, w, h) => format!("pct:{x},{y},{w},{h}"),
        };
        let up = |u: bool| if u { "^" } else { "" };
        let size = match self.size {
            Size::Max { upscale } => format!("{}max", up(upscale)),
            Size::Width(w, u) => format!("{}{w},", up(u)),
            Size::Height(h, u) => format!("{},{h}", up(u)),
            Size::Percent(n, u) => format!("{}pct:{n}", up(u)),
            Size::Exact(w, h, u) => format!("{}{w},{h}", up(u)),
            Size::Fit(w, h, u) => format!("{}!{w},{h}", up(u)),
        };
        let mirror = if self.rotation.mirror { "!" } else { "" };
        format!(
            "{region}/{size}/{mirror}{}/{}.{}",
            self.rotation.degrees,
            self.quality_name(),
            self.format.extension()
        )
    }

    /// The quality as its canonical IIIF token (`default` for `color` and `native`).
    pub fn quality_name(&self) -> &'static str {
        match (self.extension, self.quality) {
            (Some(e), _) => e.name(),
            (None, q) => quality_name(q),
        }
    }

    /// Refuses an extra quality when IIIF_EXTENSIONS is off: 400, as any unknown quality.
    pub fn check_extensions(&self, enabled: bool) -> Result<()> {
        match self.extension {
            Some(e) if !enabled => Err(RequestError::bad(format!(
                "IIIF: unsupported quality: {}",
                e.name()
            ))),
            _ => Ok(()),
        }
    }
}

/// The file and page an identifier names when IIIF_DELIMITER is `delimiter`, as the newest
/// original reads it: `stack.tif;3` with `;` is page 3 of `stack.tif`. An identifier whose
/// text after the last delimiter is not a page number names a file whole.
pub fn split_page<'a>(id: &'a str, delimiter: &str) -> (&'a str, Option<i32>) {
    let page = id
        .rsplit_once(delimiter)
        .filter(|(file, n)| {
            !file.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|(file, n)| Some((file, n.parse().ok()?)));
    match page {
        Some((file, n)) => (file, Some(n)),
        None => (id, None),
    }
}

/// The IIIF token of a standard quality.
fn quality_name(q: Quality) -> &'static str {
    match q {
        Quality::Default => "default",
        Quality::Gray => "gray",
        Quality::Bitonal => "bitonal",
    }
}

/// The original's extra IIIF qualities (IIIF_EXTENSIONS=1), each the IIP processing step of
/// the same meaning, so IIIF clients reach them without IIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// `negative`: IIP `INV`.
    Negative,
    /// `stretch`: IIP `CNT=st`, the histogram's range stretched to 0-255.
    Stretch,
    /// `equalization`: IIP `CNT=eq`, histogram equalisation.
    Equalization,
    /// `log`: IIP `GAM=log`.
    Log,
}

impl Extension {
    /// Every extra quality, in the order info.json lists them.
    pub const ALL: [Extension; 4] = [
        Extension::Negative,
        Extension::Stretch,
        Extension::Equalization,
        Extension::Log,
    ];

    /// The quality's IIIF token.
    pub const fn name(self) -> &'static str {
        match self {
            Extension::Negative => "negative",
            Extension::Stretch => "stretch",
            Extension::Equalization => "equalization",
            Extension::Log => "log",
        }
    }

    /// The processing this quality stands for.
    fn process(self) -> Process {
        let mut p = Process::default();
        match self {
            Extension::Negative => p.invert = true,
            Extension::Stretch => p.contrast = Some(Contrast::Stretch),
            Extension::Equalization => p.equalise = true,
            Extension::Log => p.gamma = Some(Gamma::Log),
        }
        p
    }
}

/// The image parameters of a request, not yet resolved against an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageParams {
    /// Region.
    pub region: Region,
    /// Size.
    pub size: Size,
    /// Rotation and mirroring.
    pub rotation: Rotation,
    /// Quality (`Default` for an extra quality).
    pub quality: Quality,
    /// An extra quality of IIIF_EXTENSIONS, if one was asked.
    pub extension: Option<Extension>,
    /// Format.
    pub format: Format,
}

fn decode(s: &str) -> Result<String> {
    super::decode(s, "IIIF")
}

/// Parses the part of the path after the IIIF prefix (no leading slash), e.g.
/// `img.tif/0,0,256,256/256,/0/default.jpg`.
pub fn parse(path: &str) -> Result<IiifRequest> {
    let mut segs: Vec<&str> = path.split('/').collect();
    if segs.last() == Some(&"") {
        segs.pop();
    }
    let version = match segs.first() {
        Some(&"2") if segs.len() > 1 => Some(Version::V2),
        Some(&"3") if segs.len() > 1 => Some(Version::V3),
        _ => None,
    };
    if version.is_some() {
        segs.remove(0);
    }
    if segs.is_empty() || segs.iter().all(|s| s.is_empty()) {
        return Err(RequestError::bad("IIIF: no identifier"));
    }
    let (id_segs, target) = if segs.last() == Some(&"info.json") {
        (&segs[..segs.len() - 1], Target::Info)
    } else if segs.len() >= 5 && segs[segs.len() - 1].contains('.') {
        let n = segs.len();
        let v = version.unwrap_or(Version::V3);
        (
            &segs[..n - 4],
            Target::Image(parse_image(&segs[n - 4..], v)?),
        )
    } else if segs.len() >= 5 {
        return Err(RequestError::bad(
            "IIIF: the quality must be followed by a format, as in default.jpg",
        ));
    } else {
        (&segs[..], Target::Base)
    };
    if id_segs.is_empty() {
        return Err(RequestError::bad("IIIF: no identifier"));
    }
    let raw_id = id_segs.join("/");
    let id = decode(&raw_id)?;
    Ok(IiifRequest {
        version,
        id,
        raw_id,
        target,
    })
}

fn parse_image(p: &[&str], version: Version) -> Result<ImageParams> {
    let (quality, format) = p[3]
        .rsplit_once('.')
        .ok_or_else(|| RequestError::bad("IIIF: missing format"))?;
    let extension = Extension::ALL.into_iter().find(|e| e.name() == quality);
    Ok(ImageParams {
        region: parse_region(p[0])?,
        size: parse_size(p[1], version)?,
        rotation: parse_rotation(p[2])?,
        quality: match extension {
            Some(_) => Quality::Default,
            None => parse_quality(quality)?,
        },
        extension,
        format: parse_format(format)?,
    })
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then(|| s.parse().ok())
        .flatten()
        .ok_or_else(|| RequestError::bad(format!("IIIF: incorrect {what}: {s}")))
}

fn four<T: std::str::FromStr + Copy>(s: &str, what: &str) -> Result<[T; 4]> {
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() != 4 {
        return Err(RequestError::bad(format!(
            "IIIF: incorrect {what} format: {s}"
        )));
    }
    let v: Vec<T> = parts
        .iter()
        .map(|x| number(x, what))
        .collect::<Result<_>>()?;
    Ok([v[0], v[1], v[2], v[3]])
}

/// Parses a region parameter.
pub(crate) fn parse_region(s: &str) -> Result<Region> {
    match s {
        "full" => Ok(Region::Full),
        "square" => Ok(Region::Square),
        _ => {
            if let Some(p) = s.strip_prefix("pct:") {
                let [x, y, w, h] = four::<f64>(p, "region")?;
                let finite = [x, y, w, h].iter().all(|v| v.is_finite());
                if !finite || w <= 0.0 || h <= 0.0 || x >= 100.0 || y >= 100.0 {
                    return Err(RequestError::bad(format!("IIIF: region out of range: {s}")));
                }
                Ok(Region::Percent(x, y, w, h))
            } else {
                let [x, y, w, h] = four::<u32>(s, "region")?;
                if w == 0 || h == 0 {
                    return Err(RequestError::bad(format!(
                        "IIIF: region has zero size: {s}"
                    )));
                }
                Ok(Region::Pixels(x, y, w, h))
            }
        }
    }
}

/// Parses a size parameter for the given version (`^` is v3 only; `full` is v2 only).
pub(crate) fn parse_size(s: &str, version: Version) -> Result<Size> {
    let (up, body) = match s.strip_prefix('^') {
        Some(rest) if version == Version::V3 => (true, rest),
        Some(_) => {
            return Err(RequestError::bad(format!(
                "IIIF: incorrect size format: {s}"
            )))
        }
        None => (false, s),
    };
    let bad = || RequestError::bad(format!("IIIF: incorrect size format: {s}"));
    let positive = |v: u32| if v == 0 { Err(bad()) } else { Ok(v) };
    match body {
        "max" => Ok(Size::Max { upscale: up }),
        "full" if version == Version::V2 => Ok(Size::Max { upscale: false }),
        _ => {
            if let Some(p) = body.strip_prefix("pct:") {
                let n: f64 = number(p, "size")?;
                if n <= 0.0 || !n.is_finite() {
                    return Err(bad());
                }
                return Ok(Size::Percent(n, up));
            }
            let (fit, wh) = match body.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, body),
            };
            let (w, h) = wh.split_once(',').ok_or_else(bad)?;
            match (w.is_empty(), h.is_empty(), fit) {
                (false, true, false) => Ok(Size::Width(positive(number(w, "size")?)?, up)),
                (true, false, false) => Ok(Size::Height(positive(number(h, "size")?)?, up)),
                (false, false, _) => {
                    let (w, h) = (positive(number(w, "size")?)?, positive(number(h, "size")?)?);
                    Ok(if fit {
                        Size::Fit(w, h, up)
                    } else {
                        Size::Exact(w, h, up)
                    })
                }
                _ => Err(bad()),
            }
        }
    }
}

/// Parses a rotation parameter: `[!]degrees`, 0 to 360.
pub(crate) fn parse_rotation(s: &str) -> Result<Rotation> {
    let (mirror, n) = match s.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let degrees: f64 = number(n, "rotation")?;
    if !(0.0..=360.0).contains(&degrees) {
        // Also refuses infinities (overlong digit strings).
        return Err(RequestError::bad(format!(
            "IIIF: rotation out of range: {s}"
        )));
    }
    Ok(Rotation {
        mirror,
        degrees: degrees % 360.0,
    })
}

/// Parses a quality name.
pub(crate) fn parse_quality(s: &str) -> Result<Quality> {
    match s {
        "default" | "color" | "native" => Ok(Quality::Default),
        "gray" | "grey" => Ok(Quality::Gray),
        "bitonal" => Ok(Quality::Bitonal),
        _ => Err(RequestError::bad(format!("IIIF: unsupported quality: {s}"))),
    }
}

/// Parses a format token: known IIIF formats we do not produce are 501, others 400.
pub(crate) fn parse_format(s: &str) -> Result<Format> {
    match s {
        "jpg" | "jpeg" => Ok(Format::Jpeg),
        "png" => Ok(Format::Png),
        "webp" => Ok(Format::Webp),
        "tif" | "tiff" => Ok(Format::Tiff),
        "avif" => Ok(Format::Avif),
        "gif" | "jp2" | "pdf" | "heic" => Err(RequestError::Unsupported(format!(
            "IIIF: format {s} is not produced by this server"
        ))),
        _ => Err(RequestError::bad(format!("IIIF: unsupported format: {s}"))),
    }
}

impl Region {
    /// The region in pixels of an image of `width`×`height`, clipped to it.
    pub fn resolve(self, width: u32, height: u32) -> Result<Rect> {
        let (x, y, w, h) = match self {
            Region::Full => (0, 0, width, height),
            Region::Square => {
                let s = width.min(height);
                ((width - s) / 2, (height - s) / 2, s, s)
            }
            Region::Pixels(x, y, w, h) => (x, y, w, h),
            Region::Percent(px, py, pw, ph) => {
                let f = |p: f64, d: u32| (p * d as f64 / 100.0).round().min(u32::MAX as f64) as u32;
                (
                    f(px, width),
                    f(py, height),
                    f(pw, width).max(1),
                    f(ph, height).max(1),
                )
            }
        };
        if x >= width || y >= height {
            return Err(RequestError::bad("IIIF: region is outside the image"));
        }
        Ok(Rect {
            x,
            y,
            w: w.min(width - x),
            h: h.min(height - y),
        })
    }
}

impl Size {
    /// The output size for a region of `rw`×`rh`, enforcing the version's upscaling
    /// rules and the server's limits.
    pub fn resolve(
        self,
        rw: u32,
        rh: u32,
        version: Version,
        limits: SizeLimits,
    ) -> Result<(u32, u32)> {
        let (rwf, rhf) = (rw as f64, rh as f64);
        let scaled = |s: f64| ((rwf * s).round().max(1.0), (rhf * s).round().max(1.0));
        let (w, h, up) = match self {
            Size::Max { upscale } => {
                let cap = limits.max_size.map_or(f64::INFINITY, f64::from);
                let s = (cap / rwf).min(cap / rhf);
                let s = if upscale { s } else { s.min(1.0) };
                let (w, h) = if s.is_finite() { scaled(s) } else { (rwf, rhf) };
                (w, h, upscale)
            }
            Size::Width(w, up) => (w as f64, (w as f64 * rhf / rwf).round().max(1.0), up),
            Size::Height(h, up) => ((h as f64 * rwf / rhf).round().max(1.0), h as f64, up),
            Size::Percent(p, up) => {
                let (w, h) = scaled(p / 100.0);
                (w, h, up)
            }
            Size::Exact(w, h, up) => (w as f64, h as f64, up),
            Size::Fit(bw, bh, up) => {
                let s = (bw as f64 / rwf).min(bh as f64 / rhf);
                let (w, h) = scaled(s);
                (w.min(bw as f64), h.min(bh as f64), up)
            }
        };
        let grows = w > rwf || h > rhf;
        if grows && version == Version::V3 && !up {
            return Err(RequestError::bad(
                "IIIF: a size larger than the region needs the ^ prefix",
            ));
        }
        if grows && !limits.allow_upscaling {
            return Err(RequestError::bad(
                "IIIF: upscaling is not allowed on this server",
            ));
        }
        if let Some(m) = limits.max_size {
            if w > m as f64 || h > m as f64 {
                return Err(RequestError::bad(format!(
                    "IIIF: requested size exceeds the maximum of {m} pixels"
                )));
            }
        }
        if w > u32::MAX as f64 || h > u32::MAX as f64 {
            return Err(RequestError::bad("IIIF: requested size is too large"));
        }
        Ok((w as u32, h as u32))
    }
}

impl ImageParams {
    /// Resolves against an image of `width`×`height` into the neutral [`View`].
    pub fn resolve(
        &self,
        width: u32,
        height: u32,
        version: Version,
        limits: SizeLimits,
    ) -> Result<View> {
        let region = self.region.resolve(width, height)?;
        let (w, h) = self.size.resolve(region.w, region.h, version, limits)?;
        Ok(View {
            region,
            width: w,
            height: h,
            rotation: self.rotation,
            quality: self.quality,
            process: self.extension.map(Extension::process).unwrap_or_default(),
            format: self.format,
            encoder_quality: None,
            layers: 0,
            planes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SizeLimits = SizeLimits {
        max_size: Some(5000),
        allow_upscaling: true,
    };

    fn image(path: &str) -> ImageParams {
        match parse(path).expect("parses").target {
            Target::Image(p) => p,
            t => panic!("not an image request: {t:?}"),
        }
    }

    fn status(path: &str) -> u16 {
        parse(path).err().map_or(200, |e| e.status())
    }

    #[test]
    fn image_parameters_print_and_parse_back() {
        for path in [
            "a/full/max/0/default.jpg",
            "a/pct:10.5,20,30.25,40/^!300,200/!90/gray.png",
            "a/0,0,256,256/256,/0/color.webp",
            "a/square/,100/180.5/bitonal.tif",
            "a/full/pct:12.5/0/default.jpg",
        ] {
            let first = parse(path).expect("parse");
            let Target::Image(p) = &first.target else {
                panic!("{path}: not an image request");
            };
            let again = parse(&format!("a/{}", p.to_path())).expect("reparse");
            assert_eq!(again.target, first.target, "{path}");
        }
        let huge = format!("a/full/pct:{}/0/default.jpg", "9".repeat(400));
        assert!(parse(&huge).is_err());
    }

    #[test]
    fn info_base_and_image_targets() {
        let r = parse("a.tif/info.json").expect("info");
        assert_eq!((r.id.as_str(), r.target), ("a.tif", Target::Info));
        assert_eq!(parse("a.tif").expect("base").target, Target::Base);
        assert_eq!(parse("a.tif/").expect("base").target, Target::Base);
        let r = parse("dir/sub/a.tif/full/max/0/default.jpg").expect("image");
        assert_eq!(r.id, "dir/sub/a.tif");
    }

    #[test]
    fn version_prefix_and_decoding() {
        let r = parse("2/a%2Db.tif/info.json").expect("v2");
        assert_eq!(r.version, Some(Version::V2));
        assert_eq!(r.id, "a-b.tif");
        assert_eq!(r.raw_id, "a%2Db.tif");
        assert_eq!(
            parse("3/x/full/max/0/default.png").expect("v3").version,
            Some(Version::V3)
        );
        // a lone "2" is an identifier
        assert_eq!(parse("2").expect("id").id, "2");
        assert_eq!(status("%FF%FE/info.json"), 400);
    }

    #[test]
    fn every_region_form() {
        assert_eq!(image("i/full/max/0/default.jpg").region, Region::Full);
        assert_eq!(image("i/square/max/0/default.jpg").region, Region::Square);
        assert_eq!(
            image("i/1,2,3,4/max/0/default.jpg").region,
            Region::Pixels(1, 2, 3, 4)
        );
        assert_eq!(
            image("i/pct:10,20.5,30,40/max/0/default.jpg").region,
            Region::Percent(10.0, 20.5, 30.0, 40.0)
        );
        for bad in [
            "abc",
            "1,2,3",
            "1,2,3,4,5",
            "0,0,0,10",
            "-1,0,5,5",
            "pct:0,0,0,5",
            "pct:a,0,5,5",
            "1,2,3,x",
        ] {
            assert_eq!(status(&format!("i/{bad}/max/0/default.jpg")), 400, "{bad}");
        }
    }

    #[test]
    fn region_resolution_clips_and_rejects_outside() {
        assert_eq!(
            Region::Square.resolve(300, 200).expect("sq"),
            Rect {
                x: 50,
                y: 0,
                w: 200,
                h: 200
            }
        );
        assert_eq!(
            Region::Pixels(900, 0, 500, 10)
                .resolve(1000, 10)
                .expect("clip"),
            Rect {
                x: 900,
                y: 0,
                w: 100,
                h: 10
            }
        );
        assert!(Region::Pixels(1000, 0, 5, 5).resolve(1000, 10).is_err());
        assert_eq!(
            Region::Percent(50.0, 50.0, 50.0, 50.0)
                .resolve(1000, 800)
                .expect("pct"),
            Rect {
                x: 500,
                y: 400,
                w: 500,
                h: 400
            }
        );
    }

    #[test]
    fn every_size_form_v3() {
        let v = Version::V3;
        let size = |s: &str| parse_size(s, v).and_then(|z| z.resolve(1000, 500, v, LIMITS));
        assert_eq!(size("max").expect("max"), (1000, 500));
        assert_eq!(size("500,").expect("w"), (500, 250));
        assert_eq!(size(",100").expect("h"), (200, 100));
        assert_eq!(size("pct:50").expect("pct"), (500, 250));
        assert_eq!(size("300,300").expect("wh"), (300, 300));
        assert_eq!(size("!200,200").expect("fit"), (200, 100));
        assert_eq!(size("^2000,").expect("up w"), (2000, 1000));
        assert_eq!(size("^pct:200").expect("up pct"), (2000, 1000));
        assert_eq!(size("^!3000,3000").expect("up fit"), (3000, 1500));
        assert_eq!(size("^max").expect("up max"), (5000, 2500));
        for bad in ["2000,", ",600", "pct:101", "!2000,3000", "1001,10"] {
            assert_eq!(size(bad).map_err(|e| e.status()), Err(400), "{bad}");
        }
        for bad in [
            "full", "0,", ",0", "pct:0", "abc", ",", "!,5", "1,2,3", "^^max", "-5,",
        ] {
            assert_eq!(
                parse_size(bad, v).map_err(|e| e.status()).err(),
                Some(400),
                "{bad}"
            );
        }
    }

    #[test]
    fn v2_sizes_upscale_freely() {
        let v = Version::V2;
        let size = |s: &str| parse_size(s, v).and_then(|z| z.resolve(100, 50, v, LIMITS));
        assert_eq!(size("full").expect("full"), (100, 50));
        assert_eq!(size("400,").expect("up"), (400, 200));
        assert!(parse_size("^max", v).is_err());
        let strict = SizeLimits {
            max_size: Some(5000),
            allow_upscaling: false,
        };
        assert!(Size::Width(400, false).resolve(100, 50, v, strict).is_err());
        assert!(Size::Width(6000, false)
            .resolve(10000, 50, v, LIMITS)
            .is_err());
    }

    #[test]
    fn rotations() {
        assert_eq!(
            image("i/full/max/!90/default.jpg").rotation,
            Rotation {
                mirror: true,
                degrees: 90.0
            }
        );
        assert_eq!(image("i/full/max/22.5/default.jpg").rotation.degrees, 22.5);
        assert_eq!(image("i/full/max/360/default.jpg").rotation.degrees, 0.0);
        for bad in ["-90", "361", "abc", "!!90", "", "9 0"] {
            assert_eq!(
                status(&format!("i/full/max/{bad}/default.jpg")),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn qualities_and_formats() {
        assert_eq!(image("i/full/max/0/gray.png").quality, Quality::Gray);
        assert_eq!(image("i/full/max/0/bitonal.webp").format, Format::Webp);
        assert_eq!(image("i/full/max/0/color.tif").format, Format::Tiff);
        assert_eq!(image("i/full/max/0/default.avif").format, Format::Avif);
        assert_eq!(status("i/full/max/0/fancy.jpg"), 400);
        assert_eq!(status("i/full/max/0/default.xyz"), 400);
        assert_eq!(status("i/full/max/0/default.gif"), 501);
        assert_eq!(status("i/full/max/0/default"), 400);
    }

    #[test]
    fn page_numbers_after_the_delimiter() {
        assert_eq!(split_page("stack.tif;3", ";"), ("stack.tif", Some(3)));
        assert_eq!(split_page("a/b_c.tif_12", "_"), ("a/b_c.tif", Some(12)));
        assert_eq!(split_page("dir::x.tif::0", "::"), ("dir::x.tif", Some(0)));
        for whole in [
            "stack.tif",
            "stack.tif;",
            ";3",
            "stack.tif;x3",
            "stack.tif;-1",
            "a;99999999999",
        ] {
            assert_eq!(split_page(whole, ";"), (whole, None), "{whole}");
        }
    }

    #[test]
    fn extra_qualities_are_processing_steps_gated_by_the_setting() {
        type Applied = fn(&Process) -> bool;
        let expect: [(&str, Applied); 4] = [
            ("negative", |p: &Process| p.invert),
            ("stretch", |p: &Process| {
                p.contrast == Some(Contrast::Stretch)
            }),
            ("equalization", |p: &Process| p.equalise),
            ("log", |p: &Process| p.gamma == Some(Gamma::Log)),
        ];
        for (name, applied) in expect {
            let p = image(&format!("i/full/max/0/{name}.png"));
            assert_eq!(p.quality_name(), name);
            assert_eq!(
                parse(&format!("id/{}", p.to_path())).ok().map(|r| r.target),
                Some(Target::Image(p.clone()))
            );
            assert_eq!(p.check_extensions(false).map_err(|e| e.status()), Err(400));
            assert!(p.check_extensions(true).is_ok());
            let v = p.resolve(100, 100, Version::V3, LIMITS).expect("view");
            assert!(applied(&v.process), "{name}");
            assert_eq!(v.quality, Quality::Default);
        }
        assert!(image("i/full/max/0/gray.jpg")
            .check_extensions(false)
            .is_ok());
    }

    #[test]
    fn resolve_builds_the_view() {
        let p = image("i/0,0,512,512/256,/90/gray.jpg");
        let v = p.resolve(1000, 1000, Version::V3, LIMITS).expect("view");
        assert_eq!((v.width, v.height), (256, 256));
        assert_eq!(
            v.region,
            Rect {
                x: 0,
                y: 0,
                w: 512,
                h: 512
            }
        );
        assert_eq!(v.rotation.quarter_turns(), Some(1));
    }
}
