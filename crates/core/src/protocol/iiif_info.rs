//! The IIIF image information document (`info.json`) for versions 2.1 and 3.0, built from
//! an [`ImageInfo`]. Pure: the caller supplies the identifier URI and the server's limits.

use super::iiif::{Extension, Version};
use crate::info::ImageInfo;
use crate::info::Level;
use serde_json::{json, Map, Value};

/// Everything besides the image that shapes an info.json.
#[derive(Debug, Clone)]
pub struct InfoContext<'a> {
    /// The image's IIIF base URI (the `id`).
    pub id: &'a str,
    /// API version to answer in.
    pub version: Version,
    /// MAX_CVT, advertised as maxWidth/maxHeight.
    pub max_size: Option<u32>,
    /// ALLOW_UPSCALING.
    pub allow_upscaling: bool,
    /// COPYRIGHT: v3 `rights`, v2 `attribution`.
    pub copyright: Option<&'a str>,
    /// IIIF_EXTRA_INFO: fields merged in last.
    pub extra: Option<&'a Map<String, Value>>,
    /// IIIF_EXTENSIONS: the original's extra qualities are listed (and served).
    pub extensions: bool,
    /// AVIF is listed among the formats (the server was built with it).
    pub avif: bool,
}

/// The qualities beyond `default` an image offers: colour for three or more channels,
/// grey and bitonal, then the extra qualities when IIIF_EXTENSIONS is on.
fn qualities(colour: bool, ctx: &InfoContext) -> Vec<&'static str> {
    let mut q = if colour {
        vec!["color", "gray", "bitonal"]
    } else {
        vec!["gray", "bitonal"]
    };
    if ctx.extensions {
        q.extend(Extension::ALL.map(Extension::name));
    }
    q
}

const FORMATS: [&str; 3] = ["png", "webp", "tif"];

/// The formats beyond `jpg`: [`FORMATS`], then `avif` when the server encodes it.
fn formats(ctx: &InfoContext) -> Vec<&'static str> {
    let mut f = FORMATS.to_vec();
    if ctx.avif {
        f.push("avif");
    }
    f
}
/// Features of both versions (same names in 2.1 `supports` and 3.0 `extraFeatures`).
const FEATURES: [&str; 16] = [
    "baseUriRedirect",
    "canonicalLinkHeader",
    "cors",
    "jsonldMediaType",
    "mirroring",
    "profileLinkHeader",
    "regionByPct",
    "regionByPx",
    "regionSquare",
    "rotationArbitrary",
    "rotationBy90s",
    "sizeByConfinedWh",
    "sizeByH",
    "sizeByPct",
    "sizeByW",
    "sizeByWh",
];

/// The tile size to advertise: the stored one, or 256 for images stored in whole-width
/// strips (a viewer should not fetch full-width strips).
fn tile_size(l0: &Level, width: u32) -> (u32, u32) {
    if l0.tile_width == width && width > 1024 {
        (256, 256)
    } else {
        (l0.tile_width, l0.tile_height)
    }
}

/// Builds the info.json document.
pub fn info_json(info: &ImageInfo, ctx: &InfoContext) -> Value {
    let v3 = ctx.version == Version::V3;
    let mut m = Map::new();
    m.insert("@context".into(), json!(ctx.version.context()));
    m.insert(if v3 { "id" } else { "@id" }.into(), json!(ctx.id));
    if v3 {
        m.insert("type".into(), json!("ImageService3"));
    }
    m.insert("protocol".into(), json!("http://iiif.io/api/image"));
    if v3 {
        m.insert("profile".into(), json!("level2"));
    }
    m.insert("width".into(), json!(info.width));
    m.insert("height".into(), json!(info.height));
    if let (Some(max), true) = (ctx.max_size, v3) {
        m.insert("maxWidth".into(), json!(max));
        m.insert("maxHeight".into(), json!(max));
        m.insert("maxArea".into(), json!(max as u64 * max as u64));
    }
    // Only sizes the service answers: none beyond maxWidth/maxHeight.
    let sizes: Vec<Value> = info.levels[1..]
        .iter()
        .filter(|l| ctx.max_size.is_none_or(|m| l.width <= m && l.height <= m))
        .rev()
        .map(|l| json!({"width": l.width, "height": l.height}))
        .collect();
    m.insert("sizes".into(), Value::Array(sizes));
    let scale_factors: Vec<u32> = info
        .levels
        .iter()
        .map(|l| l.scale_x.round().max(1.0) as u32)
        .collect();
    let (tw, th) = tile_size(&info.levels[0], info.width);
    m.insert(
        "tiles".into(),
        json!([{"width": tw, "height": th, "scaleFactors": scale_factors}]),
    );
    let colour = info.channels >= 3;
    // COPYRIGHT, else the file's own Copyright tag (in v3 only when it is a URI, as
    // `rights` must be: a licence or rights statement).
    let tagged = info.metadata.copyright.as_deref();
    if v3 {
        insert_v3_extras(&mut m, colour, ctx);
        let uri = tagged.filter(|c| c.starts_with("http://") || c.starts_with("https://"));
        if let Some(c) = ctx.copyright.or(uri) {
            m.insert("rights".into(), json!(c));
        }
    } else {
        m.insert("profile".into(), v2_profile(colour, ctx));
        if let Some(c) = ctx.copyright.or(tagged) {
            m.insert("attribution".into(), json!(c));
        }
    }
    let mut services = Vec::new();
    if let Some((ppcm, _)) = info.metadata.pixels_per_cm {
        services.push(physdim(ctx, 1.0 / ppcm));
    }
    if !info.metadata.channels.is_empty() {
        services.push(channels(ctx, &info.metadata.channels));
    }
    if !services.is_empty() {
        m.insert("service".into(), Value::Array(services));
    }
    if let Some(extra) = ctx.extra {
        m.extend(extra.clone());
    }
    Value::Object(m)
}

fn insert_v3_extras(m: &mut Map<String, Value>, colour: bool, ctx: &InfoContext) {
    let mut features: Vec<&str> = FEATURES.to_vec();
    if ctx.allow_upscaling {
        features.push("sizeUpscaling");
    }
    m.insert("extraQualities".into(), json!(qualities(colour, ctx)));
    m.insert("extraFormats".into(), json!(formats(ctx)));
    m.insert("extraFeatures".into(), json!(features));
}

fn v2_profile(colour: bool, ctx: &InfoContext) -> Value {
    let mut listed = vec!["default"];
    listed.extend(qualities(colour, ctx));
    let mut supports: Vec<&str> = FEATURES.to_vec();
    supports.push("sizeByDistortedWh");
    if ctx.allow_upscaling {
        supports.push("sizeAboveFull");
    }
    let mut all_formats = vec!["jpg"];
    all_formats.extend(formats(ctx));
    let mut p = json!({"formats": all_formats, "qualities": listed, "supports": supports});
    if let (Some(max), Some(obj)) = (ctx.max_size, p.as_object_mut()) {
        obj.insert("maxWidth".into(), json!(max));
        obj.insert("maxHeight".into(), json!(max));
        obj.insert("maxArea".into(), json!(max as u64 * max as u64));
    }
    json!([Version::V2.profile(), p])
}

/// The profile of our channels service: the names and colours of a multi-channel
/// (fluorescence) image's channels, in sample order (or, for an OME-TIFF whose planes are
/// pages, in the order of its channel planes).
pub const CHANNELS_PROFILE: &str = "https://iipimage.sourceforge.io/api/channels";

/// The channels service: `channels` is a list of `{"label": name, "color": "#rrggbb"}`
/// (either may be missing when the file does not say).
fn channels(ctx: &InfoContext, channels: &[crate::info::Channel]) -> Value {
    let list: Vec<Value> = channels
        .iter()
        .map(|c| {
            let mut entry = Map::new();
            if let Some(name) = &c.name {
                entry.insert("label".into(), json!(name));
            }
            if let Some([r, g, b, _]) = c.colour {
                entry.insert("color".into(), json!(format!("#{r:02x}{g:02x}{b:02x}")));
            }
            Value::Object(entry)
        })
        .collect();
    let id = format!("{}/channels", ctx.id);
    match ctx.version {
        Version::V3 => {
            json!({"id": id, "type": "Service", "profile": CHANNELS_PROFILE, "channels": list})
        }
        Version::V2 => json!({"@id": id, "profile": CHANNELS_PROFILE, "channels": list}),
    }
}

/// The physical dimensions service, with the `id`/`type` the v3 validator requires.
fn physdim(ctx: &InfoContext, cm_per_pixel: f64) -> Value {
    let id = format!("{}/physdim", ctx.id);
    // six significant digits: a microscope's pixel is a few 1e-5 cm
    let scale: f64 = format!("{cm_per_pixel:.5e}")
        .parse()
        .unwrap_or(cm_per_pixel);
    match ctx.version {
        Version::V3 => json!({
            "id": id,
            "type": "Service",
            "profile": "http://iiif.io/api/annex/services/physdim",
            "physicalScale": scale,
            "physicalUnits": "cm"
        }),
        Version::V2 => json!({
            "@context": "http://iiif.io/api/annex/services/physdim/1/context.json",
            "@id": id,
            "profile": "http://iiif.io/api/annex/services/physdim",
            "physicalScale": scale,
            "physicalUnits": "cm"
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageInfo {
        let mut info = crate::info::dyadic_info(1000, 800, 3);
        info.metadata.pixels_per_cm = Some((10.0, 10.0));
        info
    }

    fn ctx(version: Version) -> InfoContext<'static> {
        InfoContext {
            id: "http://h/iiif/a.tif",
            version,
            max_size: Some(5000),
            allow_upscaling: true,
            copyright: None,
            extra: None,
            extensions: false,
            avif: false,
        }
    }

    #[test]
    fn extra_qualities_only_when_enabled() {
        let listed = |c: &InfoContext| info_json(&image(), c)["extraQualities"].clone();
        assert_eq!(
            listed(&ctx(Version::V3)),
            json!(["color", "gray", "bitonal"])
        );
        let mut on = ctx(Version::V3);
        on.extensions = true;
        assert_eq!(
            listed(&on),
            json!([
                "color",
                "gray",
                "bitonal",
                "negative",
                "stretch",
                "equalization",
                "log"
            ])
        );
        on.version = Version::V2;
        assert_eq!(
            info_json(&image(), &on)["profile"][1]["qualities"][7],
            "log"
        );
    }

    #[test]
    fn avif_is_listed_only_when_built() {
        let mut c = ctx(Version::V3);
        assert_eq!(
            info_json(&image(), &c)["extraFormats"],
            json!(["png", "webp", "tif"])
        );
        c.avif = true;
        assert_eq!(
            info_json(&image(), &c)["extraFormats"],
            json!(["png", "webp", "tif", "avif"])
        );
        c.version = Version::V2;
        assert_eq!(
            info_json(&image(), &c)["profile"][1]["formats"],
            json!(["jpg", "png", "webp", "tif", "avif"])
        );
    }

    #[test]
    fn v3_document() {
        let j = info_json(&image(), &ctx(Version::V3));
        assert_eq!(j["id"], "http://h/iiif/a.tif");
        assert_eq!(j["type"], "ImageService3");
        assert_eq!(j["profile"], "level2");
        assert_eq!(j["sizes"][0], json!({"width": 250, "height": 200}));
        assert_eq!(j["tiles"][0]["scaleFactors"], json!([1, 2, 4]));
        assert_eq!(j["maxWidth"], 5000);
        assert_eq!(j["maxArea"], 25_000_000);
        assert!(j["extraFeatures"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("regionSquare"))));
        assert_eq!(j["service"][0]["type"], "Service");
        assert_eq!(j["service"][0]["physicalScale"], 0.1);
    }

    #[test]
    fn v2_document() {
        let j = info_json(&image(), &ctx(Version::V2));
        assert_eq!(j["@id"], "http://h/iiif/a.tif");
        assert_eq!(j["@context"], "http://iiif.io/api/image/2/context.json");
        assert_eq!(j["profile"][0], "http://iiif.io/api/image/2/level2.json");
        assert_eq!(j["profile"][1]["maxWidth"], 5000);
        assert!(j.get("type").is_none());
    }

    #[test]
    fn extra_info_is_merged() {
        let mut extra = Map::new();
        extra.insert("logo".into(), json!("http://h/logo.png"));
        let mut c = ctx(Version::V3);
        c.extra = Some(&extra);
        assert_eq!(info_json(&image(), &c)["logo"], "http://h/logo.png");
    }

    #[test]
    fn the_files_copyright_is_the_fallback() {
        let mut info = image();
        info.metadata.copyright = Some("© The Museum".into());
        assert_eq!(
            info_json(&info, &ctx(Version::V2))["attribution"],
            "© The Museum"
        );
        assert!(info_json(&info, &ctx(Version::V3)).get("rights").is_none());
        info.metadata.copyright = Some("https://creativecommons.org/licenses/by/4.0/".into());
        let j = info_json(&info, &ctx(Version::V3));
        assert_eq!(j["rights"], "https://creativecommons.org/licenses/by/4.0/");
        let mut c = ctx(Version::V3);
        c.copyright = Some("http://rightsstatements.org/vocab/InC/1.0/");
        assert_eq!(
            info_json(&info, &c)["rights"],
            "http://rightsstatements.org/vocab/InC/1.0/"
        );
    }
}
