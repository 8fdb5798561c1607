//! The Internet Imaging Protocol as the original iipsrv speaks it: a query string of
//! `CMD=argument` pairs, run in order, command names case-insensitive. Parameters (FIF, QLT,
//! WID, HEI, RGN, ROT, COL) set up the request; actions (OBJ, JTL/PTL/WTL/ATL/TTL, CVT and the
//! embedded DeepZoom/Zoomify/IIIF forms) say what to answer.
//!
//! Commands are listed in one table ([`COMMANDS`]), one parse function each. This module
//! is pure: it turns text into an [`IipRequest`], and an [`IipRequest`] plus an
//! [`ImageInfo`] into [`View`]s and OBJ answer lines.
//!
//! Reference: the iipsrv manual page and the answers of the original server.

use crate::error::{RequestError, Result};
use crate::info::ColourSpace;
use crate::info::ImageInfo;
use crate::info::Level;
use crate::protocol::composite::{self, Composite};
use crate::protocol::iip_process as proc_arg;
use crate::protocol::spectral::{self, ProfileQuery, SpectraQuery};
use crate::sequence::Views;
use crate::view::{Format, Process, Quality, Rect, Rotation, SizeLimits, View};
use percent_encoding::percent_decode_str;

/// Most commands accepted in one query string.
pub(crate) const MAX_COMMANDS: usize = 128;

/// One OBJ metadata query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjQuery {
    /// `IIP,1.0`: the protocol version.
    Iip,
    /// `IIP-server`: the server's IIP level.
    IipServer,
    /// `Max-size`: full-resolution width and height.
    MaxSize,
    /// `Tile-size`.
    TileSize,
    /// `Resolution-number`: number of pyramid levels.
    ResolutionNumber,
    /// `Resolutions`: every level's size, smallest first.
    Resolutions,
    /// `Bits-per-channel`.
    BitsPerChannel,
    /// `Min-Max-sample-values`.
    MinMax,
    /// `Colorspace,*,*`.
    Colorspace,
    /// `Horizontal-views`: sequence angles (0 for a single image).
    HorizontalViews,
    /// `Vertical-views`: sequence angles (90 for a single image).
    VerticalViews,
    /// `Basic-info`: IIP-server, Max-size, Resolution-number, Colorspace.
    BasicInfo,
    /// `stack`: the pages of a multi-page TIFF stack as JSON.
    Stack,
    /// `IIP-opt-comm`: the optional commands, as the original lists them.
    OptionalCommands,
    /// `IIP-opt-obj`: the optional objects, as the original lists them.
    OptionalObjects,
    /// `DPI`: the physical resolution, when the file has one.
    Dpi,
    /// `metadata`: every metadata field as JSON.
    AllMetadata,
    /// `Summary-info` and single metadata fields (`title`, `copyright`, ...).
    Metadata(String),
}

/// What an IIP request asks to be answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// One or more OBJ queries, answered as `Name:value` lines.
    Obj(ObjQuery),
    /// One tile: resolution number (0 = smallest) and tile index (row-major).
    Tile {
        /// Output format (JTL jpeg, PTL png, WTL webp, ATL avif, TTL tiff).
        format: Format,
        /// Resolution number, 0 being the smallest level.
        resolution: u32,
        /// Tile index, row-major at that resolution.
        tile: u64,
    },
    /// TIL: the tiles of the rectangle spanned by two tiles of one resolution, as one
    /// legacy IIP tile stream.
    TileStream {
        /// Resolution number, 0 being the smallest level.
        resolution: u32,
        /// First tile index (row-major).
        first: u64,
        /// Last tile index (row-major); the rectangle's opposite corner.
        last: u64,
    },
    /// CVT: the region (RGN) at the size (WID/HEI) in a format.
    Convert(Format),
    /// SPECTRA: one pixel's value in every band (XML).
    Spectra(SpectraQuery),
    /// PFL: the values along a horizontal line (JSON).
    Profile(ProfileQuery),
    /// `DeepZoom=path`: a DeepZoom request in query form.
    DeepZoom(String),
    /// `Zoomify=path`: a Zoomify request in query form.
    Zoomify(String),
    /// `IIIF=path`: a IIIF request in query form.
    Iiif(String),
}

/// A parsed IIP request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IipRequest {
    /// FIF: the image identifier.
    pub image: Option<String>,
    /// QLT: encoder quality.
    pub quality: Option<u8>,
    /// WID: output width.
    pub width: Option<u32>,
    /// HEI: output height.
    pub height: Option<u32>,
    /// RGN: region as fractions of the full image (x, y, w, h).
    pub region: Option<[f64; 4]>,
    /// ROT: rotation (multiples of 90) with `!` flip.
    pub rotation: Option<Rotation>,
    /// COL: grey or binary output.
    pub colour: Option<Quality>,
    /// GAM, INV, CNT, MINMAX, SHD, CMP, CTW, CNV.
    pub process: Process,
    /// LYR: JPEG2000 quality layers to decode.
    pub layers: Option<u32>,
    /// SDS / JTLS: sequence angles (horizontal, vertical).
    pub angles: Option<(i32, i32)>,
    /// CHN: a fluorescence composite of planes (our extension, see [`composite`]).
    pub composite: Option<Composite>,
    /// Actions in the order given.
    pub actions: Vec<Action>,
}

/// One command of the table: its name and how its argument changes the request.
pub struct Command {
    /// Name, upper case.
    pub name: &'static str,
    /// Applies the (percent-decoded) argument.
    pub apply: fn(&mut IipRequest, &str) -> Result<()>,
}

/// Every IIP command we understand. Unknown commands are ignored, as the original does.
pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "FIF",
        apply: |r, a| set(&mut r.image, Some(a.to_string())),
    },
    Command {
        name: "QLT",
        apply: |r, a| set(&mut r.quality, Some(quality(a)?)),
    },
    Command {
        name: "WID",
        apply: |r, a| set(&mut r.width, Some(pixels(a, "WID")?)),
    },
    Command {
        name: "HEI",
        apply: |r, a| set(&mut r.height, Some(pixels(a, "HEI")?)),
    },
    Command {
        name: "RGN",
        apply: |r, a| set(&mut r.region, Some(region(a)?)),
    },
    Command {
        name: "ROT",
        apply: |r, a| set(&mut r.rotation, Some(rotation(a)?)),
    },
    Command {
        name: "COL",
        apply: |r, a| set(&mut r.colour, Some(colour(a)?)),
    },
    Command {
        name: "GAM",
        apply: |r, a| set(&mut r.process.gamma, Some(proc_arg::gamma(a)?)),
    },
    Command {
        name: "CNT",
        apply: |r, a| proc_arg::contrast(&mut r.process, a),
    },
    Command {
        name: "INV",
        apply: invert,
    },
    Command {
        name: "MINMAX",
        apply: |r, a| {
            r.process.ranges.push(proc_arg::minmax(a)?);
            Ok(())
        },
    },
    Command {
        name: "SHD",
        apply: |r, a| set(&mut r.process.shade, Some(proc_arg::shade(a)?)),
    },
    Command {
        name: "CMP",
        apply: |r, a| set(&mut r.process.colormap, proc_arg::colormap(a)),
    },
    Command {
        name: "CTW",
        apply: |r, a| set(&mut r.process.twist, Some(proc_arg::twist(a)?)),
    },
    Command {
        name: "CNV",
        apply: |r, a| set(&mut r.process.convolution, Some(proc_arg::convolution(a)?)),
    },
    Command {
        name: "LYR",
        apply: |r, a| set(&mut r.layers, Some(count(a, "LYR")?)),
    },
    Command {
        name: "CHN",
        apply: |r, a| set(&mut r.composite, Some(composite::parse(a)?)),
    },
    Command {
        name: "SDS",
        apply: |r, a| set(&mut r.angles, Some(angles(a)?)),
    },
    Command {
        name: "JTLS",
        apply: tile_with_angles,
    },
    Command {
        name: "OBJ",
        apply: |r, a| push(r, Action::Obj(obj(a)?)),
    },
    Command {
        name: "TIL",
        apply: |r, a| push(r, tile_stream(a)?),
    },
    Command {
        name: "JTL",
        apply: |r, a| push(r, tile(a, Format::Jpeg)?),
    },
    Command {
        name: "PTL",
        apply: |r, a| push(r, tile(a, Format::Png)?),
    },
    Command {
        name: "WTL",
        apply: |r, a| push(r, tile(a, Format::Webp)?),
    },
    Command {
        name: "ATL",
        apply: |r, a| push(r, tile(a, Format::Avif)?),
    },
    Command {
        name: "TTL",
        apply: |r, a| push(r, tile(a, Format::Tiff)?),
    },
    Command {
        name: "CVT",
        apply: |r, a| push(r, Action::Convert(convert_format(a))),
    },
    Command {
        name: "SPECTRA",
        apply: |r, a| push(r, Action::Spectra(spectral::parse_spectra(a)?)),
    },
    Command {
        name: "PFL",
        apply: |r, a| push(r, Action::Profile(spectral::parse_profile(a)?)),
    },
    Command {
        name: "DEEPZOOM",
        apply: |r, a| push(r, Action::DeepZoom(a.to_string())),
    },
    Command {
        name: "ZOOMIFY",
        apply: |r, a| push(r, Action::Zoomify(a.to_string())),
    },
    Command {
        name: "IIIF",
        apply: |r, a| push(r, Action::Iiif(a.to_string())),
    },
];

fn set<T>(slot: &mut Option<T>, v: Option<T>) -> Result<()> {
    *slot = v;
    Ok(())
}

fn invert(r: &mut IipRequest, _: &str) -> Result<()> {
    r.process.invert = true;
    Ok(())
}

fn count(a: &str, cmd: &str) -> Result<u32> {
    a.trim().parse::<u32>().map_err(|_| bad(cmd, a))
}

/// SDS: `x[,y]` angles; y is 0 when absent.
fn angles(a: &str) -> Result<(i32, i32)> {
    let angle = |s: &str| s.trim().parse::<i32>().map_err(|_| bad("SDS", a));
    match a.split_once(',') {
        Some((x, y)) => Ok((angle(x)?, angle(y)?)),
        None => Ok((angle(a)?, 0)),
    }
}

/// JTLS: the legacy `xangle,resolution,tile,yangle` form of SDS plus JTL.
fn tile_with_angles(r: &mut IipRequest, a: &str) -> Result<()> {
    let parts: Vec<&str> = a.split(',').collect();
    let [x, res, tile_no, y] = parts.as_slice() else {
        return Err(bad("JTLS", a));
    };
    r.angles = Some(angles(&format!("{x},{y}"))?);
    push(r, tile(&format!("{res},{tile_no}"), Format::Jpeg)?)
}

fn push(r: &mut IipRequest, a: Action) -> Result<()> {
    r.actions.push(a);
    Ok(())
}

fn bad(cmd: &str, arg: &str) -> RequestError {
    let shown: String = arg.chars().take(80).collect();
    RequestError::bad(format!("IIP: bad argument to {cmd}: {shown}"))
}

fn quality(a: &str) -> Result<u8> {
    let q = a.rsplit(':').next().unwrap_or(a);
    q.trim()
        .parse::<u8>()
        .ok()
        .filter(|q| *q <= 100)
        .ok_or_else(|| bad("QLT", a))
}

fn pixels(a: &str, cmd: &str) -> Result<u32> {
    a.trim()
        .parse::<u32>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| bad(cmd, a))
}

fn region(a: &str) -> Result<[f64; 4]> {
    let v: Vec<f64> = a
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("RGN", a))?;
    match v.as_slice() {
        [x, y, w, h] if v.iter().all(|n| n.is_finite()) && *w > 0.0 && *h > 0.0 => {
            Ok([*x, *y, *w, *h])
        }
        _ => Err(bad("RGN", a)),
    }
}

fn rotation(a: &str) -> Result<Rotation> {
    let (mirror, n) = a.strip_prefix('!').map_or((false, a), |r| (true, r));
    let d: f64 = n.trim().parse().map_err(|_| bad("ROT", a))?;
    if !d.is_finite() || d.rem_euclid(90.0) != 0.0 {
        return Err(bad("ROT", a));
    }
    Ok(Rotation {
        mirror,
        degrees: d.rem_euclid(360.0),
    })
}

fn colour(a: &str) -> Result<Quality> {
    match a.to_ascii_lowercase().as_str() {
        "grey" | "gray" => Ok(Quality::Gray),
        "binary" => Ok(Quality::Bitonal),
        _ => Err(bad("COL", a)),
    }
}

fn tile(a: &str, format: Format) -> Result<Action> {
    let (r, t) = a.split_once(',').ok_or_else(|| bad("tile command", a))?;
    let resolution = r.trim().parse().map_err(|_| bad("tile command", a))?;
    let tile = t.trim().parse().map_err(|_| bad("tile command", a))?;
    Ok(Action::Tile {
        format,
        resolution,
        tile,
    })
}

/// TIL's `resolution,first-last` (or `resolution,tile`); a last tile before the first is
/// the first, as in the original.
fn tile_stream(a: &str) -> Result<Action> {
    let (r, range) = a.split_once(',').ok_or_else(|| bad("TIL", a))?;
    let (first, last) = range.split_once('-').unwrap_or((range, ""));
    let number = |v: &str| v.trim().parse::<u64>().map_err(|_| bad("TIL", a));
    let first = number(first)?;
    let last = if last.trim().is_empty() {
        first
    } else {
        number(last)?
    };
    Ok(Action::TileStream {
        resolution: r.trim().parse().map_err(|_| bad("TIL", a))?,
        first,
        last: last.max(first),
    })
}

/// The tiles of a TIL rectangle at a level `across` tiles wide and `down` tiles high, in
/// the original's order (column by column), clipped to the level.
pub fn stream_tiles(first: u64, last: u64, across: u64, down: u64) -> Vec<(u32, u32)> {
    let (mut x0, y0) = (first % across, first / across);
    let (mut x1, y1) = (last % across, last / across);
    if x1 < x0 {
        std::mem::swap(&mut x0, &mut x1);
    }
    let rows = y0..=y1.min(down.saturating_sub(1));
    (x0..=x1)
        .flat_map(|x| rows.clone().map(move |y| (x as u32, y as u32)))
        .collect()
}

/// One tile of a TIL stream: `Tile,<res>,<n>,0/<len+8>:`, the IIP compression type (2:
/// JPEG) and FlashPix sub-type, the JPEG stream, CRLF.
pub fn stream_entry(out: &mut Vec<u8>, resolution: u32, tile: u64, jpeg: &[u8]) {
    out.extend_from_slice(format!("Tile,{resolution},{tile},0/{}:", jpeg.len() + 8).as_bytes());
    out.extend_from_slice(&[2, 0, 0, 0, 0, 0x11, 0, 0]);
    out.extend_from_slice(jpeg);
    out.extend_from_slice(b"\r\n");
}

/// CVT's format; unknown names fall back to JPEG as in the original.
fn convert_format(a: &str) -> Format {
    match a.to_ascii_lowercase().as_str() {
        "png" => Format::Png,
        "webp" => Format::Webp,
        "avif" => Format::Avif,
        "tif" | "tiff" => Format::Tiff,
        _ => Format::Jpeg,
    }
}

fn obj(a: &str) -> Result<ObjQuery> {
    let lower = a.to_ascii_lowercase();
    let key = lower.split(',').next().unwrap_or("");
    Ok(match key {
        "iip" => ObjQuery::Iip,
        "iip-server" => ObjQuery::IipServer,
        "max-size" => ObjQuery::MaxSize,
        "tile-size" => ObjQuery::TileSize,
        "resolution-number" => ObjQuery::ResolutionNumber,
        "resolutions" => ObjQuery::Resolutions,
        "bits-per-channel" => ObjQuery::BitsPerChannel,
        "min-max-sample-values" => ObjQuery::MinMax,
        "colorspace" => ObjQuery::Colorspace,
        "horizontal-views" => ObjQuery::HorizontalViews,
        "vertical-views" => ObjQuery::VerticalViews,
        "basic-info" => ObjQuery::BasicInfo,
        "stack" => ObjQuery::Stack,
        "iip-opt-comm" => ObjQuery::OptionalCommands,
        "iip-opt-obj" => ObjQuery::OptionalObjects,
        "dpi" => ObjQuery::Dpi,
        "metadata" => ObjQuery::AllMetadata,
        "summary-info" | "title" | "subject" | "author" | "creator" | "copyright" | "rights"
        | "description" | "date" | "software" | "make" | "model" | "artist" | "keywords"
        | "comment" | "last-author" | "rev-number" | "edit-time" | "last-printed"
        | "last-save-dtm" | "xmp" | "scale" => ObjQuery::Metadata(key.to_string()),
        _ => {
            return Err(RequestError::bad(format!(
                "IIP: unsupported OBJ query: {}",
                a.chars().take(80).collect::<String>()
            )))
        }
    })
}

/// Parses a query string into a request, running the command table in order.
pub fn parse(query: &str) -> Result<IipRequest> {
    let mut req = IipRequest::default();
    let pairs: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if pairs.len() > MAX_COMMANDS {
        return Err(RequestError::bad(format!(
            "IIP: more than {MAX_COMMANDS} commands"
        )));
    }
    for pair in pairs {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let arg = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| RequestError::bad("IIP: argument is not valid UTF-8"))?;
        let name = name.to_ascii_uppercase();
        match COMMANDS.iter().find(|c| c.name == name) {
            Some(c) => (c.apply)(&mut req, &arg)?,
            None => tracing::debug!("IIP: ignoring unknown command {name}"),
        }
    }
    Ok(req)
}

/// The pyramid level of an IIP resolution number (0 = smallest); 404 when there is none.
fn level_of(info: &ImageInfo, resolution: u32) -> Result<&Level> {
    level_index(info, resolution).map(|i| &info.levels[i])
}

/// The index in `info.levels` (0 = full size) of an IIP resolution number; 404 when
/// there is none.
pub fn level_index(info: &ImageInfo, resolution: u32) -> Result<usize> {
    let n = info.levels.len();
    (resolution as usize)
        .checked_add(1)
        .and_then(|r| n.checked_sub(r))
        .ok_or_else(|| {
            RequestError::NotFound(format!(
                "IIP: asked for non-existent resolution: {resolution}"
            ))
        })
}

fn no_tile(tile: u64) -> RequestError {
    RequestError::NotFound(format!("IIP: asked for non-existent tile: {tile}"))
}

impl IipRequest {
    /// The image of the request, or the 400 the original gives without FIF.
    pub fn image(&self) -> Result<&str> {
        self.image
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| RequestError::bad("IIP: no image given (FIF)"))
    }

    /// The view of one tile: `resolution` counts from the smallest level.
    pub fn tile_view(
        &self,
        info: &ImageInfo,
        resolution: u32,
        tile: u64,
        format: Format,
    ) -> Result<View> {
        let across = level_of(info, resolution)?.tiles_across() as u64;
        let (tx, ty) = (tile % across, tile / across);
        let ty = u32::try_from(ty).map_err(|_| no_tile(tile))?;
        self.tile_view_at(info, resolution, tx as u32, ty, format)
            .map_err(|_| no_tile(tile))
    }

    /// The view of the tile in column `tx`, row `ty` at `resolution` (DeepZoom, Zoomify);
    /// 404 outside the level.
    pub fn tile_view_at(
        &self,
        info: &ImageInfo,
        resolution: u32,
        tx: u32,
        ty: u32,
        format: Format,
    ) -> Result<View> {
        let level = level_of(info, resolution)?;
        if tx >= level.tiles_across() || ty >= level.tiles_down() {
            return Err(RequestError::NotFound(format!(
                "no tile {tx},{ty} at resolution {resolution}"
            )));
        }
        let (lx, ly) = (tx * level.tile_width, ty * level.tile_height);
        let (lw, lh) = (
            level.tile_width.min(level.width - lx),
            level.tile_height.min(level.height - ly),
        );
        let x = ((lx as f64 * level.scale_x).round() as u32).min(info.width - 1);
        let y = ((ly as f64 * level.scale_y).round() as u32).min(info.height - 1);
        let w = ((lw as f64 * level.scale_x).round() as u32).clamp(1, info.width - x);
        let h = ((lh as f64 * level.scale_y).round() as u32).clamp(1, info.height - y);
        Ok(View {
            region: Rect { x, y, w, h },
            width: lw,
            height: lh,
            rotation: self.rotation.unwrap_or(Rotation::NONE),
            quality: self.colour.unwrap_or(Quality::Default),
            process: self.process.clone(),
            format,
            encoder_quality: self.quality,
            layers: self.layers.map_or(0, |l| l.min(i32::MAX as u32) as i32),
            planes: Vec::new(),
        })
        .map(|v| self.composed(v))
    }

    /// `view` as the CHN composite asks, when there is one.
    fn composed(&self, mut view: View) -> View {
        if let Some(c) = &self.composite {
            c.apply(&mut view);
        }
        view
    }

    /// The view of CVT: RGN (fractions) of the image at WID/HEI (fitted inside both when
    /// both are given), at most MAX_CVT; without WID/HEI the region's own size, scaled down
    /// to MAX_CVT.
    pub fn convert_view(
        &self,
        info: &ImageInfo,
        format: Format,
        limits: SizeLimits,
    ) -> Result<View> {
        let region = match self.region {
            None => Rect {
                x: 0,
                y: 0,
                w: info.width,
                h: info.height,
            },
            Some([fx, fy, fw, fh]) => {
                let (w, h) = (info.width as f64, info.height as f64);
                let x = (fx.clamp(0.0, 1.0) * w).round() as u32;
                let y = (fy.clamp(0.0, 1.0) * h).round() as u32;
                if x >= info.width || y >= info.height {
                    return Err(RequestError::bad("IIP: region is outside the image"));
                }
                let rw = ((fw * w).round().max(1.0) as u32).min(info.width - x);
                let rh = ((fh * h).round().max(1.0) as u32).min(info.height - y);
                Rect { x, y, w: rw, h: rh }
            }
        };
        let (rw, rh) = (region.w as f64, region.h as f64);
        let mut scale = match (self.width, self.height) {
            (Some(w), Some(h)) => (w as f64 / rw).min(h as f64 / rh),
            (Some(w), None) => w as f64 / rw,
            (None, Some(h)) => h as f64 / rh,
            (None, None) => 1.0,
        };
        if !limits.allow_upscaling {
            scale = scale.min(1.0);
        }
        if let Some(m) = limits.max_size {
            scale = scale.min(m as f64 / rw).min(m as f64 / rh);
        }
        let width = (rw * scale).round().max(1.0) as u32;
        let height = (rh * scale).round().max(1.0) as u32;
        Ok(View {
            region,
            width,
            height,
            rotation: self.rotation.unwrap_or(Rotation::NONE),
            quality: self.colour.unwrap_or(Quality::Default),
            process: self.process.clone(),
            format,
            encoder_quality: self.quality,
            layers: self.layers.map_or(0, |l| l.min(i32::MAX as u32) as i32),
            planes: Vec::new(),
        })
        .map(|v| self.composed(v))
    }
}

/// OBJ=stack: each page's index, name and scale, in the original's JSON layout; `None`
/// when the image is not a stack (the original then answers nothing).
pub fn stack_json(views: Option<&Views>) -> Option<String> {
    let pages = &views?.pages;
    if pages.is_empty() {
        return None;
    }
    let items: Vec<String> = pages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = serde_json::to_string(p.name.as_deref().unwrap_or(""))
                .unwrap_or_else(|_| "\"\"".into());
            let scale = crate::protocol::spectral::fmt_g(p.scale.unwrap_or(1.0));
            format!("\n\t{{\n\t\t\"id\": {i},\n\t\t\"name\": {name},\n\t\t\"scale\": {scale}\n\t}}")
        })
        .collect();
    Some(format!("[ {}\n]", items.join(",")))
}

/// The IIP level of this server, as `OBJ=IIP-server` reports it (the original says 3.65).
pub(crate) const IIP_SERVER_LEVEL: &str = "3.65";

/// `Colorspace,0-<levels-1>,0:<calibrated> 0 <space> <channels> <order…>`; CIELAB is the
/// one calibrated space, as the original marks it.
fn colorspace_line(info: &ImageInfo) -> String {
    let n = info.levels.len();
    let calibrated = u8::from(info.colour == ColourSpace::CieLab);
    let (space, channels) = match (info.colour, info.channels) {
        (ColourSpace::CieLab, _) => (4, "3 0 1 2".to_string()),
        (ColourSpace::Grey, _) => (1, "1 0".to_string()),
        (_, c) if c >= 3 => (3, "3 0 1 2".to_string()),
        (_, c) => (1, format!("{c} 0")),
    };
    format!(
        "Colorspace,0-{},0:{calibrated} 0 {space} {channels}",
        n.saturating_sub(1)
    )
}

/// A list of angles as OBJ writes it, space separated; `single` for a lone file.
fn angle_list(list: Option<&[i32]>, single: i32) -> String {
    match list {
        Some(l) => l.iter().map(i32::to_string).collect::<Vec<_>>().join(" "),
        None => single.to_string(),
    }
}

/// The answer lines of one OBJ query (without line ends).
/// `views` are the angles of the sequence the image belongs to (a single file: 0 and 90).
pub fn obj_lines(q: &ObjQuery, info: &ImageInfo, views: Option<&Views>) -> Vec<String> {
    match q {
        ObjQuery::Iip => vec!["IIP:1.0".into()],
        ObjQuery::IipServer => vec![format!("IIP-server:{IIP_SERVER_LEVEL}")],
        ObjQuery::MaxSize => vec![format!("Max-size:{} {}", info.width, info.height)],
        ObjQuery::TileSize => {
            let l = &info.levels[0];
            vec![format!("Tile-size:{} {}", l.tile_width, l.tile_height)]
        }
        ObjQuery::ResolutionNumber => vec![format!("Resolution-number:{}", info.levels.len())],
        ObjQuery::Resolutions => {
            let sizes: Vec<String> = info
                .levels
                .iter()
                .rev()
                .map(|l| format!("{} {}", l.width, l.height))
                .collect();
            vec![format!("Resolutions:{}", sizes.join(","))]
        }
        ObjQuery::BitsPerChannel => vec![format!("Bits-per-channel:{}", info.stored_bits)],
        ObjQuery::MinMax => {
            let v: String = info
                .min_max
                .iter()
                .map(|(a, b)| format!(" {}  {} ", sample_value(*a), sample_value(*b)))
                .collect();
            vec![format!("Min-Max-sample-values:{}", v.trim_end())]
        }
        ObjQuery::Colorspace => vec![colorspace_line(info)],
        ObjQuery::HorizontalViews => vec![format!(
            "Horizontal-views:{}",
            angle_list(views.map(|v| v.horizontal.as_slice()), 0)
        )],
        ObjQuery::VerticalViews => vec![format!(
            "Vertical-views:{}",
            angle_list(views.map(|v| v.vertical.as_slice()), 90)
        )],
        ObjQuery::Stack => stack_json(views).into_iter().collect(),
        ObjQuery::AllMetadata => vec![metadata_json(info)],
        ObjQuery::OptionalCommands => {
            vec!["IIP-opt-comm:CVT CNT QLT JTL JTLS WID HEI RGN MINMAX SHD CMP INV CTW".into()]
        }
        ObjQuery::OptionalObjects => vec!["IIP-opt-obj:Horizontal-views Vertical-views \
            Tile-size Bits-per-channel Min-Max-sample-values Resolutions"
            .into()],
        ObjQuery::Dpi => info
            .metadata
            .pixels_per_cm
            .map(|(x, y)| format!("DPI:{:.6} {:.6}", x * 2.54, y * 2.54))
            .into_iter()
            .collect(),
        ObjQuery::BasicInfo => vec![
            format!("IIP-server:{IIP_SERVER_LEVEL}"),
            format!("Max-size:{} {}", info.width, info.height),
            format!("Resolution-number:{}", info.levels.len()),
            colorspace_line(info),
        ],
        ObjQuery::Metadata(field) => metadata_lines(field, info),
    }
}

fn metadata_lines(field: &str, info: &ImageInfo) -> Vec<String> {
    let m = &info.metadata;
    let pick = |name: &str| -> Option<&String> {
        match name {
            "title" | "subject" | "description" => m.description.as_ref(),
            "author" | "creator" | "artist" => m.artist.as_ref(),
            "copyright" | "rights" => m.copyright.as_ref(),
            "date" => m.date.as_ref(),
            "software" => m.software.as_ref(),
            "make" => m.make.as_ref(),
            "model" => m.model.as_ref(),
            "xmp" => m.xmp.as_ref(),
            _ => None,
        }
    };
    if field == "summary-info" {
        return [
            "title",
            "author",
            "copyright",
            "date",
            "software",
            "make",
            "model",
        ]
        .iter()
        .filter_map(|f| pick(f).map(|v| format!("{f}:{}", one_line(v))))
        .collect();
    }
    vec![format!(
        "{field}:{}",
        pick(field).map(|v| one_line(v)).unwrap_or_default()
    )]
}

/// OBJ=metadata: every non-empty field as a JSON object, under the original's names.
pub fn metadata_json(info: &ImageInfo) -> String {
    let m = &info.metadata;
    let fields = [
        ("creator", &m.artist),
        ("date", &m.date),
        ("description", &m.description),
        ("make", &m.make),
        ("model", &m.model),
        ("rights", &m.copyright),
        ("software", &m.software),
    ];
    // then a slide's own properties (`aperio.MPP`, `openslide.objective-power`, …)
    let slide = m.properties.iter().map(|(k, v)| (k.as_str(), Some(v)));
    let items: Vec<String> = fields
        .iter()
        .map(|(k, v)| (*k, v.as_ref()))
        .chain(slide)
        .filter_map(|(k, v)| {
            let v = v.filter(|v| !v.is_empty())?;
            let (k, v) = (
                serde_json::to_string(k).ok()?,
                serde_json::to_string(v).ok()?,
            );
            Some(format!("\n\t{k}: {v}"))
        })
        .collect();
    if items.is_empty() {
        return "{\n}".into();
    }
    format!("{{ {}\n}}", items.join(","))
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A sample value as the original prints it: C++ `ostream` at 9 significant digits, the
/// `%.9g` form (`796.809326`, `1827.85742`, `255`), so float ranges read as they do there.
fn sample_value(v: f64) -> String {
    const DIGITS: i32 = 9;
    if v == 0.0 || !v.is_finite() {
        return format!("{v}").to_lowercase();
    }
    let sci = format!("{:.*e}", DIGITS as usize - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if (-4..DIGITS).contains(&exp) {
        trim(&format!("{:.*}", (DIGITS - 1 - exp) as usize, v))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ImageInfo {
        crate::info::dyadic_info(4000, 3000, 5)
    }

    const LIMITS: SizeLimits = SizeLimits {
        max_size: Some(5000),
        allow_upscaling: true,
    };

    #[test]
    fn optional_lists_dpi_and_metadata_json() {
        let mut info = crate::info::dyadic_info(100, 100, 1);
        info.metadata.pixels_per_cm = Some((10.0, 20.0));
        info.metadata.artist = Some("A \"quoted\" name".into());
        let lines = |q: &str| obj_lines(&obj(q).expect("query"), &info, None);
        assert_eq!(lines("DPI"), vec!["DPI:25.400000 50.800000"]);
        assert!(lines("IIP-opt-comm")[0].starts_with("IIP-opt-comm:CVT CNT QLT JTL"));
        assert!(lines("iip-opt-obj")[0].ends_with("Min-Max-sample-values Resolutions"));
        let json: serde_json::Value =
            serde_json::from_str(&metadata_json(&info)).expect("valid JSON");
        assert_eq!(json["creator"], "A \"quoted\" name");
        assert!(obj("not-a-thing").is_err());
    }

    #[test]
    fn tile_streams_as_the_original_orders_them() {
        let r = parse("FIF=x&TIL=1,0-5").expect("parse");
        assert_eq!(
            r.actions,
            vec![Action::TileStream {
                resolution: 1,
                first: 0,
                last: 5
            }]
        );
        assert!(parse("FIF=x&TIL=1").is_err());
        // Columns first; a last tile left of the first still spans the rectangle.
        assert_eq!(
            stream_tiles(0, 3, 2, 2),
            vec![(0, 0), (0, 1), (1, 0), (1, 1)]
        );
        assert_eq!(
            stream_tiles(1, 2, 2, 2),
            vec![(0, 0), (0, 1), (1, 0), (1, 1)]
        );
        assert_eq!(
            stream_tiles(0, 5, 2, 2),
            vec![(0, 0), (0, 1), (1, 0), (1, 1)]
        );
        let mut out = Vec::new();
        stream_entry(&mut out, 2, 7, b"JPEG");
        assert_eq!(out, b"Tile,2,7,0/12:\x02\0\0\0\0\x11\0\0JPEG\r\n".to_vec());
    }

    #[test]
    fn avif_tiles_and_conversions() {
        let r = parse("FIF=x&ATL=2,3&CVT=AVIF").expect("parse");
        assert_eq!(
            r.actions,
            vec![
                Action::Tile {
                    format: Format::Avif,
                    resolution: 2,
                    tile: 3
                },
                Action::Convert(Format::Avif)
            ]
        );
    }

    #[test]
    fn commands_in_any_order_and_case() {
        let r = parse("fif=a%20b.tif&qlt=90&Jtl=3,5&obj=Max-size").expect("parse");
        assert_eq!(r.image.as_deref(), Some("a b.tif"));
        assert_eq!(r.quality, Some(90));
        assert_eq!(
            r.actions,
            vec![
                Action::Tile {
                    format: Format::Jpeg,
                    resolution: 3,
                    tile: 5
                },
                Action::Obj(ObjQuery::MaxSize)
            ]
        );
        assert!(parse("FIF=x&UNKNOWN=1&OBJ=IIP,1.0").is_ok());
    }

    #[test]
    fn bad_arguments_are_400() {
        for q in [
            "WID=-5",
            "WID=abc",
            "HEI=0",
            "RGN=0,0,1",
            "RGN=a,b,c,d",
            "RGN=0,0,0,1",
            "ROT=45",
            "QLT=300",
            "JTL=1",
            "JTL=a,b",
            "COL=pink",
            "OBJ=bogus",
        ] {
            assert_eq!(parse(q).map_err(|e| e.status()).err(), Some(400), "{q}");
        }
        let many = vec!["OBJ=IIP,1.0"; MAX_COMMANDS + 1].join("&");
        assert!(parse(&many).is_err());
    }

    #[test]
    fn tile_views_match_iiif_tiles() {
        let i = info();
        let r = parse("FIF=x").expect("parse");
        let v = r
            .tile_view(&i, 4, 0, Format::Jpeg)
            .expect("top-left full res");
        assert_eq!(
            (v.region, v.width, v.height),
            (
                Rect {
                    x: 0,
                    y: 0,
                    w: 256,
                    h: 256
                },
                256,
                256
            )
        );
        let v = r.tile_view(&i, 2, 3, Format::Jpeg).expect("edge tile");
        assert_eq!(
            (v.region, v.width, v.height),
            (
                Rect {
                    x: 3072,
                    y: 0,
                    w: 928,
                    h: 1024
                },
                232,
                256
            )
        );
        let v = r.tile_view(&i, 0, 0, Format::Png).expect("smallest");
        assert_eq!((v.width, v.height), (250, 187));
        assert_eq!(
            r.tile_view(&i, 5, 0, Format::Jpeg)
                .map_err(|e| e.status())
                .err(),
            Some(404)
        );
        assert_eq!(
            r.tile_view(&i, 0, 1, Format::Jpeg)
                .map_err(|e| e.status())
                .err(),
            Some(404)
        );
    }

    #[test]
    fn convert_sizes_round_and_fit() {
        let i = info();
        let size = |q: &str| {
            let v = parse(q)
                .expect("parse")
                .convert_view(&i, Format::Jpeg, LIMITS)
                .expect("view");
            (v.width, v.height)
        };
        assert_eq!(size("WID=300&HEI=300"), (300, 225));
        assert_eq!(size("HEI=100"), (133, 100));
        assert_eq!(size("WID=512"), (512, 384));
        assert_eq!(size(""), (4000, 3000));
        assert_eq!(size("WID=600&RGN=0.25,0.25,0.1,0.1"), (600, 450));
        let big = SizeLimits {
            max_size: Some(1000),
            allow_upscaling: false,
        };
        let v = parse("WID=9000")
            .expect("parse")
            .convert_view(&i, Format::Jpeg, big)
            .expect("view");
        assert_eq!((v.width, v.height), (1000, 750));
    }

    #[test]
    fn obj_answers() {
        let i = info();
        assert_eq!(
            obj_lines(&ObjQuery::Resolutions, &i, None),
            vec!["Resolutions:250 187,500 375,1000 750,2000 1500,4000 3000"]
        );
        assert_eq!(
            obj_lines(&ObjQuery::MinMax, &i, None),
            vec!["Min-Max-sample-values: 0  255  0  255  0  255"]
        );
        // `%.9g` of each, as printed by C printf.
        for (v, printed) in [
            (796.809326171875, "796.809326"),
            (1827.857421875, "1827.85742"),
            (65535.0, "65535"),
            (-32768.0, "-32768"),
            (0.0, "0"),
            (1.0, "1"),
            (0.000012345678901, "1.23456789e-05"),
            (4294967295.0, "4.2949673e+09"),
            (123456789.0, "123456789"),
            (0.5, "0.5"),
        ] {
            assert_eq!(sample_value(v), printed);
        }
        assert_eq!(
            obj_lines(&ObjQuery::Colorspace, &i, None),
            vec!["Colorspace,0-4,0:0 0 3 3 0 1 2"]
        );
    }
}
