//! JPEG2000 sources: files made by OpenJPEG's own `opj_compress` from the test pattern,
//! served by the real binary, compared with the pattern and with `opj_decompress`'s
//! decode of the same file (levels, layers, 16-bit, raw codestreams, damage).

use crate::harness::*;
use iipsrv_core::raster::Raster;
use std::path::Path;
use std::process::Command;

const W: u32 = 700;
const H: u32 = 500;

/// `opj_compress` of `src` to `out` with extra arguments.
fn compress(src: &Path, out: &Path, args: &[&str]) {
    run(Command::new("opj_compress")
        .arg("-i")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(args));
}

/// `opj_decompress` of `src` with extra arguments, read back as a raster.
pub(crate) fn decompress(src: &Path, args: &[&str]) -> Raster {
    let out = src.with_extension("decoded.png");
    run(Command::new("opj_decompress")
        .arg("-i")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .args(args));
    decode_image(&std::fs::read(&out).expect("decoded png"))
}

#[test]
fn lossless_and_layered_files_match_openjpeg() {
    let dir = tempdir();
    let src = pattern(W, H);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    compress(&png, &dir.path().join("lossless.jp2"), &["-n", "4"]);
    compress(
        &png,
        &dir.path().join("layers.jp2"),
        &["-n", "5", "-t", "256,256", "-r", "80,20,5"],
    );
    compress(&png, &dir.path().join("raw.j2k"), &["-n", "3"]);
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let port = server.port;

    // Lossless: every pixel, through IIIF and IIP.
    let full = fetch(port, "/iiif/lossless.jp2/full/max/0/default.png");
    assert_eq!(full, src);
    let raw = fetch(port, "/fcgi-bin/iipsrv.fcgi?FIF=raw.j2k&CVT=png");
    assert_eq!(raw, src);
    let info = get(port, "/iiif/lossless.jp2/info.json");
    let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    // 700 × 500 → 350 × 250 → 175 × 125, which fits one tile: three of four resolutions.
    assert_eq!(
        j["tiles"][0]["scaleFactors"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(j["tiles"][0]["width"].as_u64(), Some(256));

    // A tile at a reduced level is OpenJPEG's own reduced decode.
    let reduced = decompress(&dir.path().join("lossless.jp2"), &["-r", "1"]);
    let tile = fetch(port, "/iiif/lossless.jp2/0,0,512,500/256,/0/default.png");
    assert_eq!(tile, reduced.crop(0, 0, 256, 250));

    // Quality layers: LYR=1 is the first layer; the default is half (2 of 3); MAX_LAYERS
    // caps what LYR asks.
    let path = dir.path().join("layers.jp2");
    let one = fetch(port, "/fcgi-bin/iipsrv.fcgi?FIF=layers.jp2&LYR=1&CVT=png");
    assert_eq!(one, decompress(&path, &["-l", "1"]));
    let default = fetch(port, "/fcgi-bin/iipsrv.fcgi?FIF=layers.jp2&CVT=png");
    assert_eq!(default, decompress(&path, &["-l", "2"]));
    let all = fetch(port, "/fcgi-bin/iipsrv.fcgi?FIF=layers.jp2&LYR=3&CVT=png");
    assert_eq!(all, decompress(&path, &[]));
    assert!(mean_error(&one, &src) > mean_error(&all, &src));
    assert!(server.alive());
    drop(server);

    let capped = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("MAX_LAYERS", "1")]);
    let asked = fetch(
        capped.port,
        "/fcgi-bin/iipsrv.fcgi?FIF=layers.jp2&LYR=3&CVT=png",
    );
    assert_eq!(asked, one);
    drop(capped);
    let every = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("MAX_LAYERS", "-1")]);
    let plain = fetch(every.port, "/fcgi-bin/iipsrv.fcgi?FIF=layers.jp2&CVT=png");
    assert_eq!(plain, all);
}

/// The levels are the newest original's: the codestream's own sizes (rounded up) down to
/// the first that fits one tile, so OBJ, IIP tile indices, IIIF sizes, DeepZoom and Zoomify
/// all name the levels it names, and each level is OpenJPEG's reduced decode.
#[test]
fn levels_are_the_codestreams_rounded_up() {
    let dir = tempdir();
    let png = dir.path().join("src.png");
    write_png(&pattern(1001, 701), &png);
    let file = dir.path().join("odd.jp2");
    compress(&png, &file, &["-n", "6"]);
    let app = app(dir.path(), &[]);
    let obj = text(&call(
        &app,
        "/fcgi-bin/iipsrv.fcgi?FIF=odd.jp2&OBJ=Resolution-number&OBJ=Resolutions",
    ));
    assert!(obj.contains("Resolution-number:3\r\n"), "{obj}");
    assert!(
        obj.contains("Resolutions:251 176,501 351,1001 701"),
        "{obj}"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&call(&app, "/iiif/odd.jp2/info.json").body).expect("json");
    assert_eq!(
        info["sizes"],
        serde_json::json!([{"width": 251, "height": 176}, {"width": 501, "height": 351}])
    );
    assert_eq!(
        info["tiles"][0]["scaleFactors"],
        serde_json::json!([1, 2, 4])
    );
    let png_of = |path: &str| decode_image(&call(&app, path).body);
    for (k, (w, h)) in [(0, (1001, 701)), (1, (501, 351)), (2, (251, 176))] {
        let reference = decompress(&file, &["-r", &k.to_string()]);
        assert_eq!((reference.width, reference.height), (w, h), "opj -r {k}");
        let whole = png_of(&format!("/iiif/odd.jp2/full/{w},{h}/0/default.png"));
        assert_eq!(whole, reference, "level {k}");
    }
    // IIP resolution 0 is the smallest level; resolution 1 tile 1 its top-right tile.
    let r1 = decompress(&file, &["-r", "1"]);
    assert_eq!(
        png_of("/fcgi-bin/iipsrv.fcgi?FIF=odd.jp2&PTL=0,0"),
        decompress(&file, &["-r", "2"])
    );
    assert_eq!(
        png_of("/fcgi-bin/iipsrv.fcgi?FIF=odd.jp2&PTL=1,1"),
        r1.crop(256, 0, 245, 256)
    );
    // DeepZoom level 9 of 0..10 is 501 × 351; Zoomify tile 0-0-0 is the smallest level.
    let dz = decode_image(&call(&app, "/deepzoom/odd.jp2_files/9/1_1.jpg").body);
    assert_eq!((dz.width, dz.height), (245, 95));
    let zoomify = decode_image(&call(&app, "/zoomify/odd.jp2/TileGroup0/0-0-0.jpg").body);
    assert_eq!((zoomify.width, zoomify.height), (251, 176));
}

#[test]
fn sixteen_bit_jpeg2000_scales_to_eight() {
    let dir = tempdir();
    let src = pattern(300, 200);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    let u16 = sixteen_bit(dir.path(), &png);
    vips(&["pngsave", &u16.to_string_lossy(), &p("u16.png")]);
    compress(
        Path::new(&p("u16.png")),
        Path::new(&p("u16.jp2")),
        &["-n", "3"],
    );
    let server = Server::start(&[("FILESYSTEM_PREFIX", &p(""))]);
    let out = fetch(server.port, "/iiif/u16.jp2/full/max/0/default.png");
    assert!(mean_error(&out, &src) <= 0.5, "{}", mean_error(&out, &src));
    let obj = get(
        server.port,
        "/fcgi-bin/iipsrv.fcgi?FIF=u16.jp2&OBJ=Bits-per-channel&OBJ=Min-Max-sample-values",
    );
    let text = String::from_utf8_lossy(&obj.body).to_string();
    assert!(
        text.contains("Bits-per-channel:16") && text.contains("0  65535"),
        "{text}"
    );
}

#[test]
fn damaged_jpeg2000_is_an_error_not_a_crash() {
    let dir = tempdir();
    let png = dir.path().join("src.png");
    write_png(&pattern(W, H), &png);
    let good = dir.path().join("good.jp2");
    compress(&png, &good, &["-n", "4"]);
    let bytes = std::fs::read(&good).expect("jp2");
    std::fs::write(dir.path().join("cut.jp2"), &bytes[..bytes.len() / 3]).expect("write");
    std::fs::write(dir.path().join("head.jp2"), &bytes[..60]).expect("write");
    let mut garbage = bytes.clone();
    for b in garbage.iter_mut().skip(300).step_by(7) {
        *b ^= 0x5a;
    }
    std::fs::write(dir.path().join("garbage.jp2"), &garbage).expect("write");
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    for id in ["cut.jp2", "head.jp2", "garbage.jp2"] {
        for path in [
            format!("/iiif/{id}/info.json"),
            format!("/iiif/{id}/full/max/0/default.jpg"),
            format!("/iiif/{id}/0,0,256,256/256,/0/default.jpg"),
        ] {
            let r = get(server.port, &path);
            assert!(
                r.status == 200 || (400..600).contains(&r.status),
                "{path}: {}",
                r.status
            );
        }
    }
    assert!(server.alive());
    assert_eq!(get(server.port, "/iiif/good.jp2/info.json").status, 200);
}

/// A JP2 box: its length, its type, its content.
fn jp2_box(kind: &[u8; 4], content: &[u8]) -> Vec<u8> {
    let mut b = ((content.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(content);
    b
}

/// A JP2 file around a one-component codestream of palette indices, with a `pclr` box
/// of three 8-bit columns and the `cmap` that maps them to the three output channels.
fn palette_jp2(width: u32, height: u32, codestream: &[u8], palette: &[[u8; 3]]) -> Vec<u8> {
    let mut ihdr = height.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&[0, 1, 7, 7, 0, 0]);
    let mut pclr = (palette.len() as u16).to_be_bytes().to_vec();
    pclr.extend_from_slice(&[3, 7, 7, 7]);
    pclr.extend(palette.iter().flatten());
    let cmap = [0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 2];
    let header = [
        jp2_box(b"ihdr", &ihdr),
        jp2_box(b"colr", &[1, 0, 0, 0, 0, 0, 16]),
        jp2_box(b"pclr", &pclr),
        jp2_box(b"cmap", &cmap),
    ]
    .concat();
    [
        jp2_box(b"jP  ", &[0x0d, 0x0a, 0x87, 0x0a]),
        jp2_box(b"ftyp", b"jp2 \0\0\0\0jp2 "),
        jp2_box(b"jp2h", &header),
        jp2_box(b"jp2c", codestream),
    ]
    .concat()
}

/// A JP2 with a palette (`pclr` + `cmap`, as glymur's heliov.jpx has) is served in its
/// palette's colours, equal to `opj_decompress`'s decode at full and reduced resolution.
#[test]
fn palette_jpeg2000_is_served_in_its_colours() {
    let dir = tempdir();
    let src = pattern(W, H);
    let indices: Vec<u8> = src.data.chunks_exact(3).map(|p| p[0] % 200).collect();
    let grey = Raster::from_vec(W, H, 1, indices.clone()).expect("size");
    let idx = dir.path().join("idx.png");
    write_png(&grey, &idx);
    compress(&idx, &dir.path().join("idx.j2k"), &["-n", "4"]);
    let codestream = std::fs::read(dir.path().join("idx.j2k")).expect("codestream");
    let palette: Vec<[u8; 3]> = (0..200u32)
        .map(|i| [i as u8, 255 - i as u8, (i * 37 % 256) as u8])
        .collect();
    let file = dir.path().join("palette.jp2");
    std::fs::write(&file, palette_jp2(W, H, &codestream, &palette)).expect("write");
    let full = decompress(&file, &[]);
    let coloured: Vec<u8> = indices.iter().flat_map(|&i| palette[i as usize]).collect();
    assert_eq!(full.data, coloured, "opj_decompress applies the palette");
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    assert_eq!(
        fetch(server.port, "/iiif/palette.jp2/full/max/0/default.png"),
        full
    );
    let half = decompress(&file, &["-r", "1"]);
    let url = format!("/iiif/palette.jp2/full/{},/0/default.png", half.width);
    assert_eq!(fetch(server.port, &url), half);
    let tile = fetch(
        server.port,
        "/iiif/palette.jp2/256,0,256,256/256,/0/default.png",
    );
    assert_eq!(tile, full.crop(256, 0, 256, 256));
}

/// `ojph_expand` (OpenJPH, not OpenJPEG) of an HTJ2K file, `skip` resolutions dropped.
pub(crate) fn ojph_expand(src: &Path, skip: u32) -> Raster {
    let out = src.with_extension(format!("skip{skip}.ppm"));
    run(Command::new("ojph_expand")
        .arg("-i")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .args(["-skip_res", &skip.to_string()]));
    let png = out.with_extension("png");
    vips(&["copy", &out.to_string_lossy(), &png.to_string_lossy()]);
    decode_image(&std::fs::read(&png).expect("png"))
}

/// Writes `r` as a binary PPM, the input `ojph_compress` reads.
fn write_ppm(r: &Raster, path: &Path) {
    let mut ppm = format!("P6\n{} {}\n255\n", r.width, r.height).into_bytes();
    ppm.extend_from_slice(&r.data);
    std::fs::write(path, ppm).expect("write");
}

/// `ojph_compress` of `src` to `out`, lossless, with extra arguments.
fn ojph_compress(src: &Path, out: &Path, args: &[&str]) {
    run(Command::new("ojph_compress")
        .arg("-i")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(["-reversible", "true"])
        .args(args));
}

/// HTJ2K files made by OpenJPH's `ojph_compress`, untiled and in 256-px codestream tiles:
/// tiles, unaligned regions and reduced levels equal OpenJPH's own decode. (OpenJPEG
/// alone answers flat grey for part of an HT codestream tile; we decode whole ones.)
#[test]
fn htj2k_matches_openjph_in_every_part() {
    let dir = tempdir();
    let src = pattern(W, H);
    let input = dir.path().join("src.ppm");
    write_ppm(&src, &input);
    ojph_compress(&input, &dir.path().join("whole.jph"), &[]);
    ojph_compress(
        &input,
        &dir.path().join("tiled.jph"),
        &["-tile_size", "{256,256}"],
    );
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    for name in ["whole.jph", "tiled.jph"] {
        let full = ojph_expand(&dir.path().join(name), 0);
        assert_eq!(full, src, "{name}: lossless");
        let half = ojph_expand(&dir.path().join(name), 1);
        let asks = [
            ("256,0,256,256/256,", full.crop(256, 0, 256, 256)),
            ("100,130,300,200/max", full.crop(100, 130, 300, 200)),
            ("full/max", full.clone()),
            ("full/350,", half.clone()),
            ("0,0,512,500/256,", half.crop(0, 0, 256, 250)),
        ];
        for (view, want) in asks {
            let url = format!("/iiif/{name}/{view}/0/default.png");
            assert!(fetch(server.port, &url) == want, "{url}");
        }
    }
}

/// An HTJ2K file whose image and tile grid start off the origin, tall enough that a whole
/// image is decoded in two bands (their edge moved to a codestream tile row): the full and
/// the half image equal OpenJPH's decode.
#[test]
fn htj2k_with_offsets_decodes_in_bands_of_tile_rows() {
    let dir = tempdir();
    let src = pattern(1200, 1100);
    let input = dir.path().join("src.ppm");
    write_ppm(&src, &input);
    let file = dir.path().join("offset.jph");
    let grid = [
        "-image_offset",
        "{37,21}",
        "-tile_offset",
        "{5,7}",
        "-tile_size",
        "{256,256}",
    ];
    ojph_compress(&input, &file, &grid);
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let full = fetch(server.port, "/iiif/offset.jph/full/max/0/default.png");
    assert!(full == ojph_expand(&file, 0) && full == src);
    let half = fetch(server.port, "/iiif/offset.jph/full/600,/0/default.png");
    assert!(half == ojph_expand(&file, 1));
}

/// Regions of multi-tile files (each request decodes only the tile-parts it needs, spliced
/// from the tile-part index) equal the same areas of `opj_decompress`'s decode of the whole
/// file, at full and reduced resolution: one tile-part per tile, tile-parts per resolution
/// with TLM and PLT markers, and a raw codestream.
#[test]
fn regions_of_multi_tile_files_match_openjpeg() {
    let dir = tempdir();
    let src = pattern(W, H);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    let tiled = ["-n", "4", "-t", "128,128", "-p", "RPCL", "-r", "40,10,1"];
    compress(&png, &dir.path().join("tiled.jp2"), &tiled);
    let parts = [&tiled[..], &["-TP", "R", "-TLM", "-PLT"]].concat();
    compress(&png, &dir.path().join("parts.jp2"), &parts);
    compress(&png, &dir.path().join("tiled.j2k"), &tiled);
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("MAX_LAYERS", "-1")]);
    for name in ["tiled.jp2", "parts.jp2", "tiled.j2k"] {
        let path = dir.path().join(name);
        let full = decompress(&path, &[]);
        let got = fetch(
            server.port,
            &format!("/iiif/{name}/130,70,300,200/max/0/default.png"),
        );
        assert_eq!(got, full.crop(130, 70, 300, 200), "{name} full resolution");
        let reduced = decompress(&path, &["-r", "1"]);
        let got = fetch(
            server.port,
            &format!("/iiif/{name}/128,64,384,256/192,/0/default.png"),
        );
        assert_eq!(got, reduced.crop(64, 32, 192, 128), "{name} reduced");
        let whole = fetch(server.port, &format!("/iiif/{name}/full/max/0/default.png"));
        assert_eq!(whole, full, "{name} whole");
    }
    assert!(server.alive());
}

/// The decoded-tile cache's lookups with this outcome (`hit` or `miss`).
fn decoded_lookups(port: u16, outcome: &str) -> u64 {
    let body = String::from_utf8(get(port, "/metrics").body).expect("text");
    body.lines()
        .filter(|l| l.starts_with("iipsrv_cache_lookups_total{"))
        .filter(|l| l.contains("tier=\"decoded\"") && l.contains(&format!("outcome=\"{outcome}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn regions_are_composed_from_kept_blocks_of_codestream_tiles() {
    let dir = tempdir();
    let src = pattern(W, H);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    let path = dir.path().join("tiled.jp2");
    compress(&png, &path, &["-n", "4", "-t", "128,128", "-r", "20,5"]);
    let prefix = dir.path().to_string_lossy().to_string();
    // Level 0 (1.05 MB of pixels) does not fit in half of a 2 MB cache (one shard), level 1
    // does.
    let mut kept = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("DECODED_CACHE_SIZE", "2")]);
    let mut none = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("DECODED_CACHE_SIZE", "0")]);
    let full = decompress(&path, &["-l", "1"]);
    let reduced = decompress(&path, &["-l", "1", "-r", "1"]);

    // Full resolution: exactly the box is decoded, nothing kept.
    let url = "/iiif/tiled.jp2/130,70,300,200/max/0/default.png";
    assert_eq!(fetch(kept.port, url), full.crop(130, 70, 300, 200));
    assert_eq!(decoded_lookups(kept.port, "miss"), 0);

    // Half resolution: blocks of 256 level pixels (4 x 4 codestream tiles of 64), kept.
    let regions = [
        ((100, 60, 400, 300), (50, 30, 200, 150)),
        ((120, 80, 380, 280), (60, 40, 190, 140)),
        ((0, 0, 700, 500), (0, 0, 350, 250)),
        ((600, 400, 100, 100), (300, 200, 50, 50)),
    ];
    for (i, ((x, y, w, h), (rx, ry, rw, rh))) in regions.into_iter().enumerate() {
        let url = format!("/iiif/tiled.jp2/{x},{y},{w},{h}/{rw},/0/default.png");
        let misses = decoded_lookups(kept.port, "miss");
        let got = fetch(kept.port, &url);
        assert_eq!(got, reduced.crop(rx, ry, rw, rh), "{url}");
        assert_eq!(got, fetch(none.port, &url), "{url} without the cache");
        if i == 1 {
            // Inside the first region's blocks: every block a hit, none decoded again.
            assert_eq!(decoded_lookups(kept.port, "miss"), misses, "{url}");
        }
    }
    // 350 x 250 at half resolution is 2 x 1 blocks, each decoded once: the first region
    // decodes the left one, the whole image the right one; hits 1 + 1 + 1.
    assert_eq!(decoded_lookups(kept.port, "miss"), 2);
    assert_eq!(decoded_lookups(kept.port, "hit"), 3);

    // Other quality layers are kept apart, under the count decoded: LYR=2 (all of this
    // file's two layers), LYR=9 and LYR=3 (more than it has) are the same pixels, decoded once.
    let all_layers = decompress(&path, &["-r", "1"]);
    for (lyr, misses) in [(2, 4), (9, 4), (3, 4)] {
        let url = format!("/fcgi-bin/iipsrv.fcgi?FIF=tiled.jp2&WID=350&LYR={lyr}&CVT=png");
        assert_eq!(fetch(kept.port, &url), all_layers, "{url}");
        assert_eq!(decoded_lookups(kept.port, "miss"), misses, "{url}");
    }

    // Tiles of 100 x 60 (no power of two): blocks of 8 x 16 tiles at half resolution and of
    // 16 x 32 at a quarter (both 400 x 480 level pixels), the edges' blocks cut short.
    let odd = dir.path().join("odd.jp2");
    compress(&png, &odd, &["-n", "4", "-t", "100,60"]);
    for r in [1u32, 2] {
        let reduced = decompress(&odd, &["-r", &r.to_string()]);
        let (w, h) = (reduced.width, reduced.height);
        for (x, y) in [(0, 0), (w / 3, h / 4), (w - 60, h - 40)] {
            let (rw, rh) = ((w - x).min(90), (h - y).min(70));
            let url = format!(
                "/iiif/odd.jp2/{},{},{},{}/{rw},/0/default.png",
                x << r,
                y << r,
                (rw << r).min(W - (x << r)),
                (rh << r).min(H - (y << r))
            );
            assert_eq!(fetch(kept.port, &url), reduced.crop(x, y, rw, rh), "{url}");
        }
    }
    assert!(
        decoded_lookups(kept.port, "miss") > 2,
        "odd.jp2's blocks kept"
    );
    assert!(kept.alive() && none.alive());
}

/// `jp2` with the SOD marker of codestream tile `index` broken, which OpenJPEG refuses.
fn break_tile(jp2: &[u8], index: u16) -> Vec<u8> {
    let mut b = jp2.to_vec();
    let find = |b: &[u8], from: usize, marker: u8| {
        b[from..]
            .windows(2)
            .position(|w| w == [0xFF, marker])
            .map(|i| i + from)
    };
    let mut at = 0;
    while let Some(sot) = find(&b, at, 0x90) {
        if b[sot + 4..sot + 6] == index.to_be_bytes() {
            let sod = find(&b, sot, 0x93).expect("SOD");
            b[sod + 1] = 0;
            return b;
        }
        at = sot + 2;
    }
    panic!("no tile {index}");
}

#[test]
fn a_damaged_codestream_tile_fails_only_the_regions_touching_it() {
    let dir = tempdir();
    let png = dir.path().join("src.png");
    write_png(&pattern(W, H), &png);
    let good = dir.path().join("good.jp2");
    compress(&png, &good, &["-n", "4", "-t", "128,128", "-r", "20,5"]);
    // Tile 21 is column 3, row 3 of 6 x 4. At half resolution the first kept block (256
    // level pixels: 4 x 4 codestream tiles of 64) holds it and 15 healthy tiles.
    let bytes = std::fs::read(&good).expect("jp2");
    std::fs::write(dir.path().join("damaged.jp2"), break_tile(&bytes, 21)).expect("write");
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("DECODED_CACHE_SIZE", "2")]);
    let reduced = decompress(&good, &["-l", "1", "-r", "1"]);
    let healthy = "/iiif/damaged.jp2/0,0,200,200/100,/0/default.png";
    let touching = "/iiif/damaged.jp2/300,300,200,200/100,/0/default.png";
    let mut misses = Vec::new();
    for _ in 0..2 {
        assert_eq!(fetch(server.port, healthy), reduced.crop(0, 0, 100, 100));
        let r = get(server.port, touching);
        assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.body));
        misses.push(decoded_lookups(server.port, "miss"));
    }
    // The damaged block is tried once: the second round decodes boxes only.
    assert_eq!(misses[0], misses[1], "{misses:?}");
    assert!(server.alive());
}

#[test]
fn large_blocks_asked_at_once_by_many_clients_are_decoded_once_each() {
    // Codestream tiles of 1024: a block is decoded in two bands of 512 rows; many requests
    // at once for regions over the same blocks must neither wait on each other forever nor
    // decode a block twice.
    let dir = tempdir();
    let (w, h) = (2048, 1536);
    let src = pattern(w, h);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    let path = dir.path().join("big-tiles.jp2");
    compress(&png, &path, &["-n", "3", "-t", "1024,1024", "-r", "20"]);
    let full = decompress(&path, &[]);
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let port = server.port;
    let boxes = [
        (900, 900, 300, 300),
        (0, 800, 1100, 400),
        (1000, 0, 200, 1536),
    ];
    std::thread::scope(|s| {
        for t in 0..8 {
            let full = &full;
            s.spawn(move || {
                for i in 0..boxes.len() {
                    let (x, y, bw, bh) = boxes[(i + t) % boxes.len()];
                    let url = format!("/iiif/big-tiles.jp2/{x},{y},{bw},{bh}/max/0/default.png");
                    assert_eq!(fetch(port, &url), full.crop(x, y, bw, bh), "{url}");
                }
            });
        }
    });
    // The 2 x 2 blocks of full resolution (1024 px), each decoded once.
    assert_eq!(decoded_lookups(port, "miss"), 4);
    assert!(server.alive());
}
