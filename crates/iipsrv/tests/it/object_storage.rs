//! Images in an S3-compatible object store (a real one: s3s-fs, started here, installed by
//! scripts/deps.sh): served like the same files on disk, with few ranged GETs, a replaced
//! object noticed, and a dead store answered with a clear 502 for what is not cached.

use crate::harness::*;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

/// s3s-fs serving `root` (buckets are its directories); killed on drop.
struct S3 {
    port: u16,
    child: Child,
}

impl S3 {
    fn start(root: &Path) -> S3 {
        let root = root.to_str().expect("utf-8 path");
        let (child, port) = spawn_listener(
            "s3s-fs",
            &[
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--access-key",
                "test-key",
                "--secret-key",
                "test-secret-key",
                root,
            ],
        );
        S3 { port, child }
    }

    /// The environment that points a server at this store.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", "test-key".into()),
            ("AWS_SECRET_ACCESS_KEY", "test-secret-key".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with `base` settings plus `extra`.
fn server(base: &[(&'static str, String)], extra: &[(&'static str, &str)]) -> Server {
    let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn gets(port: u16) -> u64 {
    metric(port, "iipsrv_object_requests_total{kind=\"get\"}")
}

#[test]
fn objects_are_served_like_files_with_few_requests() {
    let disk = tempdir();
    let store = tempdir();
    std::fs::create_dir(store.path().join("images")).expect("bucket");
    iipsrv_server::demo::write_demo(&disk.path().join("a.tif"), 3000, 2000).expect("image");
    std::fs::copy(disk.path().join("a.tif"), store.path().join("images/a.tif")).expect("copy");
    let s3 = S3::start(store.path());
    let no_caches = [("MAX_IMAGE_CACHE_SIZE", "0"), ("DECODED_CACHE_SIZE", "0")];
    let mut env = s3.env();
    env.push(("FILESYSTEM_PREFIX", "s3://images/".into()));
    let remote = server(&env, &no_caches);
    let local = server(
        &[("FILESYSTEM_PREFIX", disk.path().display().to_string())],
        &no_caches,
    );

    let info = |port: u16| {
        let r = get(port, "/iiif/a.tif/info.json");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        String::from_utf8(r.body)
            .expect("json")
            .replace(&port.to_string(), "PORT")
    };
    assert_eq!(info(remote.port), info(local.port));
    let opened = gets(remote.port);
    assert!(opened <= 4, "opening read the directories in {opened} GETs");

    // one ranged GET per tile (tiles far apart), none again for the same tile
    let tiles = [
        "/iiif/a.tif/0,0,256,256/256,/0/default.jpg",
        "/iiif/a.tif/2048,1536,256,256/256,/0/default.jpg",
        "/iiif/a.tif/0,0,3000,2000/375,/0/default.jpg",
    ];
    for (i, t) in tiles.iter().enumerate() {
        let r = get(remote.port, t);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            get(local.port, t).body,
            "{t} differs from the file's"
        );
        assert!(
            gets(remote.port) <= opened + i as u64 + 1,
            "{t}: {} GETs",
            gets(remote.port)
        );
    }
    let before = gets(remote.port);
    assert_eq!(get(remote.port, tiles[1]).status, 200);
    assert_eq!(
        gets(remote.port),
        before,
        "a tile read before comes from the block cache"
    );

    // a region of 3 × 2 tiles of level 1: their bytes in at most one request per tile row
    let region = "/iiif/a.tif/700,700,1000,700/500,/0/default.png";
    let before = gets(remote.port);
    let r = get(remote.port, region);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, get(local.port, region).body);
    let used = gets(remote.port) - before;
    assert!((1..=3).contains(&used), "the region took {used} GETs");

    // ids that climb out are refused before any store is asked; a missing object is a 404
    assert_eq!(get(remote.port, "/iiif/..%2Fa.tif/info.json").status, 403);
    assert_eq!(get(remote.port, "/iiif/nope.tif/info.json").status, 404);
}

#[test]
fn a_replaced_object_is_noticed_and_a_dead_store_is_a_502() {
    let store = tempdir();
    std::fs::create_dir(store.path().join("images")).expect("bucket");
    let object = store.path().join("images/b.tif");
    iipsrv_server::demo::write_demo(&object, 1000, 800).expect("image");
    let mut s3 = S3::start(store.path());
    let mut env = s3.env();
    env.push(("OBJECT_MAP", "remote=>s3://images/".into()));
    let a = server(
        &env,
        &[
            ("REVALIDATE_INTERVAL", "1"),
            // small blocks, so that the store is needed for what was not read yet
            ("OBJECT_BLOCK_SIZE", "4"),
            ("FILESYSTEM_PREFIX", store.path().to_str().expect("utf-8")),
        ],
    );
    let size = |port: u16| -> u64 {
        let r = get(port, "/iiif/remote/b.tif/info.json");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        v["width"].as_u64().expect("width")
    };
    assert_eq!(size(a.port), 1000);
    // ids outside the rule are files under FILESYSTEM_PREFIX
    assert_eq!(get(a.port, "/iiif/images/b.tif/info.json").status, 200);
    iipsrv_server::demo::write_demo(&object, 1200, 800).expect("replace");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        size(a.port),
        1200,
        "the new object is served after REVALIDATE_INTERVAL"
    );

    let cached = "/iiif/remote/b.tif/0,0,512,512/256,/0/default.jpg";
    assert_eq!(get(a.port, cached).status, 200);
    let _ = s3.child.kill();
    let _ = s3.child.wait();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        get(a.port, cached).status,
        200,
        "an answer in the cache survives the store's outage"
    );
    let start = std::time::Instant::now();
    let r = get(
        a.port,
        "/iiif/remote/b.tif/900,500,300,300/300,/0/default.jpg",
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    let text = String::from_utf8(r.body).expect("text");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        get(a.port, "/iiif/images/b.tif/info.json").status,
        200,
        "files still served"
    );
}

#[test]
fn a_flat_object_gets_its_pyramid_built_like_a_file() {
    let store = tempdir();
    let cache = tempdir();
    std::fs::create_dir(store.path().join("images")).expect("bucket");
    let src = pattern(3000, 2000);
    write_png(&src, &store.path().join("images/flat.png"));
    let s3 = S3::start(store.path());
    let mut env = s3.env();
    env.push(("FILESYSTEM_PREFIX", "s3://images/".into()));
    let dir = cache.path().to_string_lossy().to_string();
    let remote = server(
        &env,
        &[("PYRAMID_CACHE_DIR", &dir), ("PYRAMID_THRESHOLD", "1")],
    );
    let path = "/iiif/flat.png/full/375,/0/default.png";
    assert_eq!(get(remote.port, path).status, 503, "built first");
    let (answer, _) = until_built(remote.port, path);
    let expected = reference(
        &src,
        iipsrv_core::view::Rect {
            x: 0,
            y: 0,
            w: 3000,
            h: 2000,
        },
        375,
        250,
    );
    let err = mean_error(&decode_image(&answer.body), &expected);
    assert!(err < 3.0, "mean error {err}");
    assert_eq!(pyramids(cache.path()).len(), 1);
}
