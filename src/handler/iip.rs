//! Answers to IIP query strings: OBJ metadata lines, tiles (JTL/PTL/WTL/TTL), CVT
//! regions, and the embedded DeepZoom/Zoomify/IIIF forms.

use super::{App, Request, Response};
use crate::error::{Error, Result};
use crate::protocol::iip::{self, Action, ObjQuery};

/// MIME type of OBJ answers, as the original sends it.
const NETFPX: &str = "application/vnd.netfpx";

impl App {
    /// Answers an IIP request from the query string.
    pub(super) fn iip(&self, req: &Request) -> Result<Response> {
        let parsed = iip::parse(&req.query)?;
        for action in &parsed.actions {
            match action {
                Action::DeepZoom(p) => return self.deepzoom(req, p),
                Action::Zoomify(p) => return self.zoomify(req, p),
                Action::Iiif(p) => {
                    let base = format!("{}?IIIF=", req.path);
                    return self.iiif(req, p.trim_start_matches('/'), &base);
                }
                _ => {}
            }
        }
        let image_action = parsed
            .actions
            .iter()
            .find(|a| matches!(a, Action::Tile { .. } | Action::Convert(_)));
        if let Some(action) = image_action {
            let opened = self.registry.open_view(parsed.image()?, parsed.angles)?;
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
                _ => return Err(Error::Internal("unexpected IIP action".into())),
            };
            return self.view_response(req, &opened, &view);
        }
        self.obj(&parsed)
    }

    /// OBJ answers: one `Name:value` line per query, CRLF-terminated.
    fn obj(&self, parsed: &iip::IipRequest) -> Result<Response> {
        let queries: Vec<&ObjQuery> = parsed
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Obj(q) => Some(q),
                _ => None,
            })
            .collect();
        if queries.is_empty() {
            return Err(Error::bad("IIP: no command to answer (OBJ, JTL, CVT, ...)"));
        }
        let needs_image = queries.iter().any(|q| **q != ObjQuery::Iip);
        let opened = match (needs_image, parsed.image.as_deref()) {
            (false, None) => None,
            _ => Some(self.registry.open_view(parsed.image()?, parsed.angles)?),
        };
        let mut body = String::new();
        for q in queries {
            let lines = match (&opened, q) {
                (_, ObjQuery::Iip) => vec!["IIP:1.0".to_string()],
                (Some(o), q) => iip::obj_lines(q, o.source.info(), o.views.as_deref()),
                (None, _) => return Err(Error::bad("IIP: no image given (FIF)")),
            };
            for l in lines {
                body.push_str(&l);
                body.push_str("\r\n");
            }
        }
        Ok(self.ok_response(NETFPX, body, opened.as_ref()))
    }
}
