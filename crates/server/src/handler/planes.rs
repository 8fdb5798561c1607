//! Fluorescence composites: the planes a request names (IIP `CHN`, IIIF `?channels=`),
//! opened as the pages of a stack and read together as the channels of one image, which
//! the render pipeline then mixes.

use super::auth::Granted;
use super::{App, Request};
use crate::error::{Error, Flow};
use crate::storage::registry::Opened;
use iipsrv_core::sequence;
use iipsrv_formats::source::planes;

impl App {
    /// The planes `planes` of image `id` as one image whose channels they are; the first
    /// plane's version and date stand for the composite (the answer's key names the planes).
    /// Planes that cannot be mixed (different sizes or samples) are the request's fault: 400.
    /// Every plane passes the access check; the first plane's grant stands for the composite.
    pub(super) fn open_planes(&self, req: &Request, id: &str, planes: &[u32]) -> Flow<Granted> {
        let mut opened = Vec::with_capacity(planes.len());
        for &plane in planes {
            let page = i32::try_from(plane)
                .map_err(|_| Error::bad(format!("no plane {plane} in this image")))?;
            opened.push(self.open_view(req, id, Some((page, sequence::DEFAULT_ANGLES.1)))?);
        }
        let sources = opened.iter().map(|o| o.opened.source.clone()).collect();
        let source = planes::composite(sources).map_err(|e| Error::bad(e.to_string()))?;
        let first = opened
            .into_iter()
            .next()
            .ok_or_else(|| Error::bad("a composite needs at least one plane"))?;
        Ok(Granted {
            opened: Opened {
                source,
                views: None,
                building: None,
                ..first.opened
            },
            ..first
        })
    }
}
