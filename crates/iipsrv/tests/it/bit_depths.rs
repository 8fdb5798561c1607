//! TIFF samples of 1, 2, 4, 12 and 14 bits, in tiled pyramids and in striped single-level
//! files, uncompressed, LZW, deflate, PackBits and (1-bit) CCITT fax: 1/2/4-bit files written by libvips (`--bitdepth`)
//! and recompressed by libtiff's `tiffcp`, compared pixel for pixel with libvips's own
//! decode of them; 12/14-bit files packed here (libvips reads no such depth), recompressed
//! by `tiffcp` and checked by `tiffinfo`, compared with the pattern they were made from.

use crate::harness::*;
use iipsrv_core::raster::Raster;
use iipsrv_core::view::Rect;
use std::path::Path;
use std::process::Command;

const W: u32 = 600;
const H: u32 = 400;

/// The grey test pattern.
fn grey() -> Raster {
    iipsrv_core::pixel::to_gray(&pattern(W, H))
}

/// `src` with `args` through `tiffcp` into `dir/name`.
fn tiffcp(dir: &Path, src: &str, name: &str, args: &[&str]) {
    run(Command::new("tiffcp")
        .args(args)
        .arg(dir.join(src))
        .arg(dir.join(name)));
}

/// libvips's decode of page `page` of `dir/name` (its own reader, libtiff below it).
fn vips_decode(dir: &Path, name: &str, page: u32) -> Raster {
    let src = format!("{}[page={page}]", dir.join(name).to_string_lossy());
    let out = dir.join(format!("{name}-{page}.png"));
    vips(&["copy", &src, &out.to_string_lossy()]);
    decode_image(&std::fs::read(&out).expect("png"))
}

/// The image answer of `path`, asserting a 200.
fn image(app: &iipsrv_server::handler::App, path: &str) -> Raster {
    let r = call(app, path);
    assert_eq!(r.status, 200, "{path}: {}", text(&r));
    decode_image(&r.body)
}

/// The OBJ answer of Bits-per-channel and Min-Max-sample-values of `id`.
fn obj(app: &iipsrv_server::handler::App, id: &str) -> String {
    text(&call(
        app,
        &format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&OBJ=Bits-per-channel&OBJ=Min-Max-sample-values"),
    ))
}

/// Makes the 1, 2 and 4-bit files: vips pyramids (uncompressed: libvips 8.14 crashes
/// compressing sub-byte pyramids), striped single-level files, and their LZW, deflate and
/// PackBits copies by tiffcp. Returns the pyramid names and the striped names.
fn make_sub_byte(dir: &Path, png: &Path) -> (Vec<String>, Vec<String>) {
    let (mut pyramids, mut flat) = (Vec::new(), Vec::new());
    for bits in ["1", "2", "4"] {
        let pyr = format!("g{bits}.tif");
        let depth = ["--bitdepth", bits, "--compression", "none"];
        vips_tiff(
            dir,
            png,
            &pyr,
            &[&depth[..], &["--tile-width", "128", "--tile-height", "128"]].concat(),
        );
        let strips = format!("s{bits}.tif");
        let out = dir.join(&strips).to_string_lossy().to_string();
        vips(&[&["tiffsave", &png.to_string_lossy(), &out][..], &depth].concat());
        for (name, list) in [(pyr, &mut pyramids), (strips, &mut flat)] {
            for c in ["lzw", "zip", "packbits"] {
                let copy = name.replace(".tif", &format!("-{c}.tif"));
                tiffcp(dir, &name, &copy, &["-c", c]);
                list.push(copy);
            }
            list.push(name);
        }
    }
    (pyramids, flat)
}

#[test]
fn one_two_and_four_bit_files_serve_what_libvips_reads() {
    let dir = tempdir();
    let png = dir.path().join("grey.png");
    write_png(&grey(), &png);
    let (pyramids, flat) = make_sub_byte(dir.path(), &png);
    let app = app(dir.path(), &[]);
    for id in pyramids.iter().chain(&flat) {
        let full = vips_decode(dir.path(), id, 0);
        let got = image(&app, &format!("/iiif/{id}/full/max/0/default.png"));
        assert_eq!(got, full, "{id} full resolution");
        let got = image(&app, &format!("/iiif/{id}/17,33,300,200/max/0/default.png"));
        assert_eq!(got, full.crop(17, 33, 300, 200), "{id} region");
        let obj = obj(&app, id);
        let bits = &id[1..2];
        assert!(obj.contains(&format!("Bits-per-channel:{bits}")), "{obj}");
        assert!(obj.contains("Min-Max-sample-values: 0  255"), "{obj}");
    }
    // reduced levels: the pyramid's own (page 2 is 150 x 100), the flat files' made here
    for id in &pyramids {
        let got = image(&app, &format!("/iiif/{id}/full/150,/0/default.png"));
        let err = mean_error(&got, &vips_decode(dir.path(), id, 2));
        assert!(err <= 1.0, "{id} level 2: mean error {err}");
    }
    for id in &flat {
        let got = image(&app, &format!("/iiif/{id}/full/150,/0/default.png"));
        let want = reference(&vips_decode(dir.path(), id, 0), whole(), 150, 100);
        let err = mean_error(&got, &want);
        assert!(err <= 4.0, "{id} at 150 px: mean error {err}");
    }
}

#[test]
fn min_is_white_bilevel_and_fax_compression() {
    let dir = tempdir();
    let png = dir.path().join("grey.png");
    write_png(&grey(), &png);
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    let bilevel = ["--bitdepth", "1", "--compression", "none"];
    vips_tiff(dir.path(), &png, "black0.tif", &bilevel);
    vips_tiff(
        dir.path(),
        &png,
        "white0.tif",
        &[&bilevel[..], &["--miniswhite"]].concat(),
    );
    let info = Command::new("tiffinfo").arg(p("white0.tif")).output();
    let info = String::from_utf8_lossy(&info.expect("tiffinfo").stdout).to_string();
    assert!(info.contains("min-is-white"), "{info}");
    let fax = [
        ("g4.tif", "g4"),
        ("g3.tif", "g3"),
        ("g3-2d-fill.tif", "g3:2d:fill"),
    ];
    for (name, c) in fax {
        tiffcp(dir.path(), "black0.tif", name, &["-c", c]);
    }
    vips(
        &[
            &["tiffsave", &p("grey.png"), &p("strips.tif")][..],
            &bilevel,
        ]
        .concat(),
    );
    tiffcp(
        dir.path(),
        "strips.tif",
        "g4-strips.tif",
        &["-c", "g4", "-r", "64"],
    );
    let app = app(dir.path(), &[]);
    let black0 = image(&app, "/iiif/black0.tif/full/max/0/default.png");
    let white0 = image(&app, "/iiif/white0.tif/full/max/0/default.png");
    assert_eq!(white0, black0, "MinIsWhite is inverted as it is read");
    assert_eq!(white0, vips_decode(dir.path(), "white0.tif", 0));
    // CCITT fax copies by tiffcp: the same pixels, every level
    for (id, _) in fax {
        let info = text(&call(&app, &format!("/iiif/{id}/info.json")));
        assert_eq!(
            info,
            text(&call(&app, "/iiif/black0.tif/info.json")).replace("black0", &id[..id.len() - 4]),
            "{id}"
        );
        let got = image(&app, &format!("/iiif/{id}/full/max/0/default.png"));
        assert_eq!(got, black0, "{id}");
        let got = image(&app, &format!("/iiif/{id}/full/150,/0/default.png"));
        let want = image(&app, "/iiif/black0.tif/full/150,/0/default.png");
        assert_eq!(got, want, "{id} level 2");
    }
    let got = image(&app, "/iiif/g4-strips.tif/full/max/0/default.png");
    assert_eq!(
        got,
        vips_decode(dir.path(), "strips.tif", 0),
        "striped Group 4"
    );
    assert_eq!(obj(&app, "g4.tif"), obj(&app, "black0.tif"));
}

/// `values` (rows of `width` samples) packed at `bits` bits, most significant bit first,
/// each row padded to a whole byte (TIFF 6.0, section 2).
fn pack(values: &[u16], width: usize, bits: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for row in values.chunks(width) {
        let (mut acc, mut have) = (0u64, 0u32);
        for &v in row {
            acc = (acc << bits) | u64::from(v);
            have += bits;
            while have >= 8 {
                have -= 8;
                out.push((acc >> have) as u8);
            }
        }
        if have > 0 {
            out.push((acc << (8 - have)) as u8);
        }
    }
    out
}

/// One level to write: width, height and samples.
struct Plane {
    width: u32,
    height: u32,
    values: Vec<u16>,
}

impl Plane {
    /// The samples of the box at (x, y) of `w` x `h`, zeros past the edges.
    fn block(&self, x: u32, y: u32, w: u32, h: u32) -> Vec<u16> {
        let at = |xx: u32, yy: u32| {
            let inside = xx < self.width && yy < self.height;
            let i = yy as usize * self.width as usize + xx as usize;
            if inside {
                self.values[i]
            } else {
                0
            }
        };
        (y..y + h)
            .flat_map(|yy| (x..x + w).map(move |xx| at(xx, yy)))
            .collect()
    }

    /// Its tiles of `tile` px (or strips of 16 rows when `tile` is None), packed.
    fn chunks(&self, bits: u32, tile: Option<u32>) -> Vec<Vec<u8>> {
        let Some(t) = tile else {
            let strips = (0..self.height).step_by(16);
            return strips
                .map(|y| {
                    let rows = 16.min(self.height - y);
                    pack(
                        &self.block(0, y, self.width, rows),
                        self.width as usize,
                        bits,
                    )
                })
                .collect();
        };
        let (across, down) = (self.width.div_ceil(t), self.height.div_ceil(t));
        (0..down)
            .flat_map(|ty| (0..across).map(move |tx| (tx, ty)))
            .map(|(tx, ty)| pack(&self.block(tx * t, ty * t, t, t), t as usize, bits))
            .collect()
    }
}

/// A little-endian grey TIFF of the `planes` (a pyramid, largest first: an IFD chain, the
/// reduced levels marked as such), uncompressed, `bits` per sample, tiled or in strips.
fn packed_tiff(planes: &[Plane], bits: u16, tile: Option<u32>) -> Vec<u8> {
    let mut b = b"II\x2a\0\0\0\0\0".to_vec();
    let mut link = 4;
    for (k, plane) in planes.iter().enumerate() {
        let chunks = plane.chunks(u32::from(bits), tile);
        let mut offsets = Vec::new();
        for c in &chunks {
            offsets.push(b.len() as u32);
            b.extend(c);
        }
        let counts: Vec<u32> = chunks.iter().map(|c| c.len() as u32).collect();
        let tables = [offsets, counts].map(|t| {
            let at = b.len() as u32;
            b.extend(t.iter().flat_map(|v| v.to_le_bytes()));
            (t.len() as u32, if t.len() == 1 { t[0] } else { at })
        });
        b.resize(b.len().next_multiple_of(2), 0);
        let ifd = b.len() as u32;
        b[link..link + 4].copy_from_slice(&ifd.to_le_bytes());
        let entries = directory(plane, bits, tile, k > 0, tables);
        b.extend((entries.len() as u16).to_le_bytes());
        for (tag, kind, count, value) in entries {
            b.extend(tag.to_le_bytes());
            b.extend(kind.to_le_bytes());
            b.extend(count.to_le_bytes());
            b.extend(value.to_le_bytes());
        }
        link = b.len();
        b.extend(0u32.to_le_bytes());
    }
    b
}

/// The directory entries (tag, type, count, value) of one level, in tag order; `tables`
/// are the (count, value-or-offset) of its offsets and byte counts.
fn directory(
    plane: &Plane,
    bits: u16,
    tile: Option<u32>,
    reduced: bool,
    [offsets, counts]: [(u32, u32); 2],
) -> Vec<(u16, u16, u32, u32)> {
    let (short, long) = (3, 4);
    let mut e = vec![
        (254, long, 1, u32::from(reduced)),
        (256, long, 1, plane.width),
        (257, long, 1, plane.height),
        (258, short, 1, u32::from(bits)),
        (259, short, 1, 1),
        (262, short, 1, 1),
    ];
    match tile {
        None => e.extend([
            (273, long, offsets.0, offsets.1),
            (277, short, 1, 1),
            (278, long, 1, 16),
            (279, long, counts.0, counts.1),
        ]),
        Some(t) => e.extend([
            (277, short, 1, 1),
            (322, long, 1, t),
            (323, long, 1, t),
            (324, long, offsets.0, offsets.1),
            (325, long, counts.0, counts.1),
        ]),
    }
    e
}

/// The 8-bit `src` at `bits` bits: v × (2^bits - 1) / 255, rounded.
fn widen(src: &Raster, bits: u16) -> Plane {
    let max = f64::from((1u32 << bits) - 1);
    Plane {
        width: src.width,
        height: src.height,
        values: src
            .data
            .iter()
            .map(|&v| (f64::from(v) * max / 255.0).round() as u16)
            .collect(),
    }
}

/// 12 and 14-bit pyramids (tiled) and single-level striped files packed here, and their
/// LZW and deflate copies by tiffcp, each checked by tiffinfo. Returns (name, bits,
/// pyramid) for each.
fn make_wide(dir: &Path, src: &Raster) -> Vec<(String, u16, bool)> {
    let half = reference(src, whole(), W / 2, H / 2);
    let mut files = Vec::new();
    for bits in [12u16, 14] {
        let planes = [widen(src, bits), widen(&half, bits)];
        for (kind, tile, levels) in [("t", Some(128), &planes[..]), ("s", None, &planes[..1])] {
            let name = format!("{kind}{bits}.tif");
            let bytes = packed_tiff(levels, bits, tile);
            std::fs::write(dir.join(&name), bytes).expect("write");
            for c in ["lzw", "zip"] {
                let copy = name.replace(".tif", &format!("-{c}.tif"));
                tiffcp(dir, &name, &copy, &["-c", c]);
                files.push((copy, bits, tile.is_some()));
            }
            files.push((name, bits, tile.is_some()));
        }
    }
    for (name, bits, _) in &files {
        let out = Command::new("tiffinfo").arg(dir.join(name)).output();
        let out = out.expect("tiffinfo");
        let info = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}");
        assert!(info.contains(&format!("Bits/Sample: {bits}")), "{info}");
    }
    files
}

#[test]
fn twelve_and_fourteen_bit_samples_scale_through_their_range() {
    let dir = tempdir();
    let src = grey();
    let files = make_wide(dir.path(), &src);
    let app = app(dir.path(), &[]);
    for (id, bits, pyramid) in &files {
        let got = image(&app, &format!("/iiif/{id}/full/max/0/default.png"));
        let err = mean_error(&got, &src);
        assert!(err <= 1.0, "{id}: mean error {err}");
        let got = image(
            &app,
            &format!("/iiif/{id}/300,256,256,144/max/0/default.png"),
        );
        let err = mean_error(&got, &src.crop(300, 256, 256, 144));
        assert!(err <= 1.0, "{id} region: mean error {err}");
        let max = (1u32 << bits) - 1;
        let obj = obj(&app, id);
        assert!(obj.contains(&format!("Bits-per-channel:{bits}")), "{obj}");
        assert!(obj.contains(&format!(": 0  {max}")), "{obj}");
        if *pyramid {
            let info = call(&app, &format!("/iiif/{id}/info.json"));
            let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
            let factors = &j["tiles"][0]["scaleFactors"];
            assert_eq!(factors, &serde_json::json!([1, 2]), "{id}");
            let got = image(&app, &format!("/iiif/{id}/full/300,/0/default.png"));
            let err = mean_error(&got, &reference(&src, whole(), 300, 200));
            assert!(err <= 1.0, "{id} level 1: mean error {err}");
        }
    }
    // SPECTRA divides by the type's range, as for 16-bit
    let spectra = text(&call(
        &app,
        "/fcgi-bin/iipsrv.fcgi?FIF=t12.tif&SPECTRA=1,0,10,10",
    ));
    let v = widen(&src, 12).values[10 * W as usize + 10];
    let want = format!("{:.6}", f64::from(v) / 4095.0);
    assert!(spectra.contains(&want), "{spectra} lacks {want}");
}

/// The whole image as a region.
fn whole() -> Rect {
    Rect {
        x: 0,
        y: 0,
        w: W,
        h: H,
    }
}
