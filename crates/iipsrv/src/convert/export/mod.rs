//! `iipsrv convert INPUT --static LAYOUT OUT_DIR`: a static level-0 tile tree (IIIF 3.0 or
//! 2.1, DeepZoom, Zoomify) that any web server or CDN serves as plain files.
//!
//! The tree is our own server's answers, saved: the input's pyramid (the input itself when
//! it has levels, TIFF or JPEG2000; else a pyramidal TIFF that [`super::convert`] builds in
//! the staging directory) is served in-process by the server's handler
//! ([`iipsrv_server::handler::App`]), every URL a client of the layout asks ([`tree`],
//! [`iiif`]) is requested from it, in parallel, and each answer is written as it comes under
//! the same relative path. The tree is built in `OUT_DIR/.partial-NAME` and renamed into
//! place when complete; on any failure nothing is left. The server's settings from the
//! environment (JPEG_QUALITY, WATERMARK, MAX_CVT, ...) shape the tiles as they would its
//! answers. This is not a server: nothing is answered beyond the files written.

mod iiif;
mod tree;

use super::error::{ConvertError, InputError, OutputStep};
use super::{Args, Progress, StaticLayout};
use iipsrv_formats::open::{Kind, Outline};
use iipsrv_server::handler::{App, Request};
use rayon::prelude::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tree::Site;

/// The protocols the in-process server answers, at the prefixes [`Site`] asks.
const URI_MAP: &str = "iiif=>IIIF,deepzoom=>DeepZoom,zoomify=>Zoomify";

/// The file name of the intermediate pyramid of a flat input, in the staging directory.
const PYRAMID: &str = "pyramid.tif";

/// Writes the static tree of `args.input` in `layout` into the directory `args.output`.
pub(crate) fn export(args: &Args, layout: StaticLayout) -> Result<(), ConvertError> {
    let name = tree_name(&args.input)?;
    let id = public_id(args, &name)?;
    let outline = iipsrv_formats::open::outline(&args.input)
        .map_err(|e| ConvertError::open(&args.input, e))?;
    spares_input(args, &tree::entries(layout, &name))?;
    std::fs::create_dir_all(&args.output)
        .map_err(|e| ConvertError::output(&args.output, OutputStep::Create, e))?;
    let staging = Staging::new(&args.output, &name)?;
    let source = Source::of(args, &outline, &staging.dir)?;
    let app = server(&source.root)?;
    let site = Site::new(layout, &source.id, &name, &staging.dir);
    let rests = match layout {
        StaticLayout::Iiif3 | StaticLayout::Iiif2 => iiif_descriptor(&app, &site, &id)?,
        StaticLayout::Deepzoom | StaticLayout::Zoomify => tile_descriptor(&app, &site, &source)?,
    };
    render(&app, &site, &rests, &args.output)?;
    drop(app);
    staging.commit(&site.entries())
}

/// The tree's NAME: the input's file name without its extension.
fn tree_name(input: &Path) -> Result<String, ConvertError> {
    let name = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s != "." && s != "..");
    name.ok_or_else(|| ConvertError::Name {
        path: input.to_owned(),
    })
}

/// Refuses a tree whose `entries` in OUT_DIR would replace the input (or a directory
/// holding it): an input without extension exported into its own directory.
fn spares_input(args: &Args, entries: &[String]) -> Result<(), ConvertError> {
    let Ok(input) = std::fs::canonicalize(&args.input) else {
        return Ok(());
    };
    let replaced = entries
        .iter()
        .filter_map(|e| std::fs::canonicalize(args.output.join(e)).ok())
        .any(|target| input.starts_with(target));
    if replaced {
        return Err(ConvertError::Replaces {
            path: args.input.clone(),
        });
    }
    Ok(())
}

/// The image's IIIF id in the tree: `--id` and the percent-encoded NAME.
fn public_id(args: &Args, name: &str) -> Result<String, ConvertError> {
    let base = args.id.trim_end_matches('/');
    let scheme = base.split_once("://").map(|(s, rest)| (s, rest.is_empty()));
    if !matches!(scheme, Some(("http" | "https", false))) {
        return Err(ConvertError::Id {
            id: args.id.clone(),
        });
    }
    Ok(format!("{base}/{}", tree::encode(name)))
}

/// The staging directory `OUT_DIR/.partial-NAME`: removed with what it holds unless
/// committed.
struct Staging {
    /// The staging directory.
    dir: PathBuf,
    /// OUT_DIR.
    out: PathBuf,
    /// Renamed into place: nothing left to remove.
    committed: bool,
}

impl Staging {
    /// A fresh staging directory for `name` in `out` (a leftover of an interrupted export
    /// is removed first).
    fn new(out: &Path, name: &str) -> Result<Staging, ConvertError> {
        let dir = out.join(format!(".partial-{name}"));
        remove(&dir)?;
        std::fs::create_dir(&dir).map_err(|e| ConvertError::output(&dir, OutputStep::Create, e))?;
        Ok(Staging {
            dir,
            out: out.to_owned(),
            committed: false,
        })
    }

    /// Moves `entries` of the staging directory into OUT_DIR, replacing earlier ones of the
    /// same names, and removes the staging directory with the rest (the intermediate pyramid).
    fn commit(mut self, entries: &[String]) -> Result<(), ConvertError> {
        for entry in entries {
            let to = self.out.join(entry);
            remove(&to)?;
            std::fs::rename(self.dir.join(entry), &to)
                .map_err(|e| ConvertError::output(&to, OutputStep::Rename, e))?;
        }
        self.committed = true;
        remove(&self.dir)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Removes the file or directory at `path`, if there is one.
fn remove(path: &Path) -> Result<(), ConvertError> {
    let removed = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    removed.map_err(|e| ConvertError::output(path, OutputStep::Remove, e))
}

/// The pyramid the in-process server serves: a directory and the file's name in it.
struct Source {
    /// The directory (the server's image root).
    root: PathBuf,
    /// The file's name in it (the server's id of the image).
    id: String,
}

impl Source {
    /// The input itself when it is a pyramid (a TIFF with levels, or JPEG2000); else a
    /// pyramidal TIFF converted from it into `staging` with the options of `args`.
    fn of(args: &Args, outline: &Outline, staging: &Path) -> Result<Source, ConvertError> {
        match outline.kind {
            Kind::Jpeg2000 => Source::input(args),
            Kind::Tiff if outline.levels > 1 => Source::input(args),
            Kind::Tiff | Kind::Flat => Source::converted(args, staging),
        }
    }

    /// The input, in its own directory.
    fn input(args: &Args) -> Result<Source, ConvertError> {
        let input = std::fs::canonicalize(&args.input).map_err(|error| {
            let op = "cannot open";
            ConvertError::open(&args.input, InputError::Io { op, error })
        })?;
        match (input.parent(), input.file_name()) {
            (Some(root), Some(file)) => Ok(Source {
                root: root.to_owned(),
                id: file.to_string_lossy().into_owned(),
            }),
            _ => Err(ConvertError::Name {
                path: args.input.clone(),
            }),
        }
    }

    /// A pyramidal TIFF converted from the input into `staging` as `args` say.
    fn converted(args: &Args, staging: &Path) -> Result<Source, ConvertError> {
        let mut tiff = args.clone();
        tiff.static_layout = None;
        tiff.output = staging.join(PYRAMID);
        super::convert(&tiff)?;
        Ok(Source {
            root: staging.to_owned(),
            id: PYRAMID.into(),
        })
    }
}

/// The server's settings besides the image directory: the layouts' URL prefixes, no answer
/// cache (each answer is asked once), no shared tier or object store, and environment
/// settings that would change ids or URLs (FILESYSTEM_SUFFIX, IIIF_DELIMITER, BASE_URL)
/// neutralised.
const SETTINGS: [&str; 17] = [
    "iipsrv",
    "--uri-map",
    URI_MAP,
    "--filesystem-suffix",
    "",
    "--iiif-delimiter",
    "",
    "--base-url",
    "",
    "--max-image-cache-size",
    "0",
    "--memcached-servers",
    "",
    "--redis-url",
    "",
    "--object-map",
    "",
];

/// The server's handler over the images in `root`, with [`SETTINGS`].
fn server(root: &Path) -> Result<App, ConvertError> {
    let prefix = [OsString::from("--filesystem-prefix"), root.into()];
    let args = SETTINGS.into_iter().map(OsString::from).chain(prefix);
    let failed = |what: String| ConvertError::Server { what };
    let config = iipsrv_server::settings::Config::from_args(args)
        .map_err(|e| failed(e.to_string().lines().next().unwrap_or_default().to_string()))?;
    let settings = config.settings().map_err(|e| failed(e.to_string()))?;
    App::new(settings, Some(root)).map_err(|e| failed(e.to_string()))
}

/// The server's answer to `url`: its body when 200, else [`ConvertError::Export`] with the
/// status and the server's one-line reason.
fn fetch(app: &App, url: &str) -> Result<bytes::Bytes, ConvertError> {
    let answer = app.handle(&Request::get(url));
    if answer.status == 200 {
        return Ok(answer.body);
    }
    let reason = String::from_utf8_lossy(&answer.body);
    let reason: String = reason
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(ConvertError::Export {
        url: url.into(),
        what: format!("answered {}: {reason}", answer.status),
    })
}

/// Writes `body` to `path`, making its directory first.
fn write(path: &Path, body: &[u8]) -> Result<(), ConvertError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ConvertError::output(dir, OutputStep::Create, e))?;
    }
    std::fs::write(path, body).map_err(|e| ConvertError::output(path, OutputStep::Write, e))
}

/// Saves the DeepZoom or Zoomify descriptor and returns the rests of the tiles, from the
/// stored levels of the pyramid.
fn tile_descriptor(app: &App, site: &Site, source: &Source) -> Result<Vec<String>, ConvertError> {
    let rest = site.descriptor();
    write(&site.file(rest), &fetch(app, &site.url(rest))?)?;
    let path = source.root.join(&source.id);
    let opened =
        iipsrv_formats::open::open_source(&path).map_err(|e| ConvertError::open(&path, e))?;
    Ok(match site.layout {
        StaticLayout::Deepzoom => tree::deepzoom(opened.info()),
        _ => tree::zoomify(opened.info()),
    })
}

/// Saves the level-0 info.json made from the server's, with `id`, and returns the rests of
/// the images it promises.
fn iiif_descriptor(app: &App, site: &Site, id: &str) -> Result<Vec<String>, ConvertError> {
    let url = site.url(site.descriptor());
    let unusable = |what: &str| ConvertError::Export {
        url: url.clone(),
        what: what.into(),
    };
    let doc: serde_json::Value = serde_json::from_slice(&fetch(app, &url)?)
        .map_err(|_| unusable("the answer is not JSON"))?;
    let v3 = site.layout == StaticLayout::Iiif3;
    let grid = iiif::Grid::of(&doc, v3).ok_or_else(|| unusable("no width, height or tiles"))?;
    let old_id = doc
        .get(if v3 { "id" } else { "@id" })
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let level0 = grid.level0(&doc, id, old_id);
    let body = serde_json::to_vec_pretty(&level0).map_err(|_| unusable("cannot be written"))?;
    write(&site.file(site.descriptor()), &body)?;
    Ok(grid.rests())
}

/// Asks the server every rest's URL, in parallel, and writes each answer as it comes; stops
/// at the first failure. A progress bar (labelled `out`) on a terminal.
fn render(app: &App, site: &Site, rests: &[String], out: &Path) -> Result<(), ConvertError> {
    let progress = Progress::bar(rests.len() as u64, out, "files");
    rests.par_iter().try_for_each(|rest| {
        write(&site.file(rest), &fetch(app, &site.url(rest))?)?;
        progress.advance(1);
        Ok::<(), ConvertError>(())
    })?;
    progress.done();
    Ok(())
}
