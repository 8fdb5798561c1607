//! Answers to the tile-only protocols, DeepZoom and Zoomify: their descriptors and their
//! tiles, which are the same views (and cache entries) as IIP and IIIF tiles.

use super::{App, Request, Response};
use crate::error::{Error, Result};
use crate::protocol::deepzoom::{self, DeepZoomRequest};
use crate::protocol::iip::IipRequest;
use crate::protocol::zoomify::{self, ZoomifyRequest};
use crate::source::ImageInfo;
use crate::view::{Format, View};

/// The view of tile (`x`, `y`) at IIP resolution `resolution`; 404 outside the level.
fn tile_at(info: &ImageInfo, resolution: u32, x: u32, y: u32, format: Format) -> Result<View> {
    let n = info.levels.len() as u32;
    let level = info
        .levels
        .get(n.saturating_sub(1 + resolution) as usize)
        .ok_or_else(|| Error::NotFound(format!("no resolution {resolution}")))?;
    if x >= level.tiles_across() || y >= level.tiles_down() {
        return Err(Error::NotFound(format!(
            "no tile {x},{y} at resolution {resolution}"
        )));
    }
    let index = y as u64 * level.tiles_across() as u64 + x as u64;
    IipRequest::default().tile_view(info, resolution, index, format)
}

impl App {
    /// Answers a DeepZoom request (`rest` is the path after the prefix).
    pub(super) fn deepzoom(&self, req: &Request, rest: &str) -> Result<Response> {
        match deepzoom::parse(rest)? {
            DeepZoomRequest::Descriptor { id } => {
                let opened = self.registry().open(&id)?;
                let xml = deepzoom::descriptor(opened.source.info(), Format::Jpeg);
                Ok(self.text_response("application/xml", xml, Some(&opened)))
            }
            DeepZoomRequest::Tile {
                id,
                level,
                x,
                y,
                format,
            } => {
                let opened = self.registry().open(&id)?;
                let info = opened.source.info();
                let view = tile_at(info, deepzoom::resolution(info, level), x, y, format)?;
                self.view_response(req, &opened, &view)
            }
        }
    }

    /// Answers a Zoomify request (`rest` is the path after the prefix).
    pub(super) fn zoomify(&self, req: &Request, rest: &str) -> Result<Response> {
        match zoomify::parse(rest)? {
            ZoomifyRequest::Properties { id } => {
                let opened = self.registry().open(&id)?;
                let xml = zoomify::properties(opened.source.info());
                Ok(self.text_response("application/xml", xml, Some(&opened)))
            }
            ZoomifyRequest::Tile { id, z, x, y } => {
                let opened = self.registry().open(&id)?;
                let view = tile_at(opened.source.info(), z, x, y, Format::Jpeg)?;
                self.view_response(req, &opened, &view)
            }
        }
    }
}
