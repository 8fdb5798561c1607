//! The access policy at the handler: [`App::guard`] asks [`Access::decide`] before an
//! image is opened (every protocol opens through it), [`Grant::permits`] refuses a view
//! larger than a degraded caller may have before any cache is asked, and the IIIF
//! Authorization Flow 2.0 services (<https://iiif.io/api/auth/2.0/>) under the IIIF
//! prefix: `_auth/probe/<id>` (AuthProbeService2), `_auth/access/<rule>`
//! (AuthAccessService2: login or terms page, kiosk, external), `_auth/token/<rule>`
//! (AuthAccessTokenService2, answered by `postMessage`), `_auth/logout/<rule>`
//! (AuthLogoutService2), and the degraded image service `_degraded/<id>`.

use super::{html_escape, App, Method, Request, Response};
use crate::access::policy::{Grantor, Level, Rule};
use crate::access::sessions::Pool;
use crate::access::{Access, Caller, Decision, COOKIE_PREFIX};
use crate::error::{Error, Result};
use crate::settings::Protocol;
use crate::storage::registry::Opened;
use iipsrv_core::info::{ImageInfo, Level as PyramidLevel};
use iipsrv_core::view::{Rect, View};
use serde_json::{json, Value};

/// The JSON-LD context of the Authorization Flow API 2.0.
pub(super) const AUTH_CONTEXT: &str = "http://iiif.io/api/auth/2/context.json";

/// The path segment, after the IIIF prefix, of the auth services.
pub(super) const AUTH_SEGMENT: &str = "_auth/";

/// The path segment, after the IIIF prefix, of the degraded image services.
pub(super) const DEGRADED_SEGMENT: &str = "_degraded/";

/// What a caller may see of an open image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Everything.
    Full,
    /// At most this long side (the full image at that scale); more needs access (401).
    Limited(u32),
    /// The degraded image service: at most this long side, for everyone (400 beyond).
    Service(u32),
}

impl Grant {
    /// Whether `view` of an image of `info` is within the grant: the image at the view's
    /// scale has a long side of at most the limit.
    pub(crate) fn permits(self, info: &ImageInfo, view: &View) -> Result<()> {
        let max = match self {
            Grant::Full => return Ok(()),
            Grant::Limited(n) | Grant::Service(n) => u64::from(n),
        };
        let r = view.region;
        let scaled = |full: u32, out: u32, region: u32| {
            u64::from(full) * u64::from(out) / u64::from(region.max(1))
        };
        let long = scaled(info.width, view.width, r.w).max(scaled(info.height, view.height, r.h));
        self.within(long <= max)
    }

    /// Whether reading samples of pyramid level `level` (0 = full size) is within the grant.
    pub(crate) fn permits_level(self, info: &ImageInfo, level: usize) -> Result<()> {
        let max = match self {
            Grant::Full => return Ok(()),
            Grant::Limited(n) | Grant::Service(n) => n,
        };
        let fits = info
            .levels
            .get(level)
            .is_some_and(|l| l.width.max(l.height) <= max);
        self.within(fits)
    }

    fn within(self, fits: bool) -> Result<()> {
        match (fits, self) {
            (true, _) => Ok(()),
            (false, Grant::Service(n)) => Err(Error::bad(format!(
                "this degraded image service answers at most {n} pixels on the long side"
            ))),
            (false, _) => Err(Error::denied()),
        }
    }
}

/// The image a degraded image service presents: the full image scaled to fit `max` on its
/// long side, with its own pyramid (halvings down to one tile). Clients that read it ask
/// for nothing larger; [`full_region`] maps its regions back to the image.
pub(crate) fn degraded_info(info: &ImageInfo, max: u32) -> ImageInfo {
    let long = info.width.max(info.height).max(1);
    let scale = f64::from(max.min(long)) / f64::from(long);
    let size = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    let (width, height) = (size(info.width), size(info.height));
    let (tw, th) = info
        .levels
        .first()
        .map_or((256, 256), |l| (l.tile_width, l.tile_height));
    let mut levels = Vec::new();
    let mut factor = 1u32;
    loop {
        let (w, h) = (width.div_ceil(factor), height.div_ceil(factor));
        levels.push(PyramidLevel {
            width: w,
            height: h,
            tile_width: tw,
            tile_height: th,
            scale_x: f64::from(factor),
            scale_y: f64::from(factor),
        });
        if (w <= tw && h <= th) || factor >= 1 << 16 {
            break;
        }
        factor *= 2;
    }
    ImageInfo {
        width,
        height,
        levels,
        ..info.clone()
    }
}

/// A region of a degraded service's image (`shown`) as a region of the full image, rounded
/// outwards.
pub(crate) fn full_region(r: Rect, shown: &ImageInfo, full: &ImageInfo) -> Rect {
    let map = |v: u32, to: u32, from: u32, up: bool| {
        let (v, to, from) = (u64::from(v), u64::from(to), u64::from(from.max(1)));
        let x = if up {
            (v * to).div_ceil(from)
        } else {
            v * to / from
        };
        x.min(to) as u32
    };
    let (x0, y0) = (
        map(r.x, full.width, shown.width, false),
        map(r.y, full.height, shown.height, false),
    );
    let x1 = map(r.x + r.w, full.width, shown.width, true);
    let y1 = map(r.y + r.h, full.height, shown.height, true);
    Rect {
        x: x0,
        y: y0,
        w: (x1 - x0).max(1),
        h: (y1 - y0).max(1),
    }
}

/// An open image with what the caller may see of it.
#[derive(Clone)]
pub(crate) struct Granted {
    /// The image.
    pub opened: Opened,
    /// What the caller may see.
    pub grant: Grant,
    /// Whether a non-open rule covers it (its answers are then private to the caller).
    pub guarded: bool,
}

impl std::ops::Deref for Granted {
    type Target = Opened;
    fn deref(&self) -> &Opened {
        &self.opened
    }
}

/// Whether `s` is a web origin: `scheme://host[:port]`, nothing after.
fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

/// A query parameter, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
}

/// `r` with headers that forbid showing it in a frame: the access service's pages are
/// opened as windows, and a framed login or terms page could be clicked through unseen.
fn no_framing(mut r: Response) -> Response {
    r.headers
        .push(("content-security-policy", "frame-ancestors 'none'".into()));
    r.headers.push(("x-frame-options", "DENY".into()));
    r
}

/// A language map of one English string, as IIIF writes texts.
fn en(s: &str) -> Value {
    json!({ "en": [s] })
}

/// A small HTML page; `script` runs in it (already safe to embed).
fn page(status: u16, title: &str, body: &str, script: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body>{body}<script>{script}</script></body></html>",
        html_escape(title)
    );
    let mut r = Response::new(status, "text/html; charset=utf-8", html);
    r.headers.push(("cache-control", "no-store".into()));
    r
}

impl App {
    /// The caller of a request, as the access decision sees it.
    fn caller<'a>(req: &'a Request) -> Caller<'a> {
        Caller {
            peer: req.peer,
            path: &req.path,
            query: &req.query,
            headers: &req.headers,
        }
    }

    /// What `req` may see of image `id`: [`Grant::Full`] without a policy (one `Option`
    /// test), else the policy's decision; a caller who may see nothing gets the 401 that a
    /// missing image under the same rule gets, before any file is touched.
    pub(crate) fn guard(&self, req: &Request, id: &str) -> Result<(Grant, bool)> {
        let Some(access) = &self.access else {
            return Ok((Grant::Full, false));
        };
        let guarded = access.guarded_rule(id).is_some();
        match access.decide(&Self::caller(req), id) {
            Decision::Full => Ok((Grant::Full, guarded)),
            Decision::Limited(n, _) => Ok((Grant::Limited(n), true)),
            Decision::Denied(rule) => Err(Error::denied_with_probe(self.probe_url(req, id, rule))),
        }
    }

    /// Where a client denied image `id` under `rule` learns how to get access: the
    /// image's probe service (None when the rule has no access service, or IIIF is not
    /// mapped).
    fn probe_url(&self, req: &Request, id: &str, rule: &Rule) -> Option<String> {
        rule.grantor.as_ref()?;
        let base = super::base_path(self.prefix_of(Protocol::Iiif)?);
        let root = self.base_uri(req, &base);
        let raw_id = percent_encoding::utf8_percent_encode(id, super::ID_ENCODE);
        Some(format!("{root}/{AUTH_SEGMENT}probe/{raw_id}"))
    }

    /// The long side of the degraded image service of `id` (404 when its rule has none).
    pub(super) fn degraded_size(&self, id: &str) -> Result<u32> {
        match self.access.as_ref().and_then(|a| a.guarded_rule(id)) {
            Some(Rule {
                level: Level::Degraded(n),
                ..
            }) => Ok(*n),
            _ => Err(Error::NotFound(
                "no degraded image service for this image".into(),
            )),
        }
    }

    /// The auth services of image `id` for its info.json (None when its rule is open):
    /// the probe service with the rule's access service and its token and logout services.
    pub(super) fn auth_service(&self, id: &str, root: &str, raw_id: &str) -> Option<Value> {
        let rule = self.access.as_ref()?.guarded_rule(id)?;
        let grantor = rule.grantor.as_ref()?;
        let auth = format!("{root}/{AUTH_SEGMENT}");
        let mut access = json!({
            "id": format!("{auth}access/{}", rule.name),
            "type": "AuthAccessService2",
            "profile": grantor.profile(),
            "label": en(&rule.texts.label),
        });
        let texts = [
            ("heading", &rule.texts.heading),
            ("note", &rule.texts.note),
            ("confirmLabel", &rule.texts.confirm_label),
        ];
        for (name, text) in texts {
            if let Some(t) = text {
                access[name] = en(t);
            }
        }
        access["service"] = json!([
            {"id": format!("{auth}token/{}", rule.name), "type": "AuthAccessTokenService2"},
            {
                "id": format!("{auth}logout/{}", rule.name),
                "type": "AuthLogoutService2",
                "label": en("Log out"),
            },
        ]);
        Some(json!({
            "id": format!("{auth}probe/{raw_id}"),
            "type": "AuthProbeService2",
            "service": [access],
        }))
    }

    /// Answers a request for an auth service: `rest` is the path after `_auth/`, `root`
    /// the IIIF prefix as the public sees it.
    pub(super) fn auth_request(
        &self,
        access: &Access,
        req: &Request,
        rest: &str,
        root: &str,
    ) -> Result<Response> {
        let (service, arg) = rest.split_once('/').unwrap_or((rest, ""));
        if service == "probe" {
            return self.probe(access, req, arg, root);
        }
        let rule = access
            .policy()
            .rule_named(arg)
            .filter(|r| r.grantor.is_some())
            .ok_or_else(|| Error::NotFound("no such access service".into()))?;
        match service {
            "access" if self.cross_site_post(req) => Ok(no_framing(page(
                403,
                &rule.texts.label,
                "<p>This form must be sent from its own page.</p>",
                "",
            ))),
            "access" => Ok(no_framing(self.access_service(access, req, rule))),
            "token" => Ok(token_service(access, req, rule)),
            "logout" => Ok(self.logout(access, req, rule)),
            _ => Err(Error::NotFound("no such auth service".into())),
        }
    }

    /// AuthProbeService2: the caller's status for image `raw_id` (its cookie or access
    /// token), with the degraded service as `substitute` and the rule's texts when denied.
    /// Always HTTP 200; opens no file.
    fn probe(&self, access: &Access, req: &Request, raw_id: &str, root: &str) -> Result<Response> {
        let id = iipsrv_core::protocol::decode(raw_id, "probe")?;
        if access.guarded_rule(&id).is_none() {
            return Err(Error::NotFound("no probe service for this image".into()));
        }
        let mut result = json!({
            "@context": AUTH_CONTEXT,
            "id": format!("{root}/{AUTH_SEGMENT}probe/{raw_id}"),
            "type": "AuthProbeResult2",
        });
        let rule = match access.decide_probe(&Self::caller(req), &id) {
            Decision::Full => None,
            Decision::Limited(_, rule) => {
                result["substitute"] = json!([{
                    "id": format!("{root}/{DEGRADED_SEGMENT}{raw_id}"),
                    "type": "ImageService3",
                    "profile": "level2",
                }]);
                Some(rule)
            }
            Decision::Denied(rule) => Some(rule),
        };
        result["status"] = json!(if rule.is_some() { 401 } else { 200 });
        if let Some(rule) = rule {
            let heading = rule
                .texts
                .heading
                .as_deref()
                .unwrap_or("Access is restricted");
            result["heading"] = en(heading);
            if let Some(note) = &rule.texts.note {
                result["note"] = en(note);
            }
        }
        let mut r = Response::new(200, "application/json", result.to_string());
        r.headers.push(("cache-control", "no-store".into()));
        if self.web.cors.is_none() {
            r.headers.push(("access-control-allow-origin", "*".into()));
        }
        Ok(r)
    }

    /// AuthAccessService2: for kiosk and external rules a session when the address or
    /// identity qualifies; for active rules the terms or login page, and on its POST the
    /// session. The page closes itself once the session is set.
    fn access_service(&self, access: &Access, req: &Request, rule: &Rule) -> Response {
        let caller = Self::caller(req);
        let allowed = match &rule.grantor {
            Some(Grantor::Kiosk(nets)) => nets.trusts(access.client(&caller)),
            Some(Grantor::External(h)) => access.identity(&caller, h).is_some(),
            Some(Grantor::Terms) => req.method == Method::Post,
            Some(Grantor::Login(users)) => {
                req.method == Method::Post && {
                    let form = String::from_utf8_lossy(&req.body);
                    let user = param(&form, "user").unwrap_or_default();
                    let pass = param(&form, "password").unwrap_or_default();
                    users.check(&user, &pass)
                }
            }
            None => false,
        };
        if allowed {
            return self.start_session(access, req, rule);
        }
        match &rule.grantor {
            Some(Grantor::Login(_) | Grantor::Terms) => {
                login_page(rule, req.method == Method::Post)
            }
            _ => page(
                401,
                &rule.texts.label,
                "<p>Access cannot be granted from here.</p>",
                "window.close();",
            ),
        }
    }

    /// Whether `req` is a form post from another site (its Origin is not this server's):
    /// a page elsewhere must not log a visitor in, or accept terms in their name.
    fn cross_site_post(&self, req: &Request) -> bool {
        let Some(origin) = req.header("origin").filter(|_| req.method == Method::Post) else {
            return false;
        };
        let own = self.base_uri(req, "");
        let rest = own.strip_prefix(origin);
        !rest.is_some_and(|r| r.is_empty() || r.starts_with('/'))
    }

    /// Opens a session for `rule` and answers the page that sets its cookie and closes.
    fn start_session(&self, access: &Access, req: &Request, rule: &Rule) -> Response {
        let ttl = access.policy().session_ttl;
        let client = access.client(&Self::caller(req));
        let pool = Pool::of(rule);
        let Some(value) = access.sessions().open(&rule.name, ttl, pool, client) else {
            return Response::from_error(&Error::Internal("no session could be made".into()));
        };
        tracing::info!(rule = %rule.name, "access granted: session opened");
        let mut r = page(
            200,
            &rule.texts.label,
            "<p>Access granted.</p>",
            "window.close();",
        );
        self.set_cookies(&mut r, req, rule, &value, ttl.as_secs());
        r
    }

    /// The session cookie of `rule` for every image path (the URI map's prefixes, under a
    /// trusted proxy's X-Forwarded-Prefix): Secure, HttpOnly, SameSite=None, as IIIF
    /// clients on other sites need. `max_age` 0 clears it.
    fn set_cookies(&self, r: &mut Response, req: &Request, rule: &Rule, value: &str, max_age: u64) {
        let prefix = self.public_prefix(req);
        for map in &self.web.maps {
            let path = format!("{prefix}/{}", map.prefix);
            let path = path.trim_end_matches('/');
            let path = if path.is_empty() { "/" } else { path };
            r.headers.push((
                "set-cookie",
                format!(
                    "{COOKIE_PREFIX}{}={value}; Path={path}; Max-Age={max_age}; Secure; HttpOnly; SameSite=None",
                    rule.name
                ),
            ));
        }
    }

    /// AuthLogoutService2: ends the caller's session of `rule` and clears its cookie; 503
    /// when the shared tier could not be told (the session lives on in other instances).
    fn logout(&self, access: &Access, req: &Request, rule: &Rule) -> Response {
        let ended = Self::caller(req)
            .cookie(&format!("{COOKIE_PREFIX}{}", rule.name))
            .is_none_or(|c| access.sessions().close(c));
        let mut r = match ended {
            true => page(
                200,
                "Logged out",
                "<p>You are logged out.</p>",
                "window.close();",
            ),
            false => page(
                503,
                "Not logged out",
                "<p>The logout could not reach every server; please try again.</p>",
                "",
            ),
        };
        // the cookie stays until the logout is complete, so that it can be tried again
        if ended {
            self.set_cookies(&mut r, req, rule, "", 0);
        }
        r
    }
}

/// The page of an active rule: its heading and note, and a form (user and password for a
/// login, one button for terms) that posts back to the access service.
fn login_page(rule: &Rule, failed: bool) -> Response {
    let t = &rule.texts;
    let mut body = format!(
        "<h1>{}</h1>",
        html_escape(t.heading.as_deref().unwrap_or(&t.label))
    );
    if let Some(note) = &t.note {
        body.push_str(&format!("<p>{}</p>", html_escape(note)));
    }
    if failed {
        body.push_str("<p id=\"failed\">The name or password is wrong.</p>");
    }
    body.push_str("<form method=\"post\">");
    if matches!(rule.grantor, Some(Grantor::Login(_))) {
        body.push_str(
            "<label>Name <input name=\"user\" autocomplete=\"username\"></label> \
             <label>Password <input name=\"password\" type=\"password\" \
             autocomplete=\"current-password\"></label> ",
        );
    }
    let confirm = t.confirm_label.as_deref().unwrap_or(&t.label);
    body.push_str(&format!(
        "<button type=\"submit\">{}</button></form>",
        html_escape(confirm)
    ));
    page(if failed { 401 } else { 200 }, &t.label, &body, "")
}

/// AuthAccessTokenService2: a page that posts the session's access token
/// (AuthAccessToken2), or an AuthAccessTokenError2, to the window that opened it, at the
/// origin it named; an origin that is malformed or not allowed gets nothing posted to it.
fn token_service(access: &Access, req: &Request, rule: &Rule) -> Response {
    let message_id = param(&req.query, "messageId");
    let origin = param(&req.query, "origin").filter(|o| is_origin(o));
    let allowed = origin.as_ref().is_some_and(|o| {
        access
            .policy()
            .origins
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == o))
    });
    let session = App::caller(req)
        .cookie(&format!("{COOKIE_PREFIX}{}", rule.name))
        .and_then(|c| access.sessions().token_of(c, &rule.name));
    let error = |profile: &str, heading: &str| {
        json!({
            "@context": AUTH_CONTEXT,
            "type": "AuthAccessTokenError2",
            "profile": profile,
            "heading": en(heading),
            "messageId": message_id,
        })
    };
    let message = match (&message_id, allowed, session) {
        (None, _, _) => error("invalidRequest", "The request has no messageId"),
        (_, false, _) => error("invalidOrigin", "This origin may not have tokens"),
        (Some(id), true, Some((token, left))) => json!({
            "@context": AUTH_CONTEXT,
            "type": "AuthAccessToken2",
            "accessToken": token,
            "expiresIn": left,
            "messageId": id,
        }),
        (_, true, None) => error("missingAspect", "Not logged in"),
    };
    // `<` is escaped so that nothing can close the script element.
    let script = match origin {
        Some(o) => format!(
            "window.parent.postMessage({}, {});",
            message.to_string().replace('<', "\\u003c"),
            Value::String(o).to_string().replace('<', "\\u003c")
        ),
        None => String::new(),
    };
    page(200, "Access token", "", &script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_port() {
        assert!(is_origin("https://viewer.example.org"));
        assert!(is_origin("http://localhost:8080"));
        assert!(!is_origin("https://viewer.example.org/path"));
        assert!(!is_origin("javascript://x"));
        assert!(!is_origin("https://a\"b"));
        assert!(!is_origin("*"));
    }

    #[test]
    fn a_degraded_service_is_the_image_scaled_to_its_size() {
        let level = |w, h, s: f64| PyramidLevel {
            width: w,
            height: h,
            tile_width: 256,
            tile_height: 256,
            scale_x: s,
            scale_y: s,
        };
        let full = ImageInfo {
            width: 4096,
            height: 3072,
            levels: vec![level(4096, 3072, 1.0), level(2048, 1536, 2.0)],
            channels: 3,
            bits_per_sample: 8,
            stored_bits: 8,
            sample_format: iipsrv_core::info::SampleFormat::Unsigned,
            colour: iipsrv_core::info::ColourSpace::Rgb,
            min_max: vec![(0.0, 255.0); 3],
            icc: None,
            metadata: Default::default(),
        };
        let shown = degraded_info(&full, 400);
        assert_eq!((shown.width, shown.height), (400, 300));
        let sizes: Vec<(u32, u32)> = shown.levels.iter().map(|l| (l.width, l.height)).collect();
        assert_eq!(sizes, [(400, 300), (200, 150)]);
        let all = Rect {
            x: 0,
            y: 0,
            w: 400,
            h: 300,
        };
        assert_eq!(
            full_region(all, &shown, &full),
            Rect {
                x: 0,
                y: 0,
                w: 4096,
                h: 3072
            }
        );
        let tile = Rect {
            x: 256,
            y: 0,
            w: 144,
            h: 256,
        };
        let r = full_region(tile, &shown, &full);
        assert_eq!((r.x, r.x + r.w, r.y, r.h), (2621, 4096, 0, 2622));
        // a smaller image is shown as it is
        assert_eq!(degraded_info(&full, 10_000).width, 4096);
    }

    #[test]
    fn params_are_decoded() {
        assert_eq!(
            param("a=1&origin=https%3A%2F%2Fx.org", "origin").as_deref(),
            Some("https://x.org")
        );
        assert_eq!(param("user=a+b", "user").as_deref(), Some("a b"));
        assert_eq!(param("a=1", "b"), None);
    }
}
