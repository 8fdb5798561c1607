//! Answers to IIIF requests: base-URI redirect, info.json, images; under an access policy
//! also the auth services and degraded image services ([`super::auth`]).

use super::auth::{
    degraded_info, full_region, Grant, Granted, AUTH_CONTEXT, AUTH_SEGMENT, DEGRADED_SEGMENT,
};
use super::{App, Audience, Request, Response};
use crate::error::{Error, Flow, Halt};
use crate::forwarded;
use bytes::Bytes;
use iipsrv_core::info::ImageInfo;
use iipsrv_core::protocol::composite;
use iipsrv_core::protocol::iiif::{self, IiifRequest, ImageParams, Target, Version};
use iipsrv_core::protocol::iiif_info::{self, InfoContext};
use iipsrv_core::sequence;
use iipsrv_core::view::View;

impl App {
    /// Answers a IIIF request; `rest` is the path after the prefix, `base` the prefix path.
    /// Under an access policy, `_auth/` paths are its services and `_degraded/` ones its
    /// degraded image services.
    pub(super) fn iiif(&self, req: &Request, rest: &str, base: &str) -> Flow<Response> {
        if let Some(access) = &self.access {
            if let Some(service) = rest.strip_prefix(AUTH_SEGMENT) {
                let root = self.base_uri(req, base);
                return Ok(self.auth_request(access, req, service, &root)?);
            }
            if let Some(rest) = rest.strip_prefix(DEGRADED_SEGMENT) {
                return self.image_service(req, rest, base, true);
            }
        }
        self.image_service(req, rest, base, false)
    }

    /// Answers a request of an image service (the degraded one of the image when
    /// `degraded`).
    fn image_service(
        &self,
        req: &Request,
        rest: &str,
        base: &str,
        degraded: bool,
    ) -> Flow<Response> {
        let parsed = iiif::parse(rest)?;
        let default = self.web.iiif_version;
        let negotiated = accept_version(req);
        let version = parsed.version.or(negotiated).unwrap_or(default);
        let root = self.base_uri(req, base);
        let id_uri = self.id_uri(req, &root, &parsed, degraded);
        let (file, page) = match self.web.iiif_delimiter.as_deref() {
            Some(d) => iiif::split_page(&parsed.id, d),
            None => (parsed.id.as_str(), None),
        };
        let service_size = match degraded {
            true => Some(self.degraded_size(file)?),
            false => None,
        };
        // Through the degraded image service, what the caller sees is the service's size.
        let serviced = |mut granted: Granted| -> Granted {
            if let Some(n) = service_size {
                granted.grant = Grant::Service(n);
            }
            granted
        };
        let open = |req: &Request| -> Flow<Granted> {
            let opened =
                self.open_view(req, file, page.map(|p| (p, sequence::DEFAULT_ANGLES.1)))?;
            Ok(serviced(opened))
        };
        match &parsed.target {
            Target::Base => {
                open(req)?;
                let mut r = Response::new(303, "text/plain", Bytes::new());
                r.headers.push(("location", format!("{id_uri}/info.json")));
                Ok(r)
            }
            Target::Info => {
                let described = Described {
                    id: &id_uri,
                    version,
                    private: parsed.version.is_none() && negotiated.is_some_and(|v| v != default),
                    auth: match degraded {
                        false => self.auth_service(file, &root, &parsed.raw_id),
                        true => None,
                    },
                };
                self.info(req, open(req), described)
            }
            Target::Image(params) => {
                params.check_extensions(self.web.iiif_extensions)?;
                let composite = composite::from_query(&req.query, self.web.iiif_extensions)?;
                let opened = match &composite {
                    Some(c) => serviced(self.open_planes(req, file, &c.planes)?),
                    None => open(req)?,
                };
                let full = opened.source.info();
                let shown = self.shown_info(&opened);
                let info = shown.as_ref();
                let mut view =
                    params.resolve(info.width, info.height, version, self.limits_of(&opened))?;
                if let Some(c) = &composite {
                    c.apply(&mut view);
                }
                let link = link_header(&id_uri, &view, params, info, version);
                if let std::borrow::Cow::Owned(shown) = &shown {
                    view.region = full_region(view.region, shown, full);
                }
                let mut r = self.view_response(req, &opened, &view)?;
                r.headers.push(("link", link));
                Ok(r)
            }
        }
    }

    /// The `id` of an image: X-IIIF-ID, else `root` (see [`App::base_uri`]) + id; the
    /// degraded image service's has `_degraded/` before the id.
    fn id_uri(&self, req: &Request, root: &str, parsed: &IiifRequest, degraded: bool) -> String {
        if let Some(id) = req.header("x-iiif-id") {
            return id.trim_end_matches('/').to_string();
        }
        let version_seg = match parsed.version {
            Some(Version::V2) => "2/",
            Some(Version::V3) => "3/",
            None => "",
        };
        let service = if degraded { DEGRADED_SEGMENT } else { "" };
        format!("{root}/{service}{version_seg}{}", parsed.raw_id)
    }

    /// The IIIF prefix as the public sees it: BASE_URL, else scheme://host/prefix, where a
    /// trusted proxy's X-Forwarded-Proto, -Host and -Prefix replace the scheme, Host and
    /// nothing it saw.
    pub(super) fn base_uri(&self, req: &Request, base: &str) -> String {
        if let Some(b) = self.web.base_url.as_deref() {
            return b.trim_end_matches('/').to_string();
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
        format!("{scheme}://{host}{}{base}", self.public_prefix(req))
    }

    /// A trusted proxy's X-Forwarded-Prefix as `/prefix` (empty when none).
    pub(super) fn public_prefix(&self, req: &Request) -> String {
        self.web
            .proxies
            .trusts(req.peer)
            .then(|| {
                req.header("x-forwarded-prefix")
                    .and_then(forwarded::first_value)
            })
            .flatten()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map_or(String::new(), |p| format!("/{p}"))
    }

    /// The image as a service presents it: as it is, or scaled to the size of a degraded
    /// image service.
    fn shown_info<'a>(&self, opened: &'a Granted) -> std::borrow::Cow<'a, ImageInfo> {
        match opened.grant {
            Grant::Service(n) => std::borrow::Cow::Owned(degraded_info(opened.source.info(), n)),
            _ => std::borrow::Cow::Borrowed(opened.source.info()),
        }
    }

    /// MAX_CVT and ALLOW_UPSCALING, with a degraded image service's size as MAX_CVT when it
    /// is smaller.
    fn limits_of(&self, opened: &Granted) -> iipsrv_core::view::SizeLimits {
        let mut limits = self.size_limits();
        if let Grant::Service(n) = opened.grant {
            limits.max_size = Some(limits.max_size.map_or(n, |m| m.min(n)));
        }
        limits
    }

    /// The info.json of an image once opened: the 401 document when the caller may not
    /// see it, a 304 when the client's copy is current, else the description.
    fn info(&self, req: &Request, opened: Flow<Granted>, d: Described) -> Flow<Response> {
        let opened = match opened {
            Err(Halt::Failed(e @ Error::Denied { .. })) => {
                return Ok(denied_info(&e, d.id, d.version, d.auth))
            }
            opened => opened?,
        };
        if let Some(mut r) = self.not_modified(req, &opened, Audience::of(&opened, d.private)) {
            r.headers.push(("vary", "Accept".into()));
            return Ok(r);
        }
        Ok(self.info_response(req, &opened, d))
    }

    fn info_response(&self, req: &Request, opened: &Granted, d: Described) -> Response {
        let Described {
            id,
            version,
            private,
            auth,
        } = d;
        let ctx = InfoContext {
            id,
            version,
            max_size: self.limits_of(opened).max_size,
            allow_upscaling: self.web.limits.allow_upscaling,
            copyright: self.web.copyright.as_deref(),
            extra: self.web.extra_info.as_ref(),
            extensions: self.web.iiif_extensions,
            avif: iipsrv_formats::codec::avif::BUILT,
        };
        let mut doc = iiif_info::info_json(&self.shown_info(opened), &ctx);
        if let Some(auth) = auth {
            add_auth_service(&mut doc, auth, version);
        }
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
        self.cache_headers(&mut r, Some(opened), Audience::of(opened, private));
        r.headers.push(("vary", "Accept".into()));
        r.headers
            .push(("link", format!("<{}>;rel=\"profile\"", version.profile())));
        r
    }
}

/// What an info.json describes besides the image: its id, version, whether it is private
/// to the client (negotiated), and the auth services of its rule.
struct Described<'a> {
    id: &'a str,
    version: Version,
    private: bool,
    auth: Option<serde_json::Value>,
}

/// Adds the auth probe service to an info.json's `service` list (v3 also names the auth
/// context; v2 carries it on the service).
fn add_auth_service(doc: &mut serde_json::Value, mut auth: serde_json::Value, version: Version) {
    match version {
        Version::V3 => doc["@context"] = serde_json::json!([AUTH_CONTEXT, version.context()]),
        Version::V2 => auth["@context"] = AUTH_CONTEXT.into(),
    }
    match doc.get_mut("service").and_then(|s| s.as_array_mut()) {
        Some(list) => list.push(auth),
        None => doc["service"] = serde_json::json!([auth]),
    }
}

/// The 401 info.json of an image the caller may not see (or that is not there): no size,
/// nothing read from a file, only what a client needs to ask for access.
fn denied_info(e: &Error, id: &str, version: Version, auth: Option<serde_json::Value>) -> Response {
    let mut doc = match version {
        Version::V3 => serde_json::json!({
            "@context": version.context(),
            "id": id,
            "type": "ImageService3",
            "protocol": "http://iiif.io/api/image",
            "profile": "level0",
        }),
        Version::V2 => serde_json::json!({
            "@context": version.context(),
            "@id": id,
            "protocol": "http://iiif.io/api/image",
            "profile": [version.profile()],
        }),
    };
    if let Some(auth) = auth {
        add_auth_service(&mut doc, auth, version);
    }
    let mut r = Response::new(e.status(), "application/json", doc.to_string());
    r.headers.push(("cache-control", "no-store".into()));
    if let Some(c) = e.challenge() {
        r.headers.push(("www-authenticate", c.into()));
    }
    if let Some(link) = e.probe_link() {
        r.headers.push(("link", link));
    }
    r
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
