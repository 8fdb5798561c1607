//! The pages for people: `/` lists the served images (thumbnail, size, format) and
//! `/viewer/<id>` opens one in OpenSeadragon, over IIIF by default or DeepZoom, Zoomify or
//! IIP (`?protocol=`); `/viewer?manifest=<URL>` opens the first image of a IIIF
//! Presentation manifest (read by the page's script). OpenSeadragon's script and button
//! images are compiled into the binary (build.rs, from the npm package), so the pages need
//! no CDN. VIEWER=0 turns all of it off.

use super::Budget;
use super::{html_escape, App, Audience, Request, Response, ID_ENCODE};
use crate::error::{Error, Flow, Halt, Result};
use crate::settings::Protocol;
use iipsrv_formats::open::{kind_of_file, outline, Kind};
use std::path::{Path, PathBuf};

/// OpenSeadragon files (URL name under `/viewer/assets/`, contents), from build.rs.
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/viewer_assets.rs"));

/// The viewer page; `{{TITLE}}` and `{{CONFIG}}` are filled in per image.
const VIEWER_HTML: &str = include_str!("viewer.html");

/// Where the viewer pages live.
const VIEWER_PREFIX: &str = "/viewer/";

impl App {
    /// The page a path names when the viewer is on: `/`, `/viewer/<id>`, the manifest
    /// viewer `/viewer` (or `/viewer/`) or an asset. The index and the viewer pages read
    /// files, so they are made on a worker, never on the quick path; an asset is compiled
    /// in and answered anywhere, and so is the manifest viewer, which reads no file.
    pub(super) fn viewer_route(&self, req: &Request) -> Option<Flow<Response>> {
        if !self.web.viewer {
            return None;
        }
        let quick = req.budget == Budget::Quick;
        if req.path == "/" || req.path.is_empty() {
            // `/?FIF=...` is IIP, as at any other path.
            return req.query.is_empty().then(|| match quick {
                true => Err(Halt::NeedsWorker),
                false => Ok(self.index(req)),
            });
        }
        if let Some(root) = manifest_root(&req.path) {
            return Some(Ok(manifest_page(root)));
        }
        let rest = req.path.strip_prefix(VIEWER_PREFIX)?;
        Some(match rest.strip_prefix("assets/") {
            Some(name) => asset(name).map_err(Halt::from),
            None if quick => Err(Halt::NeedsWorker),
            None => self.viewer_page(req, rest).map_err(Halt::from),
        })
    }

    /// The URL prefix the first URI map of `protocol` gives (None when it is not mapped).
    pub(super) fn prefix_of(&self, protocol: Protocol) -> Option<&str> {
        self.web
            .maps
            .iter()
            .find(|m| m.protocol == protocol)
            .map(|m| m.prefix.as_str())
    }

    /// A protocol's URL for `rest`, relative to a viewer page `root` below the root (None
    /// when the protocol is not mapped).
    fn relative(&self, root: &str, protocol: Protocol, rest: &str) -> Option<String> {
        self.prefix_of(protocol)
            .map(|p| format!("{root}{}", slash(p, rest)))
    }

    /// The index page: every image in the image directory (first 500 by name), with a
    /// thumbnail, its size and format, and links to the viewer and to info.json. Sizes come
    /// from the files' headers: listing opens no image (a flat one would be decoded).
    /// Images the caller may not see at all are left out, unread.
    fn index(&self, req: &Request) -> Response {
        let iiif = self.prefix_of(Protocol::Iiif);
        let mut rows = String::new();
        let listed = self.registry.root().map(list_images).unwrap_or_default();
        for (name, path) in listed {
            if self.guard(req, &name).is_err() {
                continue;
            }
            rows.push_str(&index_row(&name, &path, iiif));
        }
        if rows.is_empty() {
            rows.push_str("<tr><td colspan=\"4\">No images in the image directory.</td></tr>");
        }
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>iipsrv</title>{STYLE}</head>\
             <body><h1>iipsrv</h1><table><tr><th></th><th>image</th><th>size</th><th>format</th></tr>\
             {rows}</table></body></html>"
        );
        self.page_for_caller(Response::new(200, "text/html; charset=utf-8", body))
    }

    /// A page whose content depends on the caller under an access policy (the index lists
    /// what the caller may see; a viewer page exists for those who may see its image):
    /// private to the caller then.
    fn page_for_caller(&self, mut r: Response) -> Response {
        if self.access.is_some() {
            r.headers.extend(self.caching(Audience::Guarded));
        }
        r
    }

    /// The viewer page of one image: 404 when the image does not open; while its pyramid
    /// is being built, a page that says so and reloads itself.
    fn viewer_page(&self, req: &Request, raw_id: &str) -> Result<Response> {
        let id = iipsrv_core::protocol::decode(raw_id, "viewer")?;
        self.guard(req, &id)?;
        let opened = match self.registry.open(&id) {
            Ok(opened) => match &opened.building {
                Some(build) => return Ok(preparing_page(&build.preparing())),
                None => opened,
            },
            Err(e @ Error::Preparing { .. }) => return Ok(preparing_page(&e)),
            Err(e) => return Err(e),
        };
        let info = opened.source.info();
        let enc = percent_encoding::utf8_percent_encode(&id, ID_ENCODE).to_string();
        // Relative URLs, so that the page works behind a proxy that serves iipsrv under a
        // path of its own: up from `/viewer/<raw id>` to the root.
        let root = "../".repeat(1 + raw_id.matches('/').count());
        let level = info.levels.first();
        let mut levels: Vec<[u32; 2]> = info.levels.iter().map(|l| [l.width, l.height]).collect();
        levels.reverse();
        let config = serde_json::json!({
            "id": id,
            "width": info.width,
            "height": info.height,
            "tileSize": level.map_or(256, |l| l.tile_width.min(l.tile_height).clamp(16, 1024)),
            "levels": levels,
            "urls": {
                "iiif": self.relative(&root, Protocol::Iiif, &format!("{enc}/info.json")),
                "deepzoom": self.relative(&root, Protocol::DeepZoom, &format!("{enc}.dzi")),
                "zoomify": self.relative(&root, Protocol::Zoomify, &format!("{enc}/")),
                "iip": format!("{root}?FIF={enc}"),
                "index": root,
            },
        });
        let page = viewer_html(&id, &root, config);
        Ok(self.page_for_caller(page))
    }
}

/// The way up to the root from the manifest viewer's path, `/viewer` or `/viewer/` (None for
/// any other path).
fn manifest_root(path: &str) -> Option<&'static str> {
    match path {
        "/viewer" => Some("./"),
        "/viewer/" => Some("../"),
        _ => None,
    }
}

/// The manifest viewer: the viewer page without an image; its script reads `manifest=` from
/// the page's own address (never echoed here), fetches the manifest and opens the image
/// service of its first canvas, following the Authorization Flow as for `/viewer/<id>`.
fn manifest_page(root: &str) -> Response {
    let config = serde_json::json!({
        "manifest": true,
        "urls": { "index": root },
    });
    viewer_html("IIIF manifest", root, config)
}

/// The viewer page titled `title`, `root` the way up from it to the server's root, with
/// `config` (what to show) and the settings every viewer page has (where its assets are).
fn viewer_html(title: &str, root: &str, mut config: serde_json::Value) -> Response {
    config["assets"] = format!("{root}viewer/assets/").into();
    config["haveScript"] = (!ASSETS.is_empty()).into();
    // `<` is escaped so that no id can close the script element.
    let config = config.to_string().replace('<', "\\u003c");
    let body = VIEWER_HTML
        .replace("{{TITLE}}", &html_escape(title))
        .replace("{{CONFIG}}", &config);
    Response::new(200, "text/html; charset=utf-8", body)
}

/// The 503 page of an image being prepared: the reason, and a reload after Retry-After.
fn preparing_page(e: &Error) -> Response {
    let after = e.retry_after().unwrap_or(5);
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" \
         content=\"{after}\"><title>Preparing</title></head><body><p id=\"message\">{}. This \
         page reloads by itself.</p></body></html>",
        html_escape(&e.to_string())
    );
    let mut r = Response::new(503, "text/html; charset=utf-8", body);
    r.headers.push(("retry-after", after.to_string()));
    r
}

/// `<prefix>/<rest>` relative to the root, or `<rest>` for an empty prefix.
fn slash(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// A compiled-in OpenSeadragon file.
fn asset(name: &str) -> Result<Response> {
    let (_, bytes) = ASSETS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Error::NotFound(format!("no viewer file {}", super::truncate(name))))?;
    let mime = if name.ends_with(".js") {
        "text/javascript; charset=utf-8"
    } else {
        "image/png"
    };
    let mut r = Response::new(200, mime, *bytes);
    r.headers
        .push(("cache-control", "public, max-age=86400".into()));
    Ok(r)
}

/// One row of the index: thumbnail (IIIF when mapped), name linked to the viewer, size
/// in pixels and levels, format.
fn index_row(name: &str, path: &Path, iiif: Option<&str>) -> String {
    let id = percent_encoding::utf8_percent_encode(name, ID_ENCODE).to_string();
    let (size, format) = match outline(path) {
        Ok(o) => (
            format!("{} × {}, {} levels", o.width, o.height, o.levels),
            match o.kind {
                Kind::Tiff => "TIFF",
                Kind::Jpeg2000 => "JPEG2000",
                Kind::Flat => "JPEG/PNG (no pyramid)",
            },
        ),
        Err(e) => (format!("unreadable: {}", html_escape(&e.to_string())), ""),
    };
    let thumb = iiif.map_or(String::new(), |p| {
        format!(
            "<img src=\"{}\" alt=\"\">",
            slash(p, &format!("{id}/full/!160,160/0/default.jpg"))
        )
    });
    format!(
        "<tr><td><a href=\"viewer/{id}\">{thumb}</a></td>\
         <td><a href=\"viewer/{id}\">{n}</a></td><td>{size}</td><td>{format}</td></tr>\n",
        n = html_escape(name),
    )
}

/// The image files directly in `dir` (a canonical path), sorted by name, at most 500:
/// regular files only, symbolic links only to regular files inside `dir`, recognised by
/// their first bytes (opened without blocking, so a FIFO is skipped, not waited on).
fn list_images(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut images: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().into_string().ok()?, regular_within(&e, dir)?)))
        .filter(|(_, path)| kind_of_file(path).is_some())
        .collect();
    images.sort_by(|a, b| a.0.cmp(&b.0));
    images.truncate(500);
    images
}

/// The path of a directory entry that is a regular file, or a link to one inside `root`.
fn regular_within(entry: &std::fs::DirEntry, root: &Path) -> Option<PathBuf> {
    let kind = entry.file_type().ok()?;
    if kind.is_file() {
        return Some(entry.path());
    }
    let target = kind
        .is_symlink()
        .then(|| entry.path().canonicalize().ok())??;
    let inside = target.starts_with(root) && target.metadata().ok()?.is_file();
    inside.then_some(target)
}

/// The index page's style sheet.
const STYLE: &str = "<style>body{font-family:sans-serif;margin:1.5em}\
    table{border-collapse:collapse}td,th{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}\
    img{max-width:160px;max-height:160px;display:block}</style>";
