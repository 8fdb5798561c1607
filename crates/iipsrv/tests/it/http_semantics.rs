//! HTTP meaning of the one request handler, tested without sockets: statuses, headers,
//! info.json variants, path safety, conditional requests, caching and passthrough.

use crate::harness::{app, call as get, tempdir, text};
use iipsrv_server::handler::{Budget, Method, Quick, Request, Response};

fn fixture() -> tempfile::TempDir {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    dir
}

#[test]
fn info_json_versions_and_ids() {
    let dir = fixture();
    let a = app(dir.path(), &[]);
    let r = get(&a, "/iiif/a.tif/info.json");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\""),
        "JSON-LD by default, as the original"
    );
    let plain =
        a.handle(&Request::get("/iiif/a.tif/info.json").with_header("Accept", "application/json"));
    assert_eq!(plain.header("content-type"), Some("application/json"));
    let j: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(j["id"], "http://localhost/iiif/a.tif");
    assert_eq!(j["tiles"][0]["scaleFactors"], serde_json::json!([1, 2, 4]));

    let ld = a.handle(
        &Request::get("/iiif/a.tif/info.json").with_header("Accept", "application/ld+json"),
    );
    assert_eq!(
        ld.header("content-type"),
        Some("application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"")
    );
    let v2 = a.handle(&Request::get("/iiif/a.tif/info.json").with_header(
        "Accept",
        "application/ld+json;profile=\"http://iiif.io/api/image/2/context.json\"",
    ));
    let j: serde_json::Value = serde_json::from_slice(&v2.body).expect("json");
    assert_eq!(j["@id"], "http://localhost/iiif/a.tif");
    assert_eq!(v2.header("cache-control"), Some("private"));

    let j: serde_json::Value =
        serde_json::from_slice(&get(&a, "/iiif/2/a.tif/info.json").body).expect("json");
    assert_eq!(j["@id"], "http://localhost/iiif/2/a.tif");
    let forced = a.handle(
        &Request::get("/iiif/a.tif/info.json").with_header("X-IIIF-ID", "https://x.org/i/a"),
    );
    let j: serde_json::Value = serde_json::from_slice(&forced.body).expect("json");
    assert_eq!(j["id"], "https://x.org/i/a");

    let b = app(
        dir.path(),
        &[
            "--base-url",
            "https://pub.example/iiif/",
            "--iiif-version",
            "2",
        ],
    );
    let j: serde_json::Value =
        serde_json::from_slice(&get(&b, "/iiif/a.tif/info.json").body).expect("json");
    assert_eq!(j["@id"], "https://pub.example/iiif/a.tif");
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let dir = fixture();
    let id_of = |a: &iipsrv_server::handler::App, peer: &str| {
        let mut req = Request::get("/iiif/a.tif/info.json")
            .with_header("X-Forwarded-Proto", "https")
            .with_header("X-Forwarded-Host", "images.example.org")
            .with_header("X-Forwarded-Prefix", "/public/");
        req.peer = peer.parse().ok();
        let j: serde_json::Value = serde_json::from_slice(&a.handle(&req).body).expect("json");
        j["id"].as_str().expect("id").to_string()
    };
    let trusting = app(dir.path(), &["--trusted-proxies", "10.0.0.0/8, 127.0.0.1"]);
    assert_eq!(
        id_of(&trusting, "10.1.2.3"),
        "https://images.example.org/public/iiif/a.tif"
    );
    assert_eq!(
        id_of(&trusting, "192.168.1.1"),
        "http://localhost/iiif/a.tif",
        "a peer that is not trusted sets nothing"
    );
    let plain = app(dir.path(), &[]);
    assert_eq!(id_of(&plain, "127.0.0.1"), "http://localhost/iiif/a.tif");
    let based = app(
        dir.path(),
        &[
            "--trusted-proxies",
            "*",
            "--base-url",
            "https://pub.example/iiif",
        ],
    );
    assert_eq!(id_of(&based, "127.0.0.1"), "https://pub.example/iiif/a.tif");
    assert!(
        iipsrv_server::settings::Config::from_args(["iipsrv", "--trusted-proxies", "x"])
            .expect("parses")
            .settings()
            .is_err()
    );
}

#[test]
fn base_uri_redirects_to_info() {
    let dir = fixture();
    let r = get(&app(dir.path(), &[]), "/iiif/a.tif");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("http://localhost/iiif/a.tif/info.json")
    );
}

/// AVIF through every protocol: image/avif in a build with the feature `avif`, else a clear
/// 501, never a JPEG in its place.
#[test]
fn avif_is_answered_or_refused_as_not_built() {
    let dir = fixture();
    let a = app(dir.path(), &[]);
    for path in [
        "/iiif/a.tif/0,0,256,256/256,/0/default.avif",
        "/iiif/a.tif/full/100,/0/default.avif",
        "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&WID=100&CVT=avif",
        "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&ATL=0,0",
        "/deepzoom/a.tif_files/0/0_0.avif",
    ] {
        let r = get(&a, path);
        if cfg!(feature = "avif") {
            assert_eq!(r.status, 200, "{path}: {}", text(&r));
            assert_eq!(r.header("content-type"), Some("image/avif"), "{path}");
            assert_eq!(&r.body[4..12], b"ftypavif", "{path}");
        } else {
            assert_eq!(r.status, 501, "{path}");
            assert!(
                text(&r).contains("not built with AVIF"),
                "{path}: {}",
                text(&r)
            );
        }
    }
    let info = get(&a, "/iiif/a.tif/info.json");
    let listed = text(&info).contains("\"avif\"");
    assert_eq!(listed, cfg!(feature = "avif"));
}

#[test]
fn bad_requests_get_the_right_status_and_one_line() {
    let dir = fixture();
    let a = app(dir.path(), &["--max-cvt", "1000"]);
    let cases = [
        ("/iiif/a.tif/abc/max/0/default.jpg", 400),
        ("/iiif/a.tif/full/max/0/fancy.jpg", 400),
        ("/iiif/a.tif/full/max/0/default.gif", 501),
        ("/iiif/a.tif/full/max/0/default.xyz", 400),
        ("/iiif/a.tif/full/0,/0/default.jpg", 400),
        ("/iiif/a.tif/full/700,/0/default.jpg", 400),
        ("/iiif/a.tif/full/1200,/0/default.jpg", 400),
        ("/iiif/a.tif/full/^1200,/0/default.jpg", 400),
        ("/iiif/a.tif/full/max/45x/default.jpg", 400),
        ("/iiif/a.tif/700,0,10,10/max/0/default.jpg", 400),
        ("/iiif/a.tif/full/max/0/default", 400),
        ("/iiif/missing.tif/info.json", 404),
        ("/iiif/missing.tif/full/max/0/default.jpg", 404),
        ("/nothing/here", 404),
        ("/iiif/", 400),
    ];
    for (path, status) in cases {
        let r = get(&a, path);
        assert_eq!(r.status, status, "{path}: {}", text(&r));
        let body = text(&r);
        assert!(
            !body.is_empty() && !body.contains('\n'),
            "{path}: one-line reason, got {body:?}"
        );
        assert!(
            !body.contains(&dir.path().to_string_lossy().to_string()),
            "{path} leaks the path"
        );
    }
    assert_eq!(get(&a, "/iiif/a.tif/full/^1000,/0/default.jpg").status, 200);
    let unlimited = app(dir.path(), &["--max-cvt", "-1"]);
    assert_eq!(
        get(&unlimited, "/iiif/a.tif/full/^60000,60000/0/default.jpg").status,
        400
    );
    assert_eq!(
        get(&unlimited, "/x?FIF=a.tif&WID=90000&CVT=jpeg").status,
        400
    );
    assert_eq!(
        get(&unlimited, "/iiif/a.tif/full/^2000,/0/default.jpg").status,
        200
    );
    let strict = app(dir.path(), &["--allow-upscaling", "0"]);
    assert_eq!(
        get(&strict, "/iiif/a.tif/full/^700,/0/default.jpg").status,
        400
    );
    assert_eq!(
        get(&strict, "/iiif/a.tif/full/max/0/default.jpg").status,
        200
    );
}

#[test]
fn traversal_and_hostile_ids_are_refused() {
    let dir = tempdir();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).expect("mkdir");
    iipsrv_server::demo::write_demo(&images.join("a.tif"), 300, 200).expect("image");
    iipsrv_server::demo::write_demo(&dir.path().join("secret.tif"), 300, 200).expect("outside");
    std::os::unix::fs::symlink(dir.path().join("secret.tif"), images.join("link.tif"))
        .expect("symlink");
    std::os::unix::fs::symlink(images.join("a.tif"), images.join("inside.tif")).expect("symlink");
    let a = app(&images, &[]);
    let long = "x".repeat(5000);
    let cases = [
        ("/iiif/../secret.tif/info.json", 403),
        ("/iiif/%2e%2e/secret.tif/info.json", 403),
        ("/iiif/%2E%2E%2Fsecret.tif/info.json", 403),
        ("/iiif/..%5Csecret.tif/info.json", 403),
        ("/iiif/sub/..%2F..%2Fsecret.tif/info.json", 403),
        ("/iiif/%252e%252e%252fsecret.tif/info.json", 404),
        ("/iiif/link.tif/info.json", 403),
        ("/iiif/a.tif%00.jpg/info.json", 400),
        ("/iiif//etc/passwd/info.json", 404),
        ("/iiif/%2Fetc%2Fpasswd/info.json", 404),
        (&format!("/iiif/{long}/info.json"), 400),
    ];
    for (path, status) in cases {
        let r = get(&a, path);
        assert_eq!(r.status, status, "{path}: {}", text(&r));
        assert!(
            !text(&r).contains(&dir.path().to_string_lossy().to_string()),
            "{path} leaks the path"
        );
    }
    assert_eq!(
        get(&a, "/iiif/inside.tif/info.json").status,
        200,
        "symlinks inside the root work"
    );
    assert_eq!(
        get(&a, "/iiif/a.tif/info.json").status,
        200,
        "still serving"
    );
}

#[test]
fn corrupt_and_foreign_files_are_errors_not_crashes() {
    let dir = fixture();
    let good = std::fs::read(dir.path().join("a.tif")).expect("read");
    std::fs::write(dir.path().join("truncated.tif"), &good[..good.len() / 3]).expect("write");
    std::fs::write(dir.path().join("header-only.tif"), &good[..8]).expect("write");
    std::fs::write(dir.path().join("text.tif"), b"hello, not an image").expect("write");
    std::fs::write(dir.path().join("empty.tif"), b"").expect("write");
    let a = app(dir.path(), &[]);
    for id in ["truncated.tif", "header-only.tif", "text.tif", "empty.tif"] {
        let info = get(&a, &format!("/iiif/{id}/info.json"));
        let img = get(&a, &format!("/iiif/{id}/full/max/0/default.jpg"));
        for r in [&info, &img] {
            assert!(
                r.status == 500 || r.status == 501 || r.status == 200,
                "{id}: {}",
                r.status
            );
            if r.status != 200 {
                assert!(!text(r).contains('\n'), "{id}: one line");
            }
        }
        assert!(
            img.status >= 500,
            "{id}: an image cannot be rendered, got {}",
            img.status
        );
    }
    assert_eq!(get(&a, "/iiif/a.tif/full/100,/0/default.jpg").status, 200);
}

#[test]
fn conditional_requests_cors_and_methods() {
    let dir = fixture();
    let a = app(dir.path(), &["--cors", "*"]);
    let r = get(&a, "/iiif/a.tif/full/100,/0/default.jpg");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("cache-control"), Some("max-age=86400"));
    let lm = r
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    let again = a.handle(
        &Request::get("/iiif/a.tif/full/100,/0/default.jpg").with_header("If-Modified-Since", &lm),
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let old = a.handle(
        &Request::get("/iiif/a.tif/info.json")
            .with_header("If-Modified-Since", "Mon, 01 Jan 1990 00:00:00 GMT"),
    );
    assert_eq!(old.status, 200);
    let mut opt = Request::get("/iiif/a.tif/info.json");
    opt.method = Method::Options;
    let o = a.handle(&opt);
    assert_eq!(o.status, 204);
    assert!(o.header("access-control-allow-methods").is_some());
    let mut put = Request::get("/iiif/a.tif/info.json");
    put.method = Method::Other;
    assert_eq!(a.handle(&put).status, 405);
    let link = r.header("link").expect("link header");
    assert!(
        link.contains("rel=\"canonical\"") && link.contains("rel=\"profile\""),
        "{link}"
    );
    let no_cors = app(dir.path(), &[]);
    assert_eq!(
        get(&no_cors, "/iiif/a.tif/info.json").header("access-control-allow-origin"),
        None
    );
}

#[test]
fn equal_views_share_one_cache_entry() {
    let dir = fixture();
    let a = app(dir.path(), &[]);
    assert_eq!(
        get(&a, "/iiif/a.tif/0,0,300,200/150,/0/default.jpg").status,
        200
    );
    assert_eq!(a.cache().len(), 1);
    assert_eq!(
        get(&a, "/iiif/a.tif/pct:0,0,50,50/150,100/0/default.jpg").status,
        200
    );
    assert_eq!(
        get(&a, "/iiif/2/a.tif/0,0,300,200/150,/0/default.jpg").status,
        200
    );
    assert_eq!(a.cache().len(), 1, "same pixels, one entry");
    assert_eq!(
        get(&a, "/iiif/a.tif/0,0,300,200/150,/0/gray.jpg").status,
        200
    );
    assert_eq!(a.cache().len(), 2);
}

#[test]
fn passthrough_sends_the_stored_tile() {
    let dir = fixture();
    let on = app(dir.path(), &[]);
    let off = app(dir.path(), &["--codec-passthrough", "0"]);
    let path = "/iiif/a.tif/256,0,256,256/256,/0/default.jpg";
    let a = get(&on, path);
    let b = get(&off, path);
    assert_eq!((a.status, b.status), (200, 200));
    assert_ne!(a.body, b.body, "re-encoding gives other bytes");
    let (da, db) = (
        crate::harness::decode_image(&a.body),
        crate::harness::decode_image(&b.body),
    );
    assert!(crate::harness::mean_error(&da, &db) < 3.0);
    // the stored tile (quality 90) is bigger than a quality 75 re-encode
    assert!(
        a.body.len() > b.body.len(),
        "{} vs {}",
        a.body.len(),
        b.body.len()
    );
    // an edge tile (partial) cannot pass through but is still right
    let edge = get(&on, "/iiif/a.tif/512,256,88,144/88,/0/default.jpg");
    let img = crate::harness::decode_image(&edge.body);
    assert_eq!((img.width, img.height), (88, 144));
}

/// `/` lists the images (thumbnail, size, format) and links each to `/viewer/<id>`, whose
/// page carries the image's size, levels and the protocol URLs (relative), with
/// OpenSeadragon compiled in; `/viewer?manifest=` is the page without an image; VIEWER=0
/// turns the pages off; `/?FIF=` stays IIP.
#[test]
fn index_and_viewer_pages() {
    let dir = fixture();
    std::fs::write(dir.path().join("notes.txt"), "not an image").expect("write");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    iipsrv_server::demo::write_demo(&dir.path().join("sub/x<y>.tif"), 300, 200).expect("image");
    let a = app(dir.path(), &[]);
    let index = text(&get(&a, "/"));
    assert!(
        index.contains("<img src=\"iiif/a.tif/full/!160,160/0/default.jpg\""),
        "{index}"
    );
    assert!(index.contains("href=\"viewer/a.tif\""));
    assert!(
        index.contains("600 × 400, 3 levels</td><td>TIFF</td>"),
        "{index}"
    );
    assert!(!index.contains("notes.txt"));

    let page = get(&a, "/viewer/a.tif");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let config = viewer_config(&text(&page));
    assert_eq!(
        (config["width"].as_u64(), config["height"].as_u64()),
        (Some(600), Some(400))
    );
    assert_eq!(
        config["levels"],
        serde_json::json!([[150, 100], [300, 200], [600, 400]])
    );
    assert_eq!(config["urls"]["iiif"], "../iiif/a.tif/info.json");
    assert_eq!(config["urls"]["deepzoom"], "../deepzoom/a.tif.dzi");
    assert_eq!(config["urls"]["iip"], "../?FIF=a.tif");
    assert_eq!(config["haveScript"], true, "OpenSeadragon is compiled in");
    for asset in ["openseadragon.min.js", "images/zoomin_rest.png"] {
        let r = get(&a, &format!("/viewer/assets/{asset}"));
        assert_eq!(r.status, 200, "{asset}");
        assert!(r.body.len() > 1000, "{asset}");
    }

    // An id in a subdirectory, with characters that must not break the page.
    let nested = text(&get(&a, "/viewer/sub/x%3Cy%3E.tif"));
    assert!(
        nested.contains("\"iiif\":\"../../iiif/sub%2Fx%3Cy%3E.tif/info.json\""),
        "{nested}"
    );
    assert!(nested.contains("<title>sub/x&lt;y&gt;.tif"), "{nested}");
    assert!(!nested.contains("x<y>"), "no raw < from the id in the page");

    // The manifest viewer: the page without an image, never echoing the manifest's URL
    // (its script reads it from the address).
    for (path, root) in [
        ("/viewer?manifest=%3Cscript%3Ex", "./"),
        ("/viewer/", "../"),
    ] {
        let page = text(&get(&a, path));
        let config = viewer_config(&page);
        assert_eq!(config["manifest"], true, "{path}");
        assert_eq!(config["urls"]["index"], root, "{path}");
        assert!(!page.contains("%3Cscript%3Ex") && !page.contains("<script>x"));
    }

    assert_eq!(get(&a, "/viewer/missing.tif").status, 404);
    assert_eq!(get(&a, "/viewer/assets/nothing.js").status, 404);
    assert_eq!(get(&a, "/viewer/..%2Fetc%2Fpasswd").status, 403);
    let iip = get(&a, "/?FIF=a.tif&OBJ=Max-size");
    assert_eq!(text(&iip), "Max-size:600 400\r\n");

    let off = app(dir.path(), &["--viewer", "0"]);
    for path in [
        "/",
        "/viewer",
        "/viewer/a.tif",
        "/viewer/assets/openseadragon.min.js",
    ] {
        assert_eq!(get(&off, path).status, 404, "{path}");
    }
    assert_eq!(get(&off, "/?FIF=a.tif&OBJ=Max-size").status, 200);
}

/// The JSON configuration block of a viewer page.
fn viewer_config(page: &str) -> serde_json::Value {
    let json = page
        .split("<script id=\"config\" type=\"application/json\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("config block");
    serde_json::from_str(json).expect("config json")
}

#[test]
fn icc_profiles_follow_embed_icc_and_max_icc() {
    use iipsrv_formats::codec::tiff_writer::{self, Compression};
    let dir = tempdir();
    let levels = iipsrv_core::raster::pyramid(iipsrv_server::demo::pattern(600, 400), 256);
    let icc = vec![7u8; 3000];
    let extra = iipsrv_formats::codec::Embedded {
        icc: Some(&icc),
        xmp: None,
    };
    let bytes = tiff_writer::write(&levels, Some(256), Compression::Jpeg(90), extra).expect("tiff");
    std::fs::write(dir.path().join("icc.tif"), bytes).expect("write");
    let has_icc = |r: &Response| r.body.windows(12).any(|w| w == b"ICC_PROFILE\0");
    let tile = "/iiif/icc.tif/0,0,256,256/256,/0/default.jpg";
    let scaled = "/iiif/icc.tif/full/100,/0/default.jpg";
    let on = app(dir.path(), &[]);
    assert!(
        has_icc(&get(&on, tile)),
        "passthrough tile carries the profile"
    );
    assert!(
        has_icc(&get(&on, scaled)),
        "re-encoded answer carries the profile"
    );
    assert!(
        !has_icc(&get(&on, "/iiif/icc.tif/full/100,/0/gray.jpg")),
        "no RGB profile on grey"
    );
    for args in [["--embed-icc", "0"], ["--max-icc", "1000"]] {
        let off = app(dir.path(), &args);
        assert!(!has_icc(&get(&off, tile)), "{args:?}");
        assert!(!has_icc(&get(&off, scaled)), "{args:?}");
    }
}

#[test]
fn health_and_readiness() {
    let dir = tempdir();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).expect("dir");
    let a = crate::harness::app(&images, &[]);
    let health = crate::harness::call(&a, "/health");
    assert_eq!((health.status, &health.body[..]), (200, &b"ok\n"[..]));
    assert_eq!(crate::harness::call(&a, "/ready").status, 200);
    std::fs::remove_dir(&images).expect("remove");
    let gone = crate::harness::call(&a, "/ready");
    assert_eq!(gone.status, 503);
    assert_eq!(crate::harness::call(&a, "/health").status, 200);
    std::fs::create_dir(&images).expect("dir");
    let off = crate::harness::app(&images, &["--health-endpoints", "0"]);
    assert_eq!(crate::harness::call(&off, "/health").status, 404);
}

#[test]
fn a_symlink_repointed_out_of_the_root_is_refused_at_once() {
    let dir = tempdir();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).expect("mkdir");
    iipsrv_server::demo::write_demo(&images.join("a.tif"), 300, 200).expect("image");
    iipsrv_server::demo::write_demo(&dir.path().join("secret.tif"), 300, 200).expect("outside");
    let link = images.join("link.tif");
    std::os::unix::fs::symlink(images.join("a.tif"), &link).expect("symlink");
    let a = app(&images, &[]);
    assert_eq!(get(&a, "/iiif/link.tif/info.json").status, 200);
    std::fs::remove_file(&link).expect("unlink");
    std::os::unix::fs::symlink(dir.path().join("secret.tif"), &link).expect("symlink");
    assert_eq!(
        get(&a, "/iiif/link.tif/info.json").status,
        403,
        "the remembered canonical path is not reused for another file"
    );
}

#[test]
fn the_quick_path_answers_only_from_memory() {
    let dir = fixture();
    let a = app(dir.path(), &["--max-image-cache-size", "0"]);
    let quick = |path: &str| {
        let mut r = Request::get(path);
        r.budget = Budget::Quick;
        match a.handle_quick(&r) {
            Quick::Answered(response) => Some(response),
            Quick::NeedsWorker => None,
        }
    };
    let tile = "/iiif/a.tif/0,0,256,256/256,/0/default.jpg";
    let region = "/iiif/a.tif/100,100,300,200/150,/0/default.jpg";
    assert!(
        quick(tile).is_none(),
        "an image not yet open needs a worker"
    );
    assert!(quick("/").is_none(), "the index page lists files: a worker");
    let full = get(&a, tile);
    assert_eq!(full.status, 200);
    let fast = quick(tile).expect("a stored tile of an open image is quick");
    assert_eq!((fast.status, &fast.body), (200, &full.body));
    assert_eq!(
        fast.header("access-control-allow-origin"),
        full.header("access-control-allow-origin")
    );
    assert!(quick(region).is_none(), "a region to render needs a worker");
    let info = quick("/iiif/a.tif/info.json").expect("info.json of an open image is quick");
    assert_eq!(info.body, get(&a, "/iiif/a.tif/info.json").body);
    assert_eq!(
        quick("/iiif/a.tif/0,0,9,9/max/0/default.xyz").map(|r| r.status),
        Some(400)
    );
    assert!(
        quick("/iiif/nope.tif/info.json").is_none(),
        "not found: a worker looks further"
    );
}

#[test]
fn the_decoded_tile_cache_changes_no_pixel() {
    let dir = fixture();
    let with = app(dir.path(), &["--max-image-cache-size", "0"]);
    let without = app(
        dir.path(),
        &["--max-image-cache-size", "0", "--decoded-cache-size", "0"],
    );
    for path in [
        "/iiif/a.tif/100,100,300,200/150,/0/default.png",
        "/iiif/a.tif/50,120,500,260/250,/0/gray.png",
        "/iiif/a.tif/100,100,300,200/150,/0/default.png",
        "/iiif/a.tif/0,0,256,256/256,/0/default.png",
    ] {
        let (a, b) = (get(&with, path), get(&without, path));
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, b.body, "{path}");
    }
}
