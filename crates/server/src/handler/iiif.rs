//! Answers to IIIF requests: base-URI redirect, info.json, images.

use super::{not_modified, App, Request, Response};
use crate::error::Flow;
use crate::forwarded;
use crate::storage::registry::Opened;
use bytes::Bytes;
use iipsrv_core::info::ImageInfo;
use iipsrv_core::protocol::iiif::{self, IiifRequest, ImageParams, Target, Version};
use iipsrv_core::protocol::iiif_info::{self, InfoContext};
use iipsrv_core::sequence;
use iipsrv_core::view::View;

impl App {
    /// Answers a IIIF request; `rest` is the path after the prefix, `base` the prefix path.
    pub(super) fn iiif(&self, req: &Request, rest: &str, base: &str) -> Flow<Response> {
        let parsed = iiif::parse(rest)?;
        let default = self.web.iiif_version;
        let negotiated = accept_version(req);
        let version = parsed.version.or(negotiated).unwrap_or(default);
        let id_uri = self.id_uri(req, base, &parsed);
        let (file, page) = match self.web.iiif_delimiter.as_deref() {
            Some(d) => iiif::split_page(&parsed.id, d),
            None => (parsed.id.as_str(), None),
        };
        let open = |req: &Request| {
            self.open_view(req, file, page.map(|p| (p, sequence::DEFAULT_ANGLES.1)))
        };
        match &parsed.target {
            Target::Base => {
                open(req)?;
                let mut r = Response::new(303, "text/plain", Bytes::new());
                r.headers.push(("location", format!("{id_uri}/info.json")));
                Ok(r)
            }
            Target::Info => {
                let opened = open(req)?;
                if let Some(mut r) = not_modified(req, &opened, &self.web.cache_control) {
                    r.headers.push(("vary", "Accept".into()));
                    return Ok(r);
                }
                let private = parsed.version.is_none() && negotiated.is_some_and(|v| v != default);
                Ok(self.info_response(req, &opened, &id_uri, version, private))
            }
            Target::Image(params) => {
                params.check_extensions(self.web.iiif_extensions)?;
                let composite = iiif::composite(&req.query, self.web.iiif_extensions)?;
                let opened = match &composite {
                    Some(c) => self.open_planes(req, file, &c.planes)?,
                    None => open(req)?,
                };
                let info = opened.source.info();
                let mut view =
                    params.resolve(info.width, info.height, version, self.size_limits())?;
                if let Some(c) = &composite {
                    c.apply(&mut view);
                }
                let mut r = self.view_response(req, &opened, &view)?;
                let link = link_header(&id_uri, &view, params, info, version);
                r.headers.push(("link", link));
                Ok(r)
            }
        }
    }

    /// The `id` of an image: X-IIIF-ID, else BASE_URL + id, else scheme://host/prefix/id,
    /// where a trusted proxy's X-Forwarded-Proto, -Host and -Prefix replace the scheme,
    /// Host and nothing it saw.
    fn id_uri(&self, req: &Request, base: &str, parsed: &IiifRequest) -> String {
        if let Some(id) = req.header("x-iiif-id") {
            return id.trim_end_matches('/').to_string();
        }
        let version_seg = match parsed.version {
            Some(Version::V2) => "2/",
            Some(Version::V3) => "3/",
            None => "",
        };
        if let Some(b) = self.web.base_url.as_deref() {
            return format!("{}/{version_seg}{}", b.trim_end_matches('/'), parsed.raw_id);
        }
        let forwarded = |name: &str| {
            self.web
                .proxies
                .trusts(req.peer)
                .then(|| req.header(name).and_then(forwarded::first_value))
                .flatten()
        };
        let scheme = match forwarded("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            _ if req.https => "https",
            _ => "http",
        };
        let host = forwarded("x-forwarded-host")
            .or_else(|| req.header("host"))
            .unwrap_or("localhost");
        let prefix = forwarded("x-forwarded-prefix")
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map_or(String::new(), |p| format!("/{p}"));
        format!(
            "{scheme}://{host}{prefix}{base}/{version_seg}{}",
            parsed.raw_id
        )
    }

    fn info_response(
        &self,
        req: &Request,
        opened: &Opened,
        id: &str,
        version: Version,
        private: bool,
    ) -> Response {
        let ctx = InfoContext {
            id,
            version,
            max_size: self.web.limits.max_size,
            allow_upscaling: self.web.limits.allow_upscaling,
            copyright: self.web.copyright.as_deref(),
            extra: self.web.extra_info.as_ref(),
            extensions: self.web.iiif_extensions,
            avif: iipsrv_formats::codec::avif::BUILT,
        };
        let doc = iiif_info::info_json(opened.source.info(), &ctx);
        let body = serde_json::to_string_pretty(&doc).unwrap_or_default();
        // JSON-LD with the version's profile, always, as the original answers; a client that
        // asks for plain JSON gets that.
        let plain_json = req
            .header("accept")
            .is_some_and(|a| a.contains("application/json") && !a.contains("application/ld+json"));
        let mime = if plain_json {
            "application/json".to_string()
        } else {
            format!("application/ld+json;profile=\"{}\"", version.context())
        };
        let mut r = Response::new(200, &mime, body);
        self.cache_headers(&mut r, Some(opened), private);
        r.headers.push(("vary", "Accept".into()));
        r.headers
            .push(("link", format!("<{}>;rel=\"profile\"", version.profile())));
        r
    }
}

/// The version asked for through an Accept header's JSON-LD profile.
fn accept_version(req: &Request) -> Option<Version> {
    let accept = req.header("accept")?;
    if accept.contains("iiif.io/api/image/2/context.json") {
        Some(Version::V2)
    } else if accept.contains("iiif.io/api/image/3/context.json") {
        Some(Version::V3)
    } else {
        None
    }
}

/// Link header of an image answer: the compliance profile and the canonical URI.
fn link_header(
    id: &str,
    view: &View,
    params: &ImageParams,
    info: &ImageInfo,
    version: Version,
) -> String {
    let (width, height) = (info.width, info.height);
    let r = view.region;
    let region = if (r.x, r.y, r.w, r.h) == (0, 0, width, height) {
        "full".to_string()
    } else {
        format!("{},{},{},{}", r.x, r.y, r.w, r.h)
    };
    let size = match version {
        Version::V3 if (view.width, view.height) == (r.w, r.h) => "max".to_string(),
        Version::V3 => format!("{},{}", view.width, view.height),
        Version::V2 => format!("{},", view.width),
    };
    let rot = format!(
        "{}{}",
        if view.rotation.mirror { "!" } else { "" },
        view.rotation.degrees
    );
    format!(
        "<{id}/{region}/{size}/{rot}/{}.{}>;rel=\"canonical\", <{}>;rel=\"profile\"",
        params.quality_name(),
        view.format.extension(),
        version.profile()
    )
}
