//! Answers to the tile-only protocols, DeepZoom and Zoomify: their descriptors and their
//! tiles, which are the same views (and cache entries) as IIP and IIIF tiles. Tiles take
//! IIIF's `?channels=` composites too (IIIF_EXTENSIONS), so a viewer can show a
//! fluorescence composite through DeepZoom or Zoomify.

use super::auth::Granted;
use super::{App, Request, Response};
use crate::error::Flow;
use iipsrv_core::protocol::composite::{self, Composite};
use iipsrv_core::protocol::deepzoom::{self, DeepZoomRequest};
use iipsrv_core::protocol::iip::IipRequest;
use iipsrv_core::protocol::zoomify::{self, ZoomifyRequest};
use iipsrv_core::view::{Format, View};

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
                let (opened, composite) = self.open_tiled(req, &id)?;
                let info = opened.source.info();
                let resolution = deepzoom::resolution(info, level);
                let view = IipRequest::default().tile_view_at(info, resolution, x, y, format)?;
                self.view_response(req, &opened, &composed(view, composite))
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
                let (opened, composite) = self.open_tiled(req, &id)?;
                let view = IipRequest::default().tile_view_at(
                    opened.source.info(),
                    z,
                    x,
                    y,
                    Format::Jpeg,
                )?;
                self.view_response(req, &opened, &composed(view, composite))
            }
        }
    }

    /// The image a tile of `id` is read from: the image, or the planes a `?channels=`
    /// composite names, read together (with the composite, which then shapes the view).
    fn open_tiled(&self, req: &Request, id: &str) -> Flow<(Granted, Option<Composite>)> {
        let composite = composite::from_query(&req.query, self.web.iiif_extensions)?;
        let opened = match &composite {
            Some(c) => self.open_planes(req, id, &c.planes)?,
            None => self.open(req, id)?,
        };
        Ok((opened, composite))
    }
}

/// `view` mixed as `composite` says, when there is one.
fn composed(mut view: View, composite: Option<Composite>) -> View {
    if let Some(c) = composite {
        c.apply(&mut view);
    }
    view
}
