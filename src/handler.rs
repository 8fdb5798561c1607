//! The one request handler shared by every front end. It takes a plain [`Request`] (method,
//! path, query, headers) and returns a plain [`Response`]; no sockets, so tests call it
//! directly. Routing: `/` (index page), URI_MAP prefixes (IIIF), everything else 404.

use crate::cache::{Answer, AnswerCache};
use crate::config::{Config, Protocol, UriMap};
use crate::error::{Error, Result};
use crate::ops::Interpolation;
use crate::pipeline::{self, Settings};
use crate::protocol::iiif::{self, IiifRequest, SizeLimits, Target, Version};
use crate::protocol::iiif_info::{self, InfoContext};
use crate::registry::{Opened, Registry};
use crate::view::View;
use bytes::Bytes;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Request methods the handler distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: a GET without body.
    Head,
    /// POST: answered like GET.
    Post,
    /// OPTIONS: CORS preflight.
    Options,
    /// Anything else: 405.
    Other,
}

impl Method {
    /// Maps a method name.
    pub fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path, still percent-encoded, without the query.
    pub path: String,
    /// Query string without `?`.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Whether the client connection is HTTPS (for building absolute URIs).
    pub https: bool,
}

impl Request {
    /// A GET of `path_and_query`, for tests and tools.
    pub fn get(path_and_query: &str) -> Request {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method: Method::Get,
            path: path.to_string(),
            query: query.to_string(),
            headers: vec![("host".into(), "localhost".into())],
            https: false,
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response as the handler produces it; the front end adds Content-Length and Date.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body (kept for HEAD too; the front end drops it).
    pub body: Bytes,
}

impl Response {
    fn new(status: u16, mime: &str, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            headers: vec![("content-type", mime.to_string())],
            body: body.into(),
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The application: configuration, image registry, caches and encoder settings.
pub struct App {
    config: Config,
    registry: Registry,
    cache: AnswerCache,
    settings: Settings,
    maps: Vec<UriMap>,
    extra_info: Option<serde_json::Map<String, serde_json::Value>>,
}

impl App {
    /// Builds the application serving images under `root`.
    pub fn new(config: Config, root: &Path) -> Result<App> {
        config.validate()?;
        let capacity = match config.max_metadata_cache_size {
            n if n < 0 => 1 << 20,
            n => n as usize,
        };
        let registry = Registry::new(root, &config.filesystem_suffix, capacity)?;
        let max_icc = match (config.embed_icc, config.max_icc) {
            (0, _) => 0,
            (_, n) if n < 0 => usize::MAX,
            (_, n) => n as usize,
        };
        let settings = Settings {
            interpolation: Interpolation::from_setting(config.interpolation),
            jpeg_quality: config.jpeg_quality,
            png_level: config.png_quality,
            webp_quality: config.webp_quality,
            tiff_compression: config.tiff_compression,
            passthrough: config.codec_passthrough == 1,
            max_icc,
        };
        Ok(App {
            cache: AnswerCache::new(config.max_image_cache_size),
            maps: config.uri_maps()?,
            extra_info: config.extra_info()?,
            registry,
            settings,
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The answer cache (for tests and metrics).
    pub fn cache(&self) -> &AnswerCache {
        &self.cache
    }

    /// Handles one request. Never panics on bad input: every failure is an error response.
    pub fn handle(&self, req: &Request) -> Response {
        let mut resp = match req.method {
            Method::Options => self.preflight(),
            Method::Other => {
                self.error_response(&Error::MethodNotAllowed("method not allowed".into()))
            }
            _ => self.route(req).unwrap_or_else(|e| {
                if e.status() >= 500 {
                    tracing::warn!(path = %req.path, status = e.status(), "{e}");
                } else {
                    tracing::info!(path = %req.path, status = e.status(), "{e}");
                }
                self.error_response(&e)
            }),
        };
        if let Some(origin) = &self.config.cors {
            resp.headers
                .push(("access-control-allow-origin", origin.clone()));
        }
        resp
    }

    fn preflight(&self) -> Response {
        let mut r = Response::new(204, "text/plain", Bytes::new());
        r.headers.push(("allow", "GET, HEAD, POST, OPTIONS".into()));
        if self.config.cors.is_some() {
            r.headers.push((
                "access-control-allow-methods",
                "GET, HEAD, POST, OPTIONS".into(),
            ));
            r.headers.push((
                "access-control-allow-headers",
                "Accept, Content-Type, X-Requested-With, If-Modified-Since".into(),
            ));
            r.headers.push(("access-control-max-age", "86400".into()));
        }
        r
    }

    fn error_response(&self, e: &Error) -> Response {
        let mut r = Response::new(e.status(), "text/plain; charset=utf-8", e.to_string());
        if e.status() == 405 {
            r.headers.push(("allow", "GET, HEAD, POST, OPTIONS".into()));
        }
        if e.status() == 503 {
            r.headers.push(("retry-after", "1".into()));
        }
        r
    }

    fn route(&self, req: &Request) -> Result<Response> {
        if req.path == "/" || req.path.is_empty() {
            return Ok(self.index());
        }
        for map in &self.maps {
            let rest = if map.prefix.is_empty() {
                Some(req.path.trim_start_matches('/'))
            } else {
                req.path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_prefix(map.prefix.as_str()))
                    .and_then(|p| p.strip_prefix('/'))
            };
            if let (Some(rest), Protocol::Iiif) = (rest, map.protocol) {
                let base = format!("/{}", map.prefix);
                return self.iiif(req, rest, base.trim_end_matches('/'));
            }
        }
        Err(Error::NotFound(format!(
            "no resource at {}",
            truncate(&req.path)
        )))
    }

    fn iiif(&self, req: &Request, rest: &str, base: &str) -> Result<Response> {
        let parsed = iiif::parse(rest)?;
        let default = if self.config.iiif_version == 2 {
            Version::V2
        } else {
            Version::V3
        };
        let negotiated = accept_version(req);
        let version = parsed.version.or(negotiated).unwrap_or(default);
        let id_uri = self.id_uri(req, base, &parsed);
        match &parsed.target {
            Target::Base => {
                self.registry.resolve(&parsed.id)?;
                let mut r = Response::new(303, "text/plain", Bytes::new());
                r.headers.push(("location", format!("{id_uri}/info.json")));
                Ok(r)
            }
            Target::Info => {
                let opened = self.registry.open(&parsed.id)?;
                if let Some(r) = not_modified(req, opened.mtime) {
                    return Ok(r);
                }
                let private = parsed.version.is_none() && negotiated.is_some_and(|v| v != default);
                Ok(self.info_response(req, &opened, &id_uri, version, private))
            }
            Target::Image(params) => {
                let opened = self.registry.open(&parsed.id)?;
                if let Some(r) = not_modified(req, opened.mtime) {
                    return Ok(r);
                }
                let info = opened.source.info();
                let limits = SizeLimits {
                    max_size: self.config.max_size(),
                    allow_upscaling: self.config.allow_upscaling == 1,
                };
                let view = params.resolve(info.width, info.height, version, limits)?;
                let answer = self.render(&opened, &view)?;
                let mut r = self.image_response(answer, opened.mtime);
                r.headers.push((
                    "link",
                    link_header(&id_uri, &view, info.width, info.height, version),
                ));
                Ok(r)
            }
        }
    }

    /// The `id` of an image: X-IIIF-ID, else BASE_URL + id, else scheme://Host/prefix/id.
    fn id_uri(&self, req: &Request, base: &str, parsed: &IiifRequest) -> String {
        if let Some(id) = req.header("x-iiif-id") {
            return id.trim_end_matches('/').to_string();
        }
        let version_seg = match parsed.version {
            Some(Version::V2) => "2/",
            Some(Version::V3) => "3/",
            None => "",
        };
        if let Some(b) = self.config.base_url.as_deref().filter(|b| !b.is_empty()) {
            return format!("{}/{version_seg}{}", b.trim_end_matches('/'), parsed.raw_id);
        }
        let scheme = if req.https { "https" } else { "http" };
        let host = req.header("host").unwrap_or("localhost");
        format!("{scheme}://{host}{base}/{version_seg}{}", parsed.raw_id)
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
            max_size: self.config.max_size(),
            allow_upscaling: self.config.allow_upscaling == 1,
            copyright: self.config.copyright.as_deref(),
            extra: self.extra_info.as_ref(),
        };
        let doc = iiif_info::info_json(opened.source.info(), &ctx);
        let body = serde_json::to_string_pretty(&doc).unwrap_or_default();
        let wants_ld = req
            .header("accept")
            .is_some_and(|a| a.contains("application/ld+json"));
        let mime = if wants_ld {
            format!("application/ld+json;profile=\"{}\"", version.context())
        } else {
            "application/json".to_string()
        };
        let mut r = Response::new(200, &mime, body);
        r.headers
            .push(("last-modified", httpdate::fmt_http_date(opened.mtime)));
        let cc = if private {
            "private".to_string()
        } else {
            self.config.cache_control.clone()
        };
        r.headers.push(("cache-control", cc));
        r.headers.push(("vary", "Accept".into()));
        let profile = match version {
            Version::V2 => "http://iiif.io/api/image/2/level2.json",
            Version::V3 => "http://iiif.io/api/image/3/level2.json",
        };
        r.headers
            .push(("link", format!("<{profile}>;rel=\"profile\"")));
        r
    }

    /// Renders a view of an open image, through the answer cache.
    pub fn render(&self, opened: &Opened, view: &View) -> Result<Answer> {
        let mtime = opened
            .mtime
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        let key = format!("{}|{mtime}|{}", opened.path.display(), view.cache_key());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let rendered = pipeline::render(opened.source.as_ref(), view, &self.settings)?;
        let answer = Answer {
            body: Bytes::from(rendered.bytes),
            mime: rendered.mime,
        };
        self.cache.insert(key, answer.clone());
        Ok(answer)
    }

    fn image_response(&self, answer: Answer, mtime: SystemTime) -> Response {
        let mut r = Response::new(200, answer.mime, answer.body);
        r.headers
            .push(("last-modified", httpdate::fmt_http_date(mtime)));
        r.headers
            .push(("cache-control", self.config.cache_control.clone()));
        r
    }

    /// The index page: the images in the image directory with links to their IIIF URLs.
    fn index(&self) -> Response {
        let prefix = self
            .maps
            .iter()
            .find(|m| m.protocol == Protocol::Iiif)
            .map_or("iiif".to_string(), |m| m.prefix.clone());
        let mut rows = String::new();
        for name in list_images(self.registry.root()) {
            let id = percent_encoding::utf8_percent_encode(&name, ID_ENCODE).to_string();
            let dims = self
                .registry
                .open(&name)
                .map(|o| format!("{} × {}", o.source.info().width, o.source.info().height))
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            rows.push_str(&format!(
                "<li><a href=\"/{prefix}/{id}/full/max/0/default.jpg\"><img src=\"/{prefix}/{id}/full/!200,200/0/default.jpg\" alt=\"\"></a> \
                 <b>{n}</b> ({dims}) — <a href=\"/{prefix}/{id}/info.json\">info.json</a></li>\n",
                n = html_escape(&name),
            ));
        }
        if rows.is_empty() {
            rows.push_str("<li>No TIFF images in the image directory.</li>");
        }
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>iipsrv</title></head><body>\
             <h1>iipsrv</h1><p>IIIF Image API at <code>/{prefix}/&lt;id&gt;/info.json</code></p><ul>{rows}</ul></body></html>"
        );
        Response::new(200, "text/html; charset=utf-8", body)
    }
}

/// Characters escaped when an identifier is put into a URL path segment.
const ID_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// TIFF files directly in `dir`, sorted, at most 500.
fn list_images(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| crate::registry::looks_like_tiff(&e.path()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.truncate(500);
    names
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

/// A 304 when the client's copy (If-Modified-Since) is as new as the file.
fn not_modified(req: &Request, mtime: SystemTime) -> Option<Response> {
    let since = httpdate::parse_http_date(req.header("if-modified-since")?).ok()?;
    let file_secs = mtime.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let since_secs = since.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (file_secs <= since_secs).then(|| {
        let mut r = Response::new(304, "text/plain", Bytes::new());
        r.headers.retain(|(n, _)| *n != "content-type");
        r.headers
            .push(("last-modified", httpdate::fmt_http_date(mtime)));
        r
    })
}

/// Link header of an image answer: the compliance profile and the canonical URI.
fn link_header(id: &str, view: &View, width: u32, height: u32, version: Version) -> String {
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
    let quality = match view.quality {
        crate::view::Quality::Default => "default",
        crate::view::Quality::Gray => "gray",
        crate::view::Quality::Bitonal => "bitonal",
    };
    let profile = match version {
        Version::V2 => "http://iiif.io/api/image/2/level2.json",
        Version::V3 => "http://iiif.io/api/image/3/level2.json",
    };
    format!(
        "<{id}/{region}/{size}/{rot}/{quality}.{}>;rel=\"canonical\", <{profile}>;rel=\"profile\"",
        view.format.extension()
    )
}
