//! The one request handler shared by every front end. It takes a plain [`Request`] (method,
//! path, query, headers) and returns a plain [`Response`]; no sockets, so tests call it
//! directly. Routing: URI_MAP prefixes (IIIF, DeepZoom, Zoomify, IIP), any other path
//! with a query string (IIP, as the original's FastCGI endpoint), `/` and `/viewer/` (the
//! pages for people, [`viewer`]), else 404.

mod auth;
mod iiif;
mod iip;
mod planes;
mod tiles;
mod viewer;

use crate::access::sessions::SessionStore;
use crate::access::Access;
use crate::error::{Error, Flow, Halt, Result};
use crate::render;
use crate::render::watermark::Watermark;
use crate::settings::{ImageSettings, Protocol, Settings, UriMap, WatermarkSettings, WebSettings};
use crate::storage::answers::{Answer, AnswerCache};
use crate::storage::pyramids::Pyramids;
use crate::storage::registry::{Opened, Registry};
use crate::storage::tier::SharedTier;
use crate::storage::tiles::TileCache;
use auth::Granted;
use bytes::Bytes;
use iipsrv_core::view::{SizeLimits, View};
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

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
    /// The method's name as HTTP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }

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

/// How much work the handler may do for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Only what is answered from memory in microseconds: cached answers, descriptors and
    /// stored tiles (one positioned read) of images already open. Anything more halts with
    /// [`Halt::NeedsWorker`]. The dispatcher tries this on the connection's own thread first,
    /// which saves two thread hand-offs per request (most of the time of a cached tile).
    Quick,
    /// Everything (the worker pool).
    Full,
}

/// What a quick attempt at a request came to.
#[derive(Debug)]
pub enum Quick {
    /// The answer (or an error answer), made on the connection's own thread.
    Answered(Response),
    /// The request needs work beyond the quick budget: run [`App::handle`] on a worker.
    NeedsWorker,
}

impl From<render::Rendered> for Answer {
    fn from(r: render::Rendered) -> Answer {
        Answer {
            body: Bytes::from(r.bytes),
            mime: r.mime,
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
    /// The work the handler may do (front ends ask [`Budget::Full`]; the dispatcher tries
    /// [`Budget::Quick`] first).
    pub budget: Budget,
    /// The address the request came from (the TCP peer for HTTP, REMOTE_ADDR for
    /// FastCGI), for TRUSTED_PROXIES.
    pub peer: Option<std::net::IpAddr>,
    /// The body of a POST to an access service (a login form); empty otherwise.
    pub body: Bytes,
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
            budget: Budget::Full,
            peer: None,
            body: Bytes::new(),
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
    pub(super) fn new(status: u16, mime: &str, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            headers: vec![("content-type", mime.to_string())],
            body: body.into(),
        }
    }

    /// The answer to an error: its status, a one-line text body, and Allow (405) or
    /// Retry-After (503) where the status calls for one.
    pub(crate) fn from_error(e: &Error) -> Response {
        let reason = one_line(&e.to_string()).into_owned();
        let mut r = Response::new(e.status(), "text/plain; charset=utf-8", reason);
        match e.status() {
            401 => {
                if let Some(c) = e.challenge() {
                    r.headers.push(("www-authenticate", c.into()));
                }
                if let Some(link) = e.probe_link() {
                    r.headers.push(("link", link));
                }
            }
            405 => r.headers.push(("allow", "GET, HEAD, POST, OPTIONS".into())),
            503 => {
                let after = e.retry_after().unwrap_or(1);
                r.headers.push(("retry-after", after.to_string()));
            }
            _ => {}
        }
        r
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Loads WATERMARK; a file that cannot be read is logged and skipped, as the original does.
fn load_watermark(w: &WatermarkSettings) -> Option<Arc<Watermark>> {
    match Watermark::load(&w.path, w.probability, w.opacity) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            tracing::error!("WATERMARK {} not used: {e}", w.path.display());
            None
        }
    }
}

/// The registry of images under `root` and in the object stores, with its caches.
fn open_registry(
    root: Option<&Path>,
    images: &ImageSettings,
    decoded_mb: f64,
    tier: Option<Arc<SharedTier>>,
) -> Result<Registry> {
    let bounds = (images.open_images, images.flat_bytes);
    let registry = Registry::new(root, &images.suffix, &images.pattern, bounds)?
        .with_tile_cache(TileCache::new(decoded_mb))
        .with_pyramids(images.pyramids.as_ref().map(Pyramids::open).transpose()?)
        .with_associated(&images.associated);
    #[cfg(feature = "object-storage")]
    let registry = registry.with_objects(crate::storage::objects::ObjectStores::new(
        &images.object_rules,
        images.object_cache_mb,
        images.object_block_kb,
    )?);
    Ok(registry.with_tier(tier, images.revalidate))
}

/// The application: what the handler answers with, the image registry, the answer cache
/// and the render settings.
pub struct App {
    web: WebSettings,
    registry: Registry,
    cache: AnswerCache,
    output: render::Settings,
    /// A fingerprint of the encoder settings, part of every cache key: processes with other
    /// settings sharing one memcached never serve each other's answers.
    settings_tag: String,
    /// AUTH_POLICY with its sessions (None: every image open).
    access: Option<Access>,
}

impl App {
    /// Builds the application serving images under `root` (None when every id is an
    /// object, FILESYSTEM_PREFIX being a URL).
    pub fn new(settings: Settings, root: Option<&Path>) -> Result<App> {
        crate::telemetry::init();
        let Settings {
            images,
            caches,
            mut output,
            watermark,
            web,
            access,
        } = settings;
        let tier = match &caches.tier {
            Some(t) => Some(Arc::new(SharedTier::new(t, caches.tier_expiry)?)),
            None => None,
        };
        let registry = open_registry(root, &images, caches.decoded_mb, tier.clone())?;
        output.watermark = watermark.as_ref().and_then(load_watermark);
        let settings_tag = format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(format!("{output:?}").as_bytes())
        );
        Ok(App {
            settings_tag,
            cache: AnswerCache::new(caches.answers_mb).with_tier(tier.clone()),
            registry,
            output,
            access: access.map(|p| {
                let sessions = tier.clone().map(|t| t as Arc<dyn SessionStore>);
                Access::shared(p, web.proxies.clone(), sessions)
            }),
            web,
        })
    }

    /// Drops the answer cache (RAM) and the open images, as the original does on SIGHUP.
    pub(crate) fn drop_caches(&self) {
        self.cache.clear();
        self.registry.clear();
    }

    /// The answer cache (for tests and metrics).
    pub fn cache(&self) -> &AnswerCache {
        &self.cache
    }

    /// Handles one request with the whole budget (a worker's). Never panics on bad input:
    /// every failure is an error response.
    pub fn handle(&self, req: &Request) -> Response {
        let routed = match req.method {
            Method::Options => Ok(self.preflight(req)),
            Method::Other => Err(Error::MethodNotAllowed("method not allowed".into())),
            _ => self.route(req).map_err(Halt::into_error),
        };
        self.finish(req, routed)
    }

    /// Tries a request whose budget is [`Budget::Quick`] (the dispatcher sets it): its
    /// answer, or word that it needs the worker pool.
    pub fn handle_quick(&self, req: &Request) -> Quick {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Quick::NeedsWorker;
        }
        debug_assert_eq!(req.budget, Budget::Quick);
        match self.route(req) {
            Err(Halt::NeedsWorker) => Quick::NeedsWorker,
            routed => Quick::Answered(self.finish(req, routed.map_err(Halt::into_error))),
        }
    }

    /// The response of a routed request: errors logged and turned into their status, CORS.
    fn finish(&self, req: &Request, routed: Result<Response>) -> Response {
        let mut resp = routed.unwrap_or_else(|e| {
            let reason = e.to_string();
            let (path, reason) = (one_line(&req.path), one_line(&reason));
            if e.status() >= 500 {
                tracing::warn!(%path, status = e.status(), "{reason}");
            } else {
                tracing::info!(%path, status = e.status(), "{reason}");
            }
            Response::from_error(&e)
        });
        if let Some(origin) = &self.web.cors {
            resp.headers
                .push(("access-control-allow-origin", origin.clone()));
        }
        resp
    }

    /// Opens image `id` (the view at `angles` of a sequence) with what the caller may see
    /// of it, the access policy asked first (a caller who may see nothing never reaches a
    /// file); within [`Budget::Quick`] only an image already open and unchanged.
    pub(super) fn open_view(
        &self,
        req: &Request,
        id: &str,
        angles: Option<(i32, i32)>,
    ) -> Flow<Granted> {
        let (grant, guarded) = self.guard(req, id)?;
        let opened = self
            .registry
            .open_view_within(id, angles, req.budget == Budget::Quick)?;
        Ok(Granted {
            opened,
            grant,
            guarded,
        })
    }

    /// [`App::open_view`] of a plain image.
    pub(super) fn open(&self, req: &Request, id: &str) -> Flow<Granted> {
        self.open_view(req, id, None)
    }

    /// The answer to OPTIONS: Allow, and with CORS (or for an auth probe, which IIIF
    /// clients on any site call with their access token) the CORS preflight headers.
    fn preflight(&self, req: &Request) -> Response {
        let mut r = Response::new(204, "text/plain", Bytes::new());
        r.headers.push(("allow", "GET, HEAD, POST, OPTIONS".into()));
        let probe = self.access.is_some() && req.path.contains("/_auth/probe/");
        if probe && self.web.cors.is_none() {
            r.headers.push(("access-control-allow-origin", "*".into()));
        }
        if self.web.cors.is_some() || probe {
            r.headers.push((
                "access-control-allow-methods",
                "GET, HEAD, POST, OPTIONS".into(),
            ));
            let auth = if self.access.is_some() {
                ", Authorization"
            } else {
                ""
            };
            r.headers.push((
                "access-control-allow-headers",
                format!("Accept, Content-Type, X-Requested-With, If-Modified-Since{auth}"),
            ));
            r.headers.push(("access-control-max-age", "86400".into()));
        }
        r
    }

    /// The URI map entry a path falls under, with the rest of the path after its prefix.
    fn mapped<'a>(&self, req: &'a Request) -> Option<(&UriMap, &'a str)> {
        self.web.maps.iter().find_map(|map| {
            let rest = if map.prefix.is_empty() {
                Some(req.path.trim_start_matches('/'))
            } else {
                req.path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_prefix(map.prefix.as_str()))
                    .and_then(|p| p.strip_prefix('/'))
            };
            rest.map(|r| (map, r))
        })
    }

    /// The endpoint `/health`, `/ready` or `/metrics` the request is for, when enabled.
    fn admin_path<'a>(&self, req: &'a Request) -> Option<&'a str> {
        let path = req.path.as_str();
        let health = self.web.health && (path == "/health" || path == "/ready");
        let metrics = self.web.metrics && path == "/metrics";
        (req.query.is_empty() && (health || metrics)).then_some(path)
    }

    /// The protocol a request speaks, as the request metrics label it.
    pub(crate) fn protocol_of(&self, req: &Request) -> &'static str {
        if self.admin_path(req).is_some() || req.path.starts_with("/admin/") {
            return "admin";
        }
        match self.mapped(req).map(|(m, _)| m.protocol) {
            Some(Protocol::Iiif) => "iiif",
            Some(Protocol::DeepZoom) => "deepzoom",
            Some(Protocol::Zoomify) => "zoomify",
            Some(Protocol::Iip) => "iip",
            None if !req.query.is_empty() => "iip",
            None => "other",
        }
    }

    fn route(&self, req: &Request) -> Flow<Response> {
        let quick = req.budget == Budget::Quick;
        if let Some(id) = req.path.strip_prefix("/admin/purge/") {
            return if quick {
                Err(Halt::NeedsWorker)
            } else {
                Ok(self.purge_request(req, id)?)
            };
        }
        // Probes are answered on the connection's own thread, quick or not: a load
        // balancer must see a busy instance as alive, never queued behind image work.
        match self.admin_path(req) {
            Some("/health") => return Ok(Response::new(200, "text/plain", "ok\n")),
            Some("/ready") => return Ok(self.ready()?),
            Some(_) => {
                crate::telemetry::open_images(self.registry.open_count());
                let text = crate::telemetry::render();
                return Ok(Response::new(200, "text/plain; version=0.0.4", text));
            }
            None => {}
        }
        if let Some(page) = self.viewer_route(req) {
            return page;
        }
        if let Some((map, rest)) = self.mapped(req) {
            let base = base_path(&map.prefix);
            return match map.protocol {
                Protocol::Iiif => self.iiif(req, rest, &base),
                Protocol::DeepZoom => self.deepzoom(req, rest),
                Protocol::Zoomify => self.zoomify(req, rest),
                Protocol::Iip => self.iip(req),
            };
        }
        if !req.query.is_empty() {
            return self.iip(req);
        }
        Err(Error::NotFound(format!("no resource at {}", truncate(&req.path))).into())
    }

    /// Answers a view of an open image as an image response (access, cache, 304,
    /// headers); the answers of images under a non-open rule are private to the caller.
    pub(super) fn view_response(
        &self,
        req: &Request,
        opened: &Granted,
        view: &View,
    ) -> Flow<Response> {
        opened.grant.permits(opened.source.info(), view)?;
        if let Some(r) = self.not_modified(req, opened, Audience::of(opened, false)) {
            return Ok(r);
        }
        let answer = self.render(req, opened, view)?;
        Ok(self.granted_response(answer.mime, answer.body, opened))
    }

    /// A 200 answer from an image the access policy was asked about: as
    /// [`App::ok_response`], private to the caller when a non-open rule covers the image.
    pub(super) fn granted_response(
        &self,
        mime: &str,
        body: impl Into<Bytes>,
        opened: &Granted,
    ) -> Response {
        let mut r = Response::new(200, mime, body);
        self.cache_headers(&mut r, Some(opened), Audience::of(opened, false));
        r
    }

    /// A 200 answer (an image, an XML descriptor, OBJ lines) with Cache-Control and, when
    /// it comes from an image, that image's Last-Modified.
    pub(super) fn ok_response(
        &self,
        mime: &str,
        body: impl Into<Bytes>,
        opened: Option<&Opened>,
    ) -> Response {
        let mut r = Response::new(200, mime, body);
        self.cache_headers(&mut r, opened, Audience::Anyone);
        r
    }

    /// Last-Modified (the image's) and the caching headers of `audience` for an answer;
    /// `no-store` alone for an answer from the stored level of an image whose pyramid is
    /// being built, which its pyramid will answer otherwise.
    pub(super) fn cache_headers(
        &self,
        r: &mut Response,
        opened: Option<&Opened>,
        audience: Audience,
    ) {
        if opened.is_some_and(|o| o.building.is_some()) {
            r.headers.push(("cache-control", "no-store".into()));
            return;
        }
        if let Some(o) = opened {
            r.headers
                .push(("last-modified", httpdate::fmt_http_date(o.mtime)));
        }
        r.headers.extend(self.caching(audience));
    }

    /// Cache-Control (and Vary) for answers seen by `audience`: CACHE_CONTROL for anyone;
    /// `private` for answers that depend on the caller's headers; for images under an
    /// access rule also `no-cache` (the browser asks again, so a logout or an expired
    /// session takes effect at once) and `Vary` on the credentials that decide.
    pub(super) fn caching(&self, audience: Audience) -> Vec<(&'static str, String)> {
        match audience {
            Audience::Anyone => vec![("cache-control", self.web.cache_control.clone())],
            Audience::Caller => vec![("cache-control", "private".into())],
            Audience::Guarded => vec![
                ("cache-control", "private, no-cache".into()),
                ("vary", "Cookie, Authorization".into()),
            ],
        }
    }

    /// A 304 when the client's copy (If-Modified-Since) is as new as the image's file
    /// ([`unchanged_since`]), with the caching headers a 200 for `audience` would carry.
    pub(super) fn not_modified(
        &self,
        req: &Request,
        opened: &Opened,
        audience: Audience,
    ) -> Option<Response> {
        if !unchanged_since(req, opened)? {
            return None;
        }
        let mut r = Response::new(304, "text/plain", Bytes::new());
        r.headers.retain(|(n, _)| *n != "content-type");
        r.headers
            .push(("last-modified", httpdate::fmt_http_date(opened.mtime)));
        r.headers.extend(self.caching(audience));
        Some(r)
    }

    /// MAX_CVT and ALLOW_UPSCALING, as every protocol applies them.
    pub(super) fn size_limits(&self) -> SizeLimits {
        self.web.limits
    }

    /// Renders a view of an open image, through the answer cache; within
    /// [`Budget::Quick`] only a cached answer or a stored tile sent as it is. A view beyond
    /// the caller's grant is refused before any cache is asked, so no cache ever answers
    /// it.
    pub(crate) fn render(&self, req: &Request, opened: &Granted, view: &View) -> Flow<Answer> {
        opened.grant.permits(opened.source.info(), view)?;
        let key = format!(
            "{}|{}|{}",
            opened.version,
            view.cache_key(),
            self.settings_tag
        );
        let src = opened.source.as_ref();
        if req.budget == Budget::Quick {
            if let Some(hit) = self.cache.get_ram(&key) {
                return Ok(hit);
            }
            if src.is_remote() {
                return Err(Halt::NeedsWorker);
            }
            let stored = render::stored_tile(src, view, &self.output)?;
            let answer = Answer::from(stored.ok_or(Halt::NeedsWorker)?);
            self.cache.insert_ram(key, answer.clone());
            return Ok(answer);
        }
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        if let Some(build) = &opened.building {
            if render::needs_smaller_level(src.info(), view) {
                return Err(build.preparing().into());
            }
        }
        let answer = Answer::from(render::render(src, view, &self.output)?);
        self.cache.insert(key, answer.clone());
        Ok(answer)
    }

    /// `POST /admin/purge/<id>` with `Authorization: Bearer <ADMIN_TOKEN>`: purges one
    /// image across the shared tier (404 while ADMIN_TOKEN is unset).
    fn purge_request(&self, req: &Request, raw_id: &str) -> Result<Response> {
        let Some(token) = self.web.admin_token.as_deref() else {
            return Err(Error::NotFound(format!(
                "no resource at {}",
                truncate(&req.path)
            )));
        };
        if req.method != Method::Post {
            return Err(Error::MethodNotAllowed("purge with POST".into()));
        }
        let given = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
            tracing::warn!(path = %req.path, "purge refused: bad or missing admin token");
            return Err(Error::Unauthorized(
                "a valid admin token is required".into(),
            ));
        }
        let id = percent_encoding::percent_decode_str(raw_id)
            .decode_utf8()
            .map_err(|_| Error::bad("image identifier is not UTF-8"))?;
        let generation = self.purge(&id)?;
        tracing::info!(id = %truncate(&id), ?generation, "purged");
        let body = serde_json::json!({
            "purged": id,
            "generation": generation,
            "tier": self.cache.tier_name(),
        });
        Ok(Response::new(200, "application/json", body.to_string()))
    }

    /// Purges image `id`: a new generation in the shared tier (every instance stops using
    /// its stored answers once it next checks, within REVALIDATE_INTERVAL), and its
    /// answers and open state dropped here at once. The new generation, None without a
    /// tier.
    pub fn purge(&self, id: &str) -> Result<Option<u64>> {
        let (generation, versions) = self.registry.purge(id)?;
        for version in versions {
            self.cache.forget(&version);
        }
        Ok(generation)
    }

    /// `/ready`: 200 when the image directory can be listed, else 503 with the reason.
    fn ready(&self) -> Result<Response> {
        match self.registry.root().map(std::fs::read_dir) {
            None | Some(Ok(_)) => Ok(Response::new(200, "text/plain", "ready\n")),
            Some(Err(_)) => Err(Error::Overloaded(
                "the image directory cannot be read".into(),
            )),
        }
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

/// Compares a secret in time independent of where the first difference is.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `s` with its control characters (newlines, ESC) written as `\u{..}` escapes: error
/// bodies and log lines are one line, and no request can forge a log line or drive a
/// terminal.
pub(crate) fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    s.chars()
        .map(|c| match c.is_control() {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// The URL path of a URI map's prefix: `/prefix`, empty for the root.
pub(super) fn base_path(prefix: &str) -> String {
    format!("/{prefix}").trim_end_matches('/').to_string()
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Whether the client's copy (If-Modified-Since) is as new as the image's file, for GET
/// and HEAD only; None (ask no more) when there is no date, or If-None-Match is present (it
/// takes precedence, RFC 9110 13.2.2, and we send no entity tags for it to match), or the
/// image's pyramid is being built (its answers change when it is there).
fn unchanged_since(req: &Request, opened: &Opened) -> Option<bool> {
    if !matches!(req.method, Method::Get | Method::Head)
        || req.header("if-none-match").is_some()
        || opened.building.is_some()
    {
        return None;
    }
    let since = httpdate::parse_http_date(req.header("if-modified-since")?).ok()?;
    let file_secs = opened.mtime.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let since_secs = since.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(file_secs <= since_secs)
}

/// Who an answer is for, as caches must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    /// The same for every caller: CACHE_CONTROL.
    Anyone,
    /// Depends on the caller's headers (a negotiated IIIF version): private.
    Caller,
    /// An image under an access rule: private to the caller, revalidated each time.
    Guarded,
}

impl Audience {
    /// The audience of an answer from `opened`; `per_caller` when it also depends on the
    /// caller's headers.
    pub(super) fn of(opened: &Granted, per_caller: bool) -> Audience {
        match (opened.guarded, per_caller) {
            (true, _) => Audience::Guarded,
            (false, true) => Audience::Caller,
            (false, false) => Audience::Anyone,
        }
    }
}
