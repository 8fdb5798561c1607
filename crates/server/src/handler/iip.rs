//! Answers to IIP query strings: OBJ metadata lines, tiles (JTL/PTL/WTL/TTL), CVT
//! regions, and the embedded DeepZoom/Zoomify/IIIF forms.

use super::auth::{Grant, Granted};
use super::{App, Audience, Budget, Request, Response};
use crate::error::{Error, Flow, Halt, Result};
use crate::render;
use crate::storage::registry::Opened;
use iipsrv_core::info::ColourSpace;
use iipsrv_core::info::SampleFormat;
use iipsrv_core::protocol::iip::{self, Action, ObjQuery};
use iipsrv_core::protocol::spectral::{self, ProfileQuery, SpectraQuery};
use iipsrv_core::sequence;
use iipsrv_core::view::Format;

/// The samples of a SPECTRA point, every channel: integers scaled to 0-1 by their type's
/// range (value/255, value/65535), floats as stored, as the original answers.
fn spectra_pixel(opened: &Opened, q: &SpectraQuery, grant: Grant) -> Result<Vec<f64>> {
    let src = opened.source.as_ref();
    let info = src.info();
    let level = iip::level_index(info, q.resolution)?;
    grant.permits_level(info, level)?;
    let l = &info.levels[level];
    let across = l.tiles_across() as u64;
    let (tx, ty) = (q.tile % across, q.tile / across);
    let outside = || {
        Error::NotFound(format!(
            "IIP: no tile {} at resolution {}",
            q.tile, q.resolution
        ))
    };
    if ty >= l.tiles_down() as u64 {
        return Err(outside());
    }
    let (tx, ty) = (tx as u32, ty as u32);
    let x0 = tx * l.tile_width + q.x;
    let y0 = ty * l.tile_height + q.y;
    let inside_tile = q.x < l.tile_width && q.y < l.tile_height;
    if !inside_tile || x0 >= l.width || y0 >= l.height {
        return Err(Error::bad("IIP: SPECTRA point is outside the tile"));
    }
    let px = render::sample_values(src, level, (x0, y0, x0 + 1, y0 + 1))?;
    // CIELAB samples come as L* (0-100): L*/100 is the stored L over its range, as the
    // original divides the stored value.
    let scale = match (info.colour, info.sample_format) {
        (ColourSpace::CieLab, _) => 100.0,
        (_, SampleFormat::Float) => 1.0,
        _ => 2f64.powi(info.bits_per_sample.min(32) as i32) - 1.0,
    };
    Ok(px.data.iter().map(|&v| v as f64 / scale).collect())
}

/// Most tiles one TIL answer carries.
const MAX_STREAM_TILES: usize = 1024;

/// MIME type of OBJ answers, as the original sends it.
const NETFPX: &str = "application/vnd.netfpx";

impl App {
    /// Answers an IIP request from the query string.
    pub(super) fn iip(&self, req: &Request) -> Flow<Response> {
        let parsed = iip::parse(&req.query)?;
        for action in &parsed.actions {
            match action {
                Action::DeepZoom(p) => return self.deepzoom(req, p),
                Action::Zoomify(p) => return self.zoomify(req, p),
                Action::Iiif(p) => {
                    let base = format!("{}?IIIF=", req.path);
                    return self.iiif(req, p.trim_start_matches('/'), &base);
                }
                Action::Spectra(_) | Action::Profile(_) if req.budget == Budget::Quick => {
                    return Err(Halt::NeedsWorker)
                }
                Action::Spectra(q) => return self.spectra(req, &parsed, q),
                Action::TileStream {
                    resolution,
                    first,
                    last,
                } => return self.tile_stream(req, &parsed, *resolution, *first, *last),
                Action::Profile(q) => return self.profile(req, &parsed, q),
                _ => {}
            }
        }
        let image_action = parsed
            .actions
            .iter()
            .find(|a| matches!(a, Action::Tile { .. } | Action::Convert(_)));
        if let Some(action) = image_action {
            let opened = self.open_request(req, &parsed)?;
            let info = opened.source.info();
            let view = match action {
                Action::Tile {
                    format,
                    resolution,
                    tile,
                } => parsed.tile_view(info, *resolution, *tile, *format)?,
                Action::Convert(format) => {
                    parsed.convert_view(info, *format, self.size_limits())?
                }
                _ => return Err(Error::Internal("unexpected IIP action".into()).into()),
            };
            return self.view_response(req, &opened, &view);
        }
        self.obj(req, &parsed)
    }

    /// The image a tile or CVT request reads: the view SDS names, or the planes of CHN.
    fn open_request(&self, req: &Request, parsed: &iip::IipRequest) -> Flow<Granted> {
        match &parsed.composite {
            Some(c) => self.open_planes(req, parsed.image()?, &c.planes),
            None => self.open_view(req, parsed.image()?, parsed.angles),
        }
    }

    /// TIL: the JPEG tiles of a rectangle as one IIP tile stream (`application/vnd.netfpx`).
    fn tile_stream(
        &self,
        req: &Request,
        parsed: &iip::IipRequest,
        resolution: u32,
        first: u64,
        last: u64,
    ) -> Flow<Response> {
        let opened = self.open_request(req, parsed)?;
        let info = opened.source.info();
        let level_index = iip::level_index(info, resolution)?;
        opened.grant.permits_level(info, level_index)?;
        if let Some(r) = self.not_modified(req, &opened, Audience::of(&opened, false)) {
            return Ok(r);
        }
        let level = &info.levels[level_index];
        let (across, down) = (level.tiles_across() as u64, level.tiles_down() as u64);
        if first >= across * down {
            return Err(Error::NotFound(format!(
                "IIP: no tile {first} at resolution {resolution}"
            ))
            .into());
        }
        let tiles = iip::stream_tiles(first, last, across, down);
        if tiles.len() > MAX_STREAM_TILES {
            return Err(Error::bad(format!(
                "IIP: TIL asks for more than {MAX_STREAM_TILES} tiles"
            ))
            .into());
        }
        let mut body = Vec::new();
        for (tx, ty) in tiles {
            let view = parsed.tile_view_at(info, resolution, tx, ty, Format::Jpeg)?;
            let answer = self.render(req, &opened, &view)?;
            iip::stream_entry(
                &mut body,
                resolution,
                ty as u64 * across + tx as u64,
                &answer.body,
            );
        }
        Ok(self.granted_response(NETFPX, body, &opened))
    }

    /// SPECTRA: the pixel in every band of the image — the horizontal views of a sequence
    /// (channel 0 of each), the channels of a multi-band file (more than four), or the one
    /// band of any other file — normalised to 0-1 for integer samples.
    fn spectra(&self, req: &Request, parsed: &iip::IipRequest, q: &SpectraQuery) -> Flow<Response> {
        let image = parsed.image()?;
        let (grant, guarded) = self.guard(req, image)?;
        let first = Granted {
            opened: self.registry.open_view(image, parsed.angles)?,
            grant,
            guarded,
        };
        let vertical = parsed.angles.map_or(sequence::DEFAULT_ANGLES.1, |a| a.1);
        let bands: Vec<Option<i32>> = match &first.views {
            Some(v) => v.horizontal.iter().map(|h| Some(*h)).collect(),
            None => vec![None],
        };
        let mut points = Vec::with_capacity(bands.len());
        for band in bands {
            let opened = match band {
                Some(h) => self.registry.open_view(image, Some((h, vertical)))?,
                None => first.opened.clone(),
            };
            let pixel = spectra_pixel(&opened, q, grant)?;
            let multiband = band.is_none() && pixel.len() > 4;
            if multiband {
                points.extend(pixel.iter().enumerate().map(|(c, v)| (c.to_string(), *v)));
            } else {
                let value = pixel.first().copied().unwrap_or(0.0);
                let name = match (band, &first.views) {
                    (Some(h), Some(v)) => v.band_name(h),
                    _ => "0".to_string(),
                };
                points.push((name, value));
            }
        }
        let body = spectral::spectra_xml(&points);
        Ok(self.granted_response("application/xml", body, &first))
    }

    /// PFL: the samples of a horizontal line at one resolution, channels interleaved.
    fn profile(&self, req: &Request, parsed: &iip::IipRequest, q: &ProfileQuery) -> Flow<Response> {
        let (grant, guarded) = self.guard(req, parsed.image()?)?;
        let opened = Granted {
            opened: self.registry.open_view(parsed.image()?, parsed.angles)?,
            grant,
            guarded,
        };
        let src = opened.source.as_ref();
        let level = iip::level_index(src.info(), q.resolution)?;
        grant.permits_level(src.info(), level)?;
        let l = &src.info().levels[level];
        if q.x2 > l.width || q.y1 >= l.height {
            return Err(Error::bad("IIP: PFL line is outside the image").into());
        }
        let line = render::sample_values(src, level, (q.x1, q.y1, q.x2, q.y1 + 1))?;
        let values: Vec<f64> = line.data.iter().map(|&v| v as f64).collect();
        let body = spectral::profile_json(&values);
        Ok(self.granted_response("application/json", body, &opened))
    }

    /// OBJ answers: one `Name:value` line per query, CRLF-terminated.
    fn obj(&self, req: &Request, parsed: &iip::IipRequest) -> Flow<Response> {
        let queries: Vec<&ObjQuery> = parsed
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Obj(q) => Some(q),
                _ => None,
            })
            .collect();
        if queries.is_empty() {
            return Err(Error::bad("IIP: no command to answer (OBJ, JTL, CVT, ...)").into());
        }
        let needs_image = queries.iter().any(|q| **q != ObjQuery::Iip);
        let opened = match (needs_image, parsed.image.as_deref()) {
            (false, None) => None,
            _ => Some(self.open_view(req, parsed.image()?, parsed.angles)?),
        };
        match (queries.as_slice(), &opened) {
            ([ObjQuery::Stack], Some(o)) => {
                let json = iip::stack_json(o.views.as_deref()).unwrap_or_default();
                return Ok(self.granted_response("application/json", json, o));
            }
            ([ObjQuery::AllMetadata], Some(o)) => {
                let json = iip::metadata_json(o.source.info());
                return Ok(self.granted_response("application/json", json, o));
            }
            _ => {}
        }
        let mut body = String::new();
        for q in queries {
            let lines = match (&opened, q) {
                (_, ObjQuery::Iip) => vec!["IIP:1.0".to_string()],
                (Some(o), q) => iip::obj_lines(q, o.source.info(), o.views.as_deref()),
                (None, _) => return Err(Error::bad("IIP: no image given (FIF)").into()),
            };
            for l in lines {
                body.push_str(&l);
                body.push_str("\r\n");
            }
        }
        Ok(match &opened {
            Some(o) => self.granted_response(NETFPX, body, o),
            None => self.ok_response(NETFPX, body, None),
        })
    }
}
