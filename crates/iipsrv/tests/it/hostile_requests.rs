//! Hostile requests in every protocol: traversal in all its spellings, symlinks out of the
//! image directory, NUL bytes, overlong ids, giant and malformed numbers, thousands of
//! commands. Each must be a clean 4xx with a one-line reason that shows no filesystem path,
//! and the server must go on serving.

use crate::harness::{app, call, tempdir, text};

/// Identifiers that try to leave the image directory or break the parser.
fn hostile_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "../secret.tif",
        "%2e%2e/secret.tif",
        "%2E%2E%2Fsecret.tif",
        "..%2fsecret.tif",
        "..%5Csecret.tif",
        "..\\secret.tif",
        "sub/..%2F..%2Fsecret.tif",
        "%252e%252e%252fsecret.tif",
        "....//secret.tif",
        "link.tif",
        "linkdir/a.tif",
        "a.tif%00.jpg",
        "%00",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "%2F%2Fetc%2Fpasswd",
        "..",
        ".",
        "%ff%fe",
        "a.tif/../../secret.tif",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ids.push("x".repeat(5000));
    ids.push(format!("{}secret.tif", "../".repeat(200)));
    ids
}

/// The same identifier through the four protocols.
fn through_every_protocol(id: &str) -> Vec<String> {
    vec![
        format!("/iiif/{id}/info.json"),
        format!("/iiif/{id}/full/max/0/default.jpg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&OBJ=Max-size"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&JTL=0,0"),
        format!("/deepzoom/{id}.dzi"),
        format!("/deepzoom/{id}_files/0/0_0.jpg"),
        format!("/zoomify/{id}/ImageProperties.xml"),
        format!("/zoomify/{id}/TileGroup0/0-0-0.jpg"),
    ]
}

/// Requests with hostile numbers and sizes on a good image.
fn hostile_numbers() -> Vec<String> {
    let iip = "/fcgi-bin/iipsrv.fcgi?FIF=a.tif";
    let mut v: Vec<String> = [
        "WID=4294967295&CVT=jpeg",
        "WID=99999999999999999999&CVT=jpeg",
        "HEI=-5&CVT=jpeg",
        "WID=NaN&CVT=jpeg",
        "RGN=NaN,0,1,1&CVT=jpeg",
        "RGN=-1,-1,-1,-1&CVT=jpeg",
        "RGN=2,2,1,1&CVT=jpeg",
        "JTL=4294967295,0",
        "JTL=0,18446744073709551615",
        "JTL=-1,-1",
        "QLT=1000&CVT=jpeg",
        "GAM=inf&CVT=jpeg",
        "CNT=-NaN&CVT=jpeg",
        "CTW=[1e300,1e300;]&CVT=jpeg",
        "CNV=[1,2]&CVT=jpeg",
        "SHD=999999999999,1&CVT=jpeg",
        "MINMAX=99999999999:0,1&CVT=jpeg",
        "SPECTRA=0,0,99999999,99999999",
        "PFL=0:0,0-99999999,0",
        "TIL=0,0-18446744073709551615",
        "SDS=-2147483648,2147483647&CVT=jpeg",
    ]
    .iter()
    .map(|q| format!("{iip}&{q}"))
    .collect();
    v.extend(
        [
            "/iiif/a.tif/full/99999999,/0/default.jpg",
            "/iiif/a.tif/full/^99999999,99999999/0/default.jpg",
            "/iiif/a.tif/full/pct:99999999/0/default.jpg",
            "/iiif/a.tif/0,0,0,0/max/0/default.jpg",
            "/iiif/a.tif/-1,0,10,10/max/0/default.jpg",
            "/iiif/a.tif/full/max/-90/default.jpg",
            "/iiif/a.tif/full/max/NaN/default.jpg",
            "/iiif/a.tif/pct:NaN,0,10,10/max/0/default.jpg",
            "/deepzoom/a.tif_files/4294967295/0_0.jpg",
            "/deepzoom/a.tif_files/5/4294967295_4294967295.jpg",
            "/zoomify/a.tif/TileGroup0/4294967295-0-0.jpg",
            "/zoomify/a.tif/TileGroup0/0--1-0.jpg",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    v.push(format!("{iip}{}", "&OBJ=Max-size".repeat(5000)));
    v.push(format!("{iip}&CTW=[{}]&CVT=jpeg", "1,".repeat(20000)));
    v
}

#[test]
fn hostile_requests_are_clean_errors_in_every_protocol() {
    let dir = tempdir();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).expect("mkdir");
    iipsrv_server::demo::write_demo(&images.join("a.tif"), 600, 400).expect("image");
    iipsrv_server::demo::write_demo(&dir.path().join("secret.tif"), 300, 200).expect("outside");
    std::os::unix::fs::symlink(dir.path().join("secret.tif"), images.join("link.tif"))
        .expect("symlink");
    std::os::unix::fs::symlink(dir.path(), images.join("linkdir")).expect("symlink");
    let a = app(&images, &[]);
    let secret = dir.path().to_string_lossy().to_string();
    let mut paths: Vec<String> = hostile_ids()
        .iter()
        .flat_map(|id| through_every_protocol(id))
        .collect();
    let traversal = paths.len();
    paths.extend(hostile_numbers());
    let mut clean = 0;
    for (i, path) in paths.iter().enumerate() {
        let r = call(&a, path);
        let body = text(&r);
        // Every refusal is a 4xx with one line of text; traversal is always refused, while
        // numbers the original clamps (a huge QLT, an SDS on a single image) may still
        // answer an image.
        let refused = (400..500).contains(&r.status) && body.lines().count() <= 1;
        let image = r.status == 200 && i >= traversal;
        assert!(refused || image, "{path}: {} {body}", r.status);
        // The id asked for may be echoed; the server's own paths never are.
        assert!(!body.contains(&secret), "{path} leaks: {body}");
        clean += 1;
    }
    assert_eq!(
        call(&a, "/iiif/a.tif/info.json").status,
        200,
        "still serving"
    );
    eprintln!(
        "hostile requests: {} tried ({traversal} traversal forms across 4 protocols), {clean} handled cleanly",
        paths.len()
    );
}
