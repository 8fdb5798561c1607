//! IIP, DeepZoom and Zoomify through the one handler (no sockets): answers shaped like the
//! original's, and the same tile through every protocol being the same bytes and one cache
//! entry.

use crate::harness::{app, call as get, decode_image, tempdir, text};
use iipsrv_server::handler::App;

fn fixture() -> (tempfile::TempDir, App) {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 1000, 700).expect("image");
    let app = app(dir.path(), &[]);
    (dir, app)
}

#[test]
fn obj_answers_like_the_original() {
    let (_d, a) = fixture();
    let r = get(
        &a,
        "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=IIP,1.0&OBJ=Max-size&OBJ=Tile-size&OBJ=Resolution-number&OBJ=Bits-per-channel&OBJ=Min-Max-sample-values&OBJ=Resolutions",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/vnd.netfpx"));
    assert_eq!(
        text(&r),
        "IIP:1.0\r\nMax-size:1000 700\r\nTile-size:256 256\r\nResolution-number:3\r\nBits-per-channel:8\r\n\
         Min-Max-sample-values: 0  255  0  255  0  255\r\nResolutions:250 175,500 350,1000 700\r\n"
    );
    assert_eq!(text(&get(&a, "/?OBJ=IIP,1.0")), "IIP:1.0\r\n");
    assert_eq!(
        text(&get(&a, "/x?fif=a.tif&obj=colorspace,*,*")),
        "Colorspace,0-2,0:0 0 3 3 0 1 2\r\n"
    );
    assert_eq!(get(&a, "/x?OBJ=Max-size").status, 400, "needs FIF");
    assert_eq!(get(&a, "/x?FIF=none.tif&OBJ=Max-size").status, 404);
    assert_eq!(get(&a, "/x?FIF=../a.tif&OBJ=Max-size").status, 403);
}

#[test]
fn one_tile_through_four_protocols_is_one_entry() {
    let (_d, a) = fixture();
    // resolution 1 of 3 is the 500x350 level; its tile 1 is the top-right one (244 x 256)
    let iip = get(&a, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&JTL=1,1");
    assert_eq!(iip.status, 200, "{}", text(&iip));
    let img = decode_image(&iip.body);
    assert_eq!((img.width, img.height), (244, 256));
    let iiif = get(&a, "/iiif/a.tif/512,0,488,512/244,/0/default.jpg");
    let dz = get(&a, "/deepzoom/a.tif_files/9/1_0.jpg");
    let zoomify = get(&a, "/zoomify/a.tif/TileGroup0/1-1-0.jpg");
    let embedded = get(
        &a,
        "/fcgi-bin/iipsrv.fcgi?Zoomify=a.tif/TileGroup0/1-1-0.jpg",
    );
    for (name, r) in [
        ("iiif", &iiif),
        ("deepzoom", &dz),
        ("zoomify", &zoomify),
        ("embedded", &embedded),
    ] {
        assert_eq!(r.status, 200, "{name}: {}", text(r));
        assert_eq!(r.body, iip.body, "{name} gives other bytes");
    }
    assert_eq!(a.cache().len(), 1, "one cache entry for all of them");
}

#[test]
fn deepzoom_and_zoomify_descriptors() {
    let (_d, a) = fixture();
    let dzi = get(&a, "/deepzoom/a.tif.dzi");
    assert_eq!(dzi.header("content-type"), Some("application/xml"));
    assert_eq!(
        text(&dzi),
        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" TileSize=\"256\" Overlap=\"0\" Format=\"jpg\"><Size Width=\"1000\" Height=\"700\"/></Image>"
    );
    assert_eq!(
        text(&get(&a, "/fcgi-bin/iipsrv.fcgi?DeepZoom=a.tif.dzi")),
        text(&dzi)
    );
    let props = text(&get(&a, "/zoomify/a.tif/ImageProperties.xml"));
    assert_eq!(
        props,
        "<IMAGE_PROPERTIES WIDTH=\"1000\" HEIGHT=\"700\" NUMTILES=\"17\" NUMIMAGES=\"1\" VERSION=\"1.8\" TILESIZE=\"256\"/>"
    );
    // DeepZoom levels: 10 is full resolution, levels below the smallest pyramid level get it
    let top = decode_image(&get(&a, "/deepzoom/a.tif_files/10/3_2.jpg").body);
    assert_eq!((top.width, top.height), (232, 188));
    let low = decode_image(&get(&a, "/deepzoom/a.tif_files/2/0_0.jpg").body);
    assert_eq!((low.width, low.height), (250, 175));
    assert_eq!(get(&a, "/deepzoom/a.tif_files/10/4_0.jpg").status, 404);
    assert_eq!(get(&a, "/zoomify/a.tif/TileGroup0/0-1-0.jpg").status, 404);
    assert_eq!(
        get(&a, "/zoomify/a.tif/TileGroup0/4294967295-0-0.jpg").status,
        404
    );
    assert_eq!(get(&a, "/x?FIF=a.tif&JTL=4294967295,0").status, 404);
    assert_eq!(get(&a, "/deepzoom/a.tif_files/x/0_0.jpg").status, 400);
    assert_eq!(
        get(&a, "/zoomify/../secret/ImageProperties.xml").status,
        403
    );
}

#[test]
fn cvt_sizes_formats_and_rotation() {
    let (_d, a) = fixture();
    let size = |q: &str| {
        let r = get(&a, &format!("/fcgi-bin/iipsrv.fcgi?FIF=a.tif&{q}"));
        assert_eq!(r.status, 200, "{q}: {}", text(&r));
        let img = decode_image(&r.body);
        (
            img.width,
            img.height,
            r.header("content-type").map(str::to_string),
        )
    };
    let jpeg = Some("image/jpeg".to_string());
    assert_eq!(size("WID=300&HEI=300&CVT=jpeg"), (300, 210, jpeg.clone()));
    assert_eq!(
        size("HEI=100&CVT=png"),
        (143, 100, Some("image/png".to_string()))
    );
    assert_eq!(size("WID=300&ROT=90&CVT=jpeg"), (210, 300, jpeg.clone()));
    assert_eq!(
        size("WID=200&RGN=0.5,0.5,0.5,0.5&CVT=jpeg"),
        (200, 140, jpeg.clone())
    );
    assert_eq!(size("WID=100&CVT=unknown"), (100, 70, jpeg));
    let grey = decode_image(&get(&a, "/x?FIF=a.tif&WID=100&COL=grey&CVT=png").body);
    assert_eq!(grey.channels, 1);
    let q = get(&a, "/x?FIF=a.tif&QLT=20&JTL=0,0");
    let default = get(&a, "/x?FIF=a.tif&JTL=0,0");
    assert!(q.body.len() < default.body.len(), "QLT lowers the quality");
    for bad in [
        "WID=abc&CVT=jpeg",
        "RGN=2,2,1,1&CVT=jpeg",
        "ROT=45&CVT=jpeg",
        "JTL=7,0",
        "JTL=0,99",
    ] {
        let r = get(&a, &format!("/x?FIF=a.tif&{bad}"));
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.status);
    }
}

#[test]
fn gamma_invert_contrast_follow_the_original() {
    let (_d, a) = fixture();
    let mean = |q: &str| {
        let r = get(&a, &format!("/x?FIF=a.tif&WID=200&{q}CVT=png"));
        assert_eq!(r.status, 200, "{q}: {}", text(&r));
        let img = decode_image(&r.body);
        img.data.iter().map(|&v| v as f64).sum::<f64>() / img.data.len() as f64
    };
    let plain = mean("");
    assert!((mean("CNT=0.5&") - plain / 2.0).abs() < 1.0);
    assert!((mean("INV&") - (255.0 - plain)).abs() < 1.0);
    // gamma, then inversion, then contrast, whatever the order in the query (as Debian's 1.1)
    assert!((mean("CNT=0.5&INV&") - (255.0 - plain) / 2.0).abs() < 1.0);
    assert_eq!(mean("INV&CNT=0.5&"), mean("CNT=0.5&INV&"));
    let g = mean("GAM=2&");
    assert!(g < plain * 0.8, "gamma 2 darkens: {g} vs {plain}");
    assert!((mean("GAM=2&INV&") - (255.0 - g)).abs() < 1.0);
    assert_eq!(get(&a, "/x?FIF=a.tif&CNT=abc&CVT=jpeg").status, 400);
    // adjusted tiles are not passed through and not shared with plain ones
    let plain_tile = get(&a, "/x?FIF=a.tif&JTL=1,0");
    let inverted = get(&a, "/x?FIF=a.tif&INV&JTL=1,0");
    assert_ne!(plain_tile.body, inverted.body);
}

#[test]
fn sequences_follow_filename_pattern() {
    let dir = tempdir();
    for (name, w) in [
        ("vase_pyr_000_090.tif", 300),
        ("vase_pyr_045_090.tif", 310),
        ("vase_pyr_000_000.tif", 320),
        ("vase-000_090.tif", 330),
    ] {
        iipsrv_server::demo::write_demo(&dir.path().join(name), w, 200).expect("image");
    }
    let a = app(dir.path(), &[]);
    let obj = |q: &str| text(&get(&a, &format!("/x?FIF=vase&{q}")));
    assert_eq!(
        obj("OBJ=Horizontal-views&OBJ=Vertical-views"),
        "Horizontal-views:0 45\r\nVertical-views:0 90\r\n"
    );
    assert_eq!(
        obj("OBJ=Max-size"),
        "Max-size:300 200\r\n",
        "default view 0,90"
    );
    assert_eq!(obj("SDS=45,90&OBJ=Max-size"), "Max-size:310 200\r\n");
    assert_eq!(
        obj("SDS=0&OBJ=Max-size"),
        "Max-size:320 200\r\n",
        "SDS=x means x,0"
    );
    assert_eq!(get(&a, "/x?FIF=vase&SDS=90,90&JTL=0,0").status, 404);
    assert_eq!(get(&a, "/x?FIF=vase&JTLS=45,0,0,90").status, 200);
    let other = app(dir.path(), &["--filename-pattern", "-"]);
    assert_eq!(
        text(&get(&other, "/x?FIF=vase&OBJ=Max-size")),
        "Max-size:330 200\r\n"
    );
    assert_eq!(get(&a, "/x?FIF=../vase&OBJ=Max-size").status, 403);
    assert_eq!(get(&a, "/x?FIF=nothing&OBJ=Max-size").status, 404);
}

#[test]
fn til_streams_the_tiles_of_a_rectangle() {
    let (_dir, a) = fixture();
    let r = get(&a, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&TIL=2,0-5");
    assert_eq!(r.status, 200);
    let body = r.body.to_vec();
    let mut at = 0;
    let mut seen = Vec::new();
    while at < body.len() {
        let colon = body[at..].iter().position(|&b| b == b':').expect("prefix") + at;
        let head = String::from_utf8_lossy(&body[at..colon]).to_string();
        let parts: Vec<&str> = head.trim_start_matches("Tile,").split([',', '/']).collect();
        let (tile, len): (u64, usize) = (
            parts[1].parse().expect("tile"),
            parts[3].parse().expect("length"),
        );
        assert_eq!(parts[0], "2");
        assert_eq!(&body[colon + 1..colon + 9], &[2, 0, 0, 0, 0, 0x11, 0, 0]);
        let jpeg = &body[colon + 9..colon + 1 + len];
        let single = get(&a, &format!("/fcgi-bin/iipsrv.fcgi?FIF=a.tif&JTL=2,{tile}"));
        assert_eq!(jpeg, &single.body[..], "tile {tile}");
        assert_eq!(&body[colon + 1 + len..colon + 3 + len], b"\r\n");
        seen.push(tile);
        at = colon + 3 + len;
    }
    // 1000×700 at 256 px: four tiles across; tiles 0 and 5 span columns 0-1, rows 0-1.
    assert_eq!(seen, vec![0, 4, 1, 5]);
    assert_eq!(
        get(&a, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&TIL=2,99999").status,
        404
    );
}
