//! Answers to the tile-only protocols, DeepZoom and Zoomify: their descriptors and their
//! tiles, which are the same views (and cache entries) as IIP and IIIF tiles.

use super::{App, Request, Response};
use crate::error::Flow;
use iipsrv_core::protocol::deepzoom::{self, DeepZoomRequest};
use iipsrv_core::protocol::iip::IipRequest;
use iipsrv_core::protocol::zoomify::{self, ZoomifyRequest};
use iipsrv_core::view::Format;

impl App {
    /// Answers a DeepZoom request (`rest` is the path after the prefix).
    pub(super) fn deepzoom(&self, req: &Request, rest: &str) -> Flow<Response> {
        match deepzoom::parse(rest)? {
            DeepZoomRequest::Descriptor { id } => {
                let opened = self.open(req, &id)?;
                let xml = deepzoom::descriptor(opened.source.info(), Format::Jpeg);
                Ok(self.granted_response("application/xml", xml, &opened))
            }
            DeepZoomRequest::Tile {
                id,
                level,
                x,
                y,
                format,
            } => {
                let opened = self.open(req, &id)?;
                let info = opened.source.info();
                let resolution = deepzoom::resolution(info, level);
                let view = IipRequest::default().tile_view_at(info, resolution, x, y, format)?;
                self.view_response(req, &opened, &view)
            }
        }
    }

    /// Answers a Zoomify request (`rest` is the path after the prefix).
    pub(super) fn zoomify(&self, req: &Request, rest: &str) -> Flow<Response> {
        match zoomify::parse(rest)? {
            ZoomifyRequest::Properties { id } => {
                let opened = self.open(req, &id)?;
                let xml = zoomify::properties(opened.source.info());
                Ok(self.granted_response("application/xml", xml, &opened))
            }
            ZoomifyRequest::Tile { id, z, x, y } => {
                let opened = self.open(req, &id)?;
                let view = IipRequest::default().tile_view_at(
                    opened.source.info(),
                    z,
                    x,
                    y,
                    Format::Jpeg,
                )?;
                self.view_response(req, &opened, &view)
            }
        }
    }
}
