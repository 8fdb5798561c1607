//! The access policy (AUTH_POLICY) through the handler and over sockets: the example
//! policy of examples/auth-policy.toml on images made here; every rule kind through every
//! protocol; the IIIF Authorization Flow 2.0 services checked against the spec's shapes;
//! hostile cases (expired, tampered and foreign tokens and signatures, another rule's
//! cookie, a substitute asked for more, memcached filled by an authorised caller).

use crate::harness::*;
use iipsrv_server::handler::{App, Method, Request, Response};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The example policy.
fn example_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/auth-policy.toml")
}

/// The secrets of the example policy.
const SIGNING: &[u8] = b"change me: a long random shared secret";
const HS256: &[u8] = b"change me: another long random secret of 32+ characters";
const AUDIENCE: &str = "https://images.example.org";

/// A directory with one 1200x900 image per rule of the example policy and an unreadable
/// "image" under the restricted rule (opening it would fail with 500).
fn images() -> tempfile::TempDir {
    let dir = tempdir();
    for id in [
        "public/o.tif",
        "manuscripts/m.tif",
        "donor/d.tif",
        "patients/p.tif",
        "staff/s.tif",
        "plain.tif",
    ] {
        let path = dir.path().join(id);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        iipsrv_server::demo::write_demo(&path, 1200, 900).expect("image");
    }
    std::fs::write(dir.path().join("donor/broken.tif"), b"II*\0garbage").expect("broken");
    dir
}

fn policy_app(dir: &Path) -> App {
    let policy = example_policy();
    app(
        dir,
        &[
            "--auth-policy",
            policy.to_str().expect("path"),
            "--trusted-proxies",
            "127.0.0.1",
            "--uri-map",
            "iiif=>IIIF,deepzoom=>DeepZoom,zoomify=>Zoomify,fcgi-bin/iipsrv.fcgi=>IIP",
        ],
    )
}

/// A GET from `peer` with extra headers.
fn from(peer: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut r = Request::get(path);
    r.peer = peer.parse().ok();
    for (n, v) in headers {
        r = r.with_header(n, v);
    }
    r
}

const OUTSIDER: &str = "203.0.113.9";

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).expect("json")
}

/// Every kind of request that reveals an image's pixels or metadata, for id `id`.
fn every_protocol(id: &str) -> Vec<String> {
    vec![
        format!("/iiif/{id}/info.json"),
        format!("/iiif/{id}/full/100,/0/default.jpg"),
        format!("/iiif/{id}"),
        format!("/deepzoom/{id}.dzi"),
        format!("/deepzoom/{id}_files/8/0_0.jpg"),
        format!("/zoomify/{id}/ImageProperties.xml"),
        format!("/zoomify/{id}/TileGroup0/0-0-0.jpg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&OBJ=IIP,1.0&OBJ=Max-size"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&JTL=0,0"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&WID=100&CVT=jpeg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&SPECTRA=0,0,1,1"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&PFL=0:0,1-10,1"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&TIL=0,0"),
        format!("/fcgi-bin/iipsrv.fcgi?IIIF=/{id}/full/100,/0/default.jpg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&DeepZoom={id}_files/8/0_0.jpg"),
        format!("/viewer/{id}"),
    ]
}

#[test]
fn the_example_policy_loads_and_a_bad_one_stops_the_start() {
    let config = iipsrv_server::settings::Config::from_args([
        "iipsrv",
        "--auth-policy",
        example_policy().to_str().expect("path"),
    ])
    .expect("config");
    let policy = config.settings().expect("settings").access.expect("policy");
    let names: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["rule1", "reading-room", "donor-terms", "ward", "staff"]
    );

    let dir = tempdir();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rule]]\nids = \"a\"\naccess = \"secret\"\n").expect("write");
    let config = iipsrv_server::settings::Config::from_args([
        "iipsrv",
        "--auth-policy",
        bad.to_str().expect("path"),
    ])
    .expect("config");
    let e = config.settings().expect_err("bad policy");
    assert_eq!(e.variable, "AUTH_POLICY");
    assert!(
        e.reason.contains("AUTH_POLICY") && e.reason.contains("rule 1"),
        "{e}"
    );
    // and the binary says so and stops
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_iipsrv"))
        .args(["--http", "127.0.0.1:0"])
        .env("AUTH_POLICY", &bad)
        .env("FILESYSTEM_PREFIX", dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUTH_POLICY"));
}

#[test]
fn restricted_ids_answer_401_everywhere_the_same_for_missing_and_unreadable_ones() {
    let dir = images();
    let app = policy_app(dir.path());
    for id in ["donor/d.tif", "donor/missing.tif", "donor/broken.tif"] {
        for path in every_protocol(id) {
            let r = app.handle(&from(OUTSIDER, &path, &[]));
            assert_eq!(r.status, 401, "{path}: {}", text(&r));
            assert!(r.header("www-authenticate").is_some(), "{path}");
            if !path.ends_with("info.json") {
                assert_eq!(
                    text(&r),
                    "access to this image needs authorisation",
                    "{path}"
                );
            }
        }
    }
    // the info.json of a restricted id: the same 401 document, its services, no size
    let info = |id: &str| app.handle(&from(OUTSIDER, &format!("/iiif/{id}/info.json"), &[]));
    let (there, missing) = (
        json_of(&info("donor/d.tif")),
        json_of(&info("donor/missing.tif")),
    );
    assert!(there.get("width").is_none());
    let strip = |v: &Value| {
        v.to_string()
            .replace("donor%2Fd.tif", "X")
            .replace("donor%2Fmissing.tif", "X")
            .replace("donor/d.tif", "X")
            .replace("donor/missing.tif", "X")
    };
    assert_eq!(strip(&there), strip(&missing));
    assert_eq!(there["service"][0]["type"], "AuthProbeService2");
    assert_eq!(there["service"][0]["service"][0]["profile"], "active");
    // an open id is not touched by the policy; a missing open id is a 404
    assert_eq!(
        app.handle(&from(
            OUTSIDER,
            "/iiif/plain.tif/full/100,/0/default.jpg",
            &[]
        ))
        .status,
        200
    );
    assert_eq!(
        app.handle(&from(OUTSIDER, "/iiif/public/o.tif/info.json", &[]))
            .status,
        200
    );
    assert_eq!(
        app.handle(&from(OUTSIDER, "/iiif/public/nothing.tif/info.json", &[]))
            .status,
        404
    );
    let open_info = json_of(&app.handle(&from(OUTSIDER, "/iiif/plain.tif/info.json", &[])));
    assert!(
        open_info.get("service").is_none(),
        "no auth services on open images"
    );
}

#[test]
fn every_spelling_of_a_restricted_id_is_restricted() {
    let dir = images();
    let app = policy_app(dir.path());
    for id in [
        "/donor/d.tif",
        "donor//d.tif",
        "./donor/d.tif",
        "donor/./d.tif",
    ] {
        for path in every_protocol(id) {
            let r = app.handle(&from(OUTSIDER, &path, &[]));
            assert_eq!(r.status, 401, "{path}: {}", text(&r));
        }
    }
    let iip = "/fcgi-bin/iipsrv.fcgi?FIF=/donor/d.tif&WID=100&CVT=jpeg";
    assert_eq!(app.handle(&from(OUTSIDER, iip, &[])).status, 401, "{iip}");
    // a page or associated image of a restricted image
    let page = "/iiif/donor/d.tif;label/full/100,/0/default.jpg";
    assert_eq!(app.handle(&from(OUTSIDER, page, &[])).status, 401, "{page}");
}

#[test]
fn kiosk_addresses_see_everything_in_every_protocol() {
    let dir = images();
    let app = policy_app(dir.path());
    for path in every_protocol("patients/p.tif") {
        let inside = app.handle(&from("192.0.2.44", &path, &[]));
        let want = if path == "/iiif/patients/p.tif" {
            303
        } else {
            200
        };
        assert_eq!(inside.status, want, "{path}: {}", text(&inside));
        assert_eq!(
            app.handle(&from(OUTSIDER, &path, &[])).status,
            401,
            "{path}"
        );
        // an X-Forwarded-For is believed from a trusted proxy only
        let xff = [("x-forwarded-for", "10.20.1.2")];
        assert_eq!(
            app.handle(&from("127.0.0.1", &path, &xff)).status,
            want,
            "{path}"
        );
        assert_eq!(
            app.handle(&from(OUTSIDER, &path, &xff)).status,
            401,
            "{path}"
        );
        // the client writes the left of the header; the trusted proxy appended the right
        let forged = [("x-forwarded-for", "10.20.1.2, 203.0.113.7")];
        assert_eq!(
            app.handle(&from("127.0.0.1", &path, &forged)).status,
            401,
            "{path}: a forged X-Forwarded-For"
        );
    }
    for path in [
        "/iiif/patients/p.tif/full/200,/0/default.jpg",
        "/deepzoom/patients/p.tif.dzi",
        "/iiif/patients/p.tif/info.json",
    ] {
        let r = app.handle(&from("192.0.2.44", path, &[]));
        assert_eq!(
            r.header("cache-control"),
            Some("private, no-cache"),
            "{path}: protected answers are private"
        );
    }
    let open = app.handle(&from(
        "192.0.2.44",
        "/iiif/plain.tif/full/200,/0/default.jpg",
        &[],
    ));
    assert_eq!(open.header("cache-control"), Some("max-age=86400"));
}

#[test]
fn external_identities_count_from_trusted_proxies_only() {
    let dir = images();
    let app = policy_app(dir.path());
    let user = [("x-remote-user", "ana")];
    for path in every_protocol("staff/s.tif") {
        let want = if path == "/iiif/staff/s.tif" {
            303
        } else {
            200
        };
        assert_eq!(
            app.handle(&from("127.0.0.1", &path, &user)).status,
            want,
            "{path}"
        );
        assert_eq!(
            app.handle(&from(OUTSIDER, &path, &user)).status,
            401,
            "{path}"
        );
        assert_eq!(
            app.handle(&from("127.0.0.1", &path, &[])).status,
            401,
            "{path}"
        );
    }
}

/// Paths at or under 400 pixels on the long side of a 1200x900 image, and above it.
fn degraded_cases(id: &str) -> (Vec<String>, Vec<String>) {
    let small = vec![
        format!("/iiif/{id}/full/400,/0/default.jpg"),
        format!("/iiif/{id}/full/!160,160/0/default.jpg"),
        format!("/iiif/{id}/0,0,1200,900/300,/0/default.jpg"),
        format!("/deepzoom/{id}_files/9/0_0.jpg"),
        format!("/zoomify/{id}/TileGroup0/1-0-0.jpg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&JTL=1,0"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&WID=400&CVT=jpeg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&SPECTRA=1,0,1,1"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&PFL=1:0,1-10,1"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&TIL=1,0"),
    ];
    let large = vec![
        format!("/iiif/{id}/full/max/0/default.jpg"),
        format!("/iiif/{id}/full/401,/0/default.jpg"),
        format!("/iiif/{id}/0,0,256,256/256,/0/default.jpg"),
        format!("/deepzoom/{id}_files/11/0_0.jpg"),
        format!("/zoomify/{id}/TileGroup0/3-0-0.jpg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&JTL=3,0"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&WID=1000&CVT=jpeg"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&SPECTRA=3,0,1,1"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&PFL=3:0,1-10,1"),
        format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&TIL=3,0"),
        format!("/fcgi-bin/iipsrv.fcgi?IIIF=/{id}/full/max/0/default.jpg"),
    ];
    (small, large)
}

#[test]
fn degraded_rules_give_small_answers_and_refuse_large_ones_until_login() {
    let dir = images();
    let app = policy_app(dir.path());
    let (small, large) = degraded_cases("manuscripts/m.tif");
    for path in &small {
        let r = app.handle(&from(OUTSIDER, path, &[]));
        assert_eq!(r.status, 200, "{path}: {}", text(&r));
    }
    for path in &large {
        assert_eq!(app.handle(&from(OUTSIDER, path, &[])).status, 401, "{path}");
    }
    // metadata stays visible: info.json, .dzi, OBJ
    for path in [
        "/iiif/manuscripts/m.tif/info.json",
        "/deepzoom/manuscripts/m.tif.dzi",
    ] {
        assert_eq!(app.handle(&from(OUTSIDER, path, &[])).status, 200, "{path}");
    }
    let cookie = login(&app, "reader", "reading-room").expect("login");
    let with = [("cookie", cookie.as_str())];
    for path in small.iter().chain(&large) {
        let r = app.handle(&from(OUTSIDER, path, &with));
        assert_eq!(r.status, 200, "{path} after login: {}", text(&r));
    }
    let full = app.handle(&from(
        OUTSIDER,
        "/iiif/manuscripts/m.tif/full/max/0/default.jpg",
        &with,
    ));
    let img = decode_image(&full.body);
    assert_eq!((img.width, img.height), (1200, 900));
}

/// Logs in to the reading room through its access service: the cookie pair to send.
fn login(app: &App, user: &str, password: &str) -> Option<String> {
    let mut post = from(OUTSIDER, "/iiif/_auth/access/reading-room", &[]);
    post.method = Method::Post;
    post.body = format!("user={user}&password={password}").into();
    let r = app.handle(&post);
    let set = r.header("set-cookie")?;
    assert_eq!(r.status, 200);
    Some(set.split(';').next()?.to_string())
}

#[test]
fn the_login_page_sets_a_scoped_secure_cookie_and_logout_ends_it() {
    let dir = images();
    let app = policy_app(dir.path());
    let page = app.handle(&from(
        OUTSIDER,
        "/iiif/_auth/access/reading-room?origin=https://v.example",
        &[],
    ));
    assert_eq!(page.status, 200);
    let html = text(&page);
    assert!(
        html.contains("<form method=\"post\">") && html.contains("name=\"password\""),
        "{html}"
    );
    assert!(html.contains("Full resolution for readers") && html.contains("Log in"));
    assert!(login(&app, "reader", "wrong").is_none());
    assert!(login(&app, "nobody", "reading-room").is_none());

    let mut post = from(OUTSIDER, "/iiif/_auth/access/reading-room", &[]);
    post.method = Method::Post;
    post.body = "user=reader&password=reading-room".into();
    let r = app.handle(&post);
    let cookies: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| *n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    let paths: Vec<&str> = cookies
        .iter()
        .filter_map(|c| c.split("; ").find_map(|p| p.strip_prefix("Path=")))
        .collect();
    assert_eq!(
        paths,
        ["/iiif", "/deepzoom", "/zoomify", "/fcgi-bin/iipsrv.fcgi"]
    );
    for c in &cookies {
        assert!(c.starts_with("iipsrv-auth-reading-room="), "{c}");
        for attr in [
            "; Secure",
            "; HttpOnly",
            "; SameSite=None",
            "; Max-Age=28800",
        ] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }
    assert!(text(&r).contains("window.close()"));
    let cookie = cookies[0].split(';').next().expect("pair").to_string();
    let with = [("cookie", cookie.as_str())];
    let big = "/iiif/manuscripts/m.tif/full/max/0/default.jpg";
    assert_eq!(app.handle(&from(OUTSIDER, big, &with)).status, 200);

    // a cookie of this rule does not open another rule's images
    let value = cookie.split_once('=').expect("value").1;
    let other = format!("iipsrv-auth-donor-terms={value}");
    let r = app.handle(&from(
        OUTSIDER,
        "/iiif/donor/d.tif/full/100,/0/default.jpg",
        &[("cookie", &other)],
    ));
    assert_eq!(r.status, 401);

    let out = app.handle(&from(OUTSIDER, "/iiif/_auth/logout/reading-room", &with));
    assert_eq!(out.status, 200);
    assert!(out
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(
        app.handle(&from(OUTSIDER, big, &with)).status,
        401,
        "the session is gone"
    );
}

#[test]
fn accepting_terms_opens_a_restricted_rule() {
    let dir = images();
    let app = policy_app(dir.path());
    let page = text(&app.handle(&from(OUTSIDER, "/iiif/_auth/access/donor-terms", &[])));
    assert!(
        page.contains("I accept") && page.contains("for study only"),
        "{page}"
    );
    assert!(!page.contains("password"));
    let mut post = from(OUTSIDER, "/iiif/_auth/access/donor-terms", &[]);
    post.method = Method::Post;
    let r = app.handle(&post);
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_string();
    for path in every_protocol("donor/d.tif") {
        let want = if path == "/iiif/donor/d.tif" {
            303
        } else {
            200
        };
        let r = app.handle(&from(OUTSIDER, &path, &[("cookie", &cookie)]));
        assert_eq!(r.status, want, "{path}: {}", text(&r));
    }
}

/// The message a token service page posts, and the origin it posts to.
fn posted(r: &Response) -> Option<(Value, String)> {
    let html = text(r);
    let call = html.split("window.parent.postMessage(").nth(1)?;
    let args = call.rsplit_once(");")?.0;
    let (message, origin) = args.rsplit_once(", ")?;
    Some((
        serde_json::from_str(message).ok()?,
        serde_json::from_str(origin).ok()?,
    ))
}

#[test]
fn the_flow_of_a_iiif_client_probe_token_probe() {
    let dir = images();
    let app = policy_app(dir.path());
    // info.json (v3) carries the services in the spec's shape
    let info = json_of(&app.handle(&from(OUTSIDER, "/iiif/manuscripts%2Fm.tif/info.json", &[])));
    assert_eq!(
        info["@context"],
        json!([
            "http://iiif.io/api/auth/2/context.json",
            "http://iiif.io/api/image/3/context.json"
        ])
    );
    let base = "http://localhost/iiif/_auth";
    let probe = &info["service"][0];
    assert_eq!(probe["id"], format!("{base}/probe/manuscripts%2Fm.tif"));
    assert_eq!(probe["type"], "AuthProbeService2");
    let access = &probe["service"][0];
    assert_eq!(access["type"], "AuthAccessService2");
    assert_eq!(access["id"], format!("{base}/access/reading-room"));
    assert_eq!(access["profile"], "active");
    assert_eq!(
        access["label"],
        json!({"en": ["Log in to the reading room"]})
    );
    assert_eq!(
        access["heading"],
        json!({"en": ["Full resolution for readers"]})
    );
    assert_eq!(access["confirmLabel"], json!({"en": ["Log in"]}));
    assert!(access["note"]["en"][0].as_str().is_some());
    assert_eq!(
        access["service"][0],
        json!({"id": format!("{base}/token/reading-room"), "type": "AuthAccessTokenService2"})
    );
    assert_eq!(access["service"][1]["type"], "AuthLogoutService2");
    assert_eq!(
        access["service"][1]["id"],
        format!("{base}/logout/reading-room")
    );
    // v2 carries the same block with the auth context on it
    let v2 = json_of(&app.handle(&from(
        OUTSIDER,
        "/iiif/2/manuscripts%2Fm.tif/info.json",
        &[],
    )));
    assert_eq!(
        v2["service"][0]["@context"],
        "http://iiif.io/api/auth/2/context.json"
    );
    assert_eq!(v2["service"][0]["type"], "AuthProbeService2");

    // the probe, anonymous: 401 in the body (HTTP 200), the substitute, heading and note
    let probe_path = "/iiif/_auth/probe/manuscripts%2Fm.tif";
    let mut preflight = from(
        OUTSIDER,
        probe_path,
        &[("origin", "https://viewer.example")],
    );
    preflight.method = Method::Options;
    let r = app.handle(&preflight);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-allow-headers")
        .is_some_and(|h| h.contains("Authorization")));
    let r = app.handle(&from(OUTSIDER, probe_path, &[]));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let result = json_of(&r);
    assert_eq!(result["@context"], "http://iiif.io/api/auth/2/context.json");
    assert_eq!(result["type"], "AuthProbeResult2");
    assert_eq!(result["status"], 401);
    assert_eq!(
        result["heading"],
        json!({"en": ["Full resolution for readers"]})
    );
    let substitute = result["substitute"][0]["id"]
        .as_str()
        .expect("substitute")
        .to_string();
    assert_eq!(
        substitute,
        "http://localhost/iiif/_degraded/manuscripts%2Fm.tif"
    );

    // the token service: no session yet, then one
    let token_path =
        "/iiif/_auth/token/reading-room?messageId=m1&origin=https%3A%2F%2Fviewer.example";
    let (m, origin) = posted(&app.handle(&from(OUTSIDER, token_path, &[]))).expect("posted");
    assert_eq!(
        (
            m["type"].as_str(),
            m["profile"].as_str(),
            m["messageId"].as_str()
        ),
        (
            Some("AuthAccessTokenError2"),
            Some("missingAspect"),
            Some("m1")
        )
    );
    assert_eq!(origin, "https://viewer.example");
    let cookie = login(&app, "reader", "reading-room").expect("login");
    let (m, origin) =
        posted(&app.handle(&from(OUTSIDER, token_path, &[("cookie", &cookie)]))).expect("posted");
    assert_eq!(m["@context"], "http://iiif.io/api/auth/2/context.json");
    assert_eq!(m["type"], "AuthAccessToken2");
    assert_eq!(m["messageId"], "m1");
    assert!(m["expiresIn"]
        .as_u64()
        .is_some_and(|s| s > 28000 && s <= 28800));
    assert_eq!(origin, "https://viewer.example");
    let token = m["accessToken"].as_str().expect("token").to_string();
    let bearer = format!("Bearer {token}");
    let result = json_of(&app.handle(&from(OUTSIDER, probe_path, &[("authorization", &bearer)])));
    assert_eq!(result["status"], 200);
    assert!(result.get("substitute").is_none() && result.get("heading").is_none());
    // the token opens the probe only: it was posted to a viewer's origin, which must not
    // fetch the images with it (they go by the cookie)
    let big = "/iiif/manuscripts/m.tif/full/max/0/default.jpg";
    assert_eq!(
        app.handle(&from(OUTSIDER, big, &[("authorization", &bearer)]))
            .status,
        401
    );
    assert_eq!(
        app.handle(&from(OUTSIDER, big, &[("cookie", &cookie)]))
            .status,
        200
    );

    // hostile token requests: no messageId, a bad origin (nothing posted)
    let r = app.handle(&from(
        OUTSIDER,
        "/iiif/_auth/token/reading-room?origin=https%3A%2F%2Fv.example",
        &[("cookie", &cookie)],
    ));
    assert_eq!(posted(&r).expect("posted").0["profile"], "invalidRequest");
    let r = app.handle(&from(
        OUTSIDER,
        "/iiif/_auth/token/reading-room?messageId=1&origin=javascript%3Aalert(1)",
        &[("cookie", &cookie)],
    ));
    assert!(posted(&r).is_none(), "{}", text(&r));
    assert!(!text(&r).contains("accessToken"));
    // a rule or service that is not there
    assert_eq!(
        app.handle(&from(
            OUTSIDER,
            "/iiif/_auth/token/nothing?messageId=1",
            &[]
        ))
        .status,
        404
    );
    assert_eq!(
        app.handle(&from(OUTSIDER, "/iiif/_auth/probe/plain.tif", &[]))
            .status,
        404
    );
}

#[test]
fn the_degraded_service_describes_and_answers_only_its_size() {
    let dir = images();
    let app = policy_app(dir.path());
    let info = json_of(&app.handle(&from(
        OUTSIDER,
        "/iiif/_degraded/manuscripts%2Fm.tif/info.json",
        &[],
    )));
    assert_eq!(
        info["id"],
        "http://localhost/iiif/_degraded/manuscripts%2Fm.tif"
    );
    assert_eq!(
        (info["maxWidth"].as_u64(), info["maxHeight"].as_u64()),
        (Some(400), Some(400))
    );
    assert!(info.get("service").is_none());
    // the image it presents is the image scaled to 400 on its long side
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(400), Some(300))
    );
    assert_eq!(info["tiles"][0]["scaleFactors"], json!([1, 2]));
    assert_eq!(info["sizes"], json!([{"width": 200, "height": 150}]));
    // max is its size, for the anonymous and for readers alike; more is a 400
    let cookie = login(&app, "reader", "reading-room").expect("login");
    for headers in [vec![], vec![("cookie", cookie.as_str())]] {
        let max = app.handle(&from(
            OUTSIDER,
            "/iiif/_degraded/manuscripts%2Fm.tif/full/max/0/default.jpg",
            &headers,
        ));
        assert_eq!(max.status, 200, "{}", text(&max));
        let img = decode_image(&max.body);
        assert_eq!((img.width, img.height), (400, 300));
        // a region of it is the same region of the full image, at its scale
        let quarter = app.handle(&from(
            OUTSIDER,
            "/iiif/_degraded/manuscripts%2Fm.tif/200,150,200,150/max/0/default.jpg",
            &headers,
        ));
        assert_eq!(quarter.status, 200, "{}", text(&quarter));
        let q = decode_image(&quarter.body);
        assert_eq!((q.width, q.height), (200, 150));
        let same = app.handle(&from(
            OUTSIDER,
            "/iiif/manuscripts/m.tif/600,450,600,450/200,/0/default.jpg",
            &headers,
        ));
        assert!(mean_error(&q, &decode_image(&same.body)) < 2.0);
        for larger in [
            "full/800,/0/default.jpg",
            "full/^800,/0/default.jpg",
            "0,0,100,100/^200,/0/default.jpg",
        ] {
            let path = format!("/iiif/_degraded/manuscripts%2Fm.tif/{larger}");
            assert_eq!(
                app.handle(&from(OUTSIDER, &path, &headers)).status,
                400,
                "{path}"
            );
        }
    }
    // no degraded service where the rule has none
    assert_eq!(
        app.handle(&from(OUTSIDER, "/iiif/_degraded/plain.tif/info.json", &[]))
            .status,
        404
    );
    assert_eq!(
        app.handle(&from(
            "192.0.2.1",
            "/iiif/_degraded/patients%2Fp.tif/info.json",
            &[]
        ))
        .status,
        404
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn signed_urls_open_what_they_sign_until_they_expire() {
    let dir = images();
    let app = policy_app(dir.path());
    let sign = |path: &str, query: &str| {
        let q = iipsrv_server::access::signed::sign(SIGNING, path, query);
        format!("{path}?{q}")
    };
    let path = "/iiif/donor/d.tif/full/300,/0/default.jpg";
    let url = sign(path, &format!("expires={}", now() + 60));
    assert_eq!(app.handle(&from(OUTSIDER, &url, &[])).status, 200);
    let iip = "/fcgi-bin/iipsrv.fcgi";
    let iip_url = sign(
        iip,
        &format!("FIF=donor/d.tif&JTL=3,0&expires={}", now() + 60),
    );
    assert_eq!(app.handle(&from(OUTSIDER, &iip_url, &[])).status, 200);
    // another path, another command, a later expiry, a past one
    let moved = url.replace("300,", "301,");
    assert_eq!(app.handle(&from(OUTSIDER, &moved, &[])).status, 401);
    let other = iip_url.replace("JTL=3,0", "JTL=3,1");
    assert_eq!(app.handle(&from(OUTSIDER, &other, &[])).status, 401);
    let later = url.replace(
        &format!("expires={}", now() + 60),
        &format!("expires={}", now() + 6000),
    );
    assert_eq!(app.handle(&from(OUTSIDER, &later, &[])).status, 401);
    let past = sign(path, &format!("expires={}", now() - 1));
    assert_eq!(app.handle(&from(OUTSIDER, &past, &[])).status, 401);
}

fn jwt(claims: Value, secret: &[u8]) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("jwt")
}

#[test]
fn bearer_tokens_are_checked_for_key_audience_expiry_and_ids() {
    let dir = images();
    let app = policy_app(dir.path());
    let path = "/iiif/staff/s.tif/full/300,/0/default.jpg";
    let ask = |token: &str| {
        let bearer = format!("Bearer {token}");
        app.handle(&from(OUTSIDER, path, &[("authorization", &bearer)]))
            .status
    };
    let exp = now() + 60;
    assert_eq!(ask(&jwt(json!({"aud": AUDIENCE, "exp": exp}), HS256)), 200);
    assert_eq!(
        ask(&jwt(
            json!({"aud": AUDIENCE, "exp": exp, "ids": "staff/*"}),
            HS256
        )),
        200
    );
    assert_eq!(
        ask(&jwt(
            json!({"aud": AUDIENCE, "exp": exp, "ids": "donor/*"}),
            HS256
        )),
        401
    );
    assert_eq!(
        ask(&jwt(json!({"aud": AUDIENCE, "exp": now() - 1}), HS256)),
        401,
        "expired"
    );
    assert_eq!(
        ask(&jwt(
            json!({"aud": "https://else.example", "exp": exp}),
            HS256
        )),
        401,
        "audience"
    );
    assert_eq!(
        ask(&jwt(
            json!({"aud": AUDIENCE, "exp": exp}),
            b"another secret, thirty-two chars or more"
        )),
        401
    );
    let good = jwt(
        json!({"aud": AUDIENCE, "exp": exp, "ids": "donor/*"}),
        HS256,
    );
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    let wide = jwt(json!({"aud": AUDIENCE, "exp": exp, "ids": "**"}), HS256);
    parts[1] = wide.split('.').nth(1).expect("claims").to_string();
    assert_eq!(ask(&parts.join(".")), 401, "tampered claims");
}

#[test]
fn signed_urls_may_not_outlive_the_policys_longest_lifetime() {
    let dir = images();
    let app = policy_app(dir.path());
    let path = "/iiif/donor/d.tif/full/300,/0/default.jpg";
    let ask = |days: u64| {
        let q = iipsrv_server::access::signed::sign(
            SIGNING,
            path,
            &format!("expires={}", now() + days * 86400),
        );
        app.handle(&from(OUTSIDER, &format!("{path}?{q}"), &[]))
            .status
    };
    assert_eq!(
        ask(6),
        200,
        "within signed_urls.max_hours (a week by default)"
    );
    assert_eq!(ask(8), 401, "beyond it");
}

#[test]
fn denied_answers_name_the_probe_service() {
    let dir = images();
    let app = policy_app(dir.path());
    let host: [(&str, &str); 0] = [];
    let probe = "<http://localhost/iiif/_auth/probe/donor%2Fd.tif>; rel=\"service\"";
    for path in [
        "/iiif/donor/d.tif/full/100,/0/default.jpg",
        "/iiif/donor/d.tif/info.json",
        "/deepzoom/donor/d.tif_files/8/0_0.jpg",
        "/zoomify/donor/d.tif/ImageProperties.xml",
        "/fcgi-bin/iipsrv.fcgi?FIF=donor/d.tif&JTL=0,0",
        "/viewer/donor/d.tif",
    ] {
        let r = app.handle(&from(OUTSIDER, path, &host));
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("link"), Some(probe), "{path}");
        assert!(r.header("www-authenticate").is_some(), "{path}");
    }
    // the probe it names answers
    let r = app.handle(&from(OUTSIDER, "/iiif/_auth/probe/donor%2Fd.tif", &host));
    assert_eq!(json_of(&r)["status"], 401);
}

#[test]
fn guarded_answers_are_private_revalidated_and_vary_on_credentials() {
    let dir = images();
    let app = policy_app(dir.path());
    let cookie = login(&app, "reader", "reading-room").expect("login");
    let later = "Fri, 01 Jan 2100 00:00:00 GMT";
    let guarded = "/iiif/manuscripts/m.tif/full/max/0/default.jpg";
    let open = "/iiif/public/o.tif/full/max/0/default.jpg";
    for (path, headers, cc, vary) in [
        (
            guarded,
            vec![("cookie", cookie.as_str())],
            "private, no-cache",
            Some("Cookie, Authorization"),
        ),
        (open, vec![], "max-age=86400", None),
    ] {
        let r = app.handle(&from(OUTSIDER, path, &headers));
        assert_eq!(
            (r.status, r.header("cache-control")),
            (200, Some(cc)),
            "{path}"
        );
        assert_eq!(r.header("vary"), vary, "{path}");
        let mut again = headers.clone();
        again.push(("if-modified-since", later));
        let r = app.handle(&from(OUTSIDER, path, &again));
        assert_eq!(
            (r.status, r.header("cache-control")),
            (304, Some(cc)),
            "{path}: 304"
        );
        assert_eq!(r.header("vary"), vary, "{path}: 304");
    }
    // the pages that list or show guarded images are the caller's
    for path in ["/", "/viewer/manuscripts/m.tif"] {
        let r = app.handle(&from(OUTSIDER, path, &[]));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("cache-control"),
            Some("private, no-cache"),
            "{path}"
        );
    }
    // a degraded caller's TIL of full-resolution tiles is refused, not "not modified"
    let til = "/fcgi-bin/iipsrv.fcgi?FIF=manuscripts/m.tif&TIL=3,0";
    let r = app.handle(&from(OUTSIDER, til, &[("if-modified-since", later)]));
    assert_eq!(r.status, 401);
    let small = "/fcgi-bin/iipsrv.fcgi?FIF=manuscripts/m.tif&TIL=1,0";
    assert_eq!(app.handle(&from(OUTSIDER, small, &[])).status, 200);
}

#[test]
fn the_access_page_refuses_frames_and_posts_from_other_sites() {
    let dir = images();
    let app = policy_app(dir.path());
    let page = app.handle(&from(OUTSIDER, "/iiif/_auth/access/reading-room", &[]));
    assert_eq!(
        page.header("content-security-policy"),
        Some("frame-ancestors 'none'")
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let post = |origin: &str| {
        let mut post = from(
            OUTSIDER,
            "/iiif/_auth/access/donor-terms",
            &[("origin", origin)],
        );
        post.method = Method::Post;
        app.handle(&post)
    };
    let r = post("https://evil.example");
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());
    let r = post("http://localhost");
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_some());
}

#[test]
fn kiosk_and_external_rules_refuse_to_trust_every_proxy() {
    for proxies in ["*", "0.0.0.0/0, ::/0"] {
        let config = iipsrv_server::settings::Config::from_args([
            "iipsrv",
            "--auth-policy",
            example_policy().to_str().expect("path"),
            "--trusted-proxies",
            proxies,
        ])
        .expect("config");
        let e = config.settings().expect_err("every proxy trusted");
        assert_eq!(e.variable, "TRUSTED_PROXIES", "{e}");
    }
}

#[test]
fn the_index_lists_only_what_the_caller_may_see() {
    let dir = images();
    let policy = example_policy();
    let app = app(
        dir.path(),
        &["--auth-policy", policy.to_str().expect("path")],
    );
    // the index lists the directory itself: put a restricted image there with a rule of
    // its own through the example's `**`-less globs — none match a top-level file, so use
    // the viewer of nested ids instead and check the index shows open top-level ones
    let index = text(&app.handle(&from(OUTSIDER, "/", &[])));
    assert!(index.contains("plain.tif"), "{index}");
    let dir2 = tempdir();
    iipsrv_server::demo::write_demo(&dir2.path().join("secret.tif"), 300, 200).expect("image");
    iipsrv_server::demo::write_demo(&dir2.path().join("shown.tif"), 300, 200).expect("image");
    let p = dir2.path().join("policy.toml");
    std::fs::write(&p, "[[rule]]\nids = \"secret.*\"\naccess = \"restricted\"\nprofile = \"kiosk\"\naddresses = [\"192.0.2.0/24\"]\n").expect("policy");
    let a = app_in(dir2.path(), &p);
    let index = text(&a.handle(&from(OUTSIDER, "/", &[])));
    assert!(
        index.contains("shown.tif") && !index.contains("secret.tif"),
        "{index}"
    );
    let index = text(&a.handle(&from("192.0.2.3", "/", &[])));
    assert!(index.contains("secret.tif"), "{index}");
}

fn app_in(dir: &Path, policy: &Path) -> App {
    app(dir, &["--auth-policy", policy.to_str().expect("path")])
}

#[cfg(feature = "memcached")]
#[test]
fn answers_filled_into_memcached_by_an_authorised_caller_are_not_handed_to_others() {
    let dir = images();
    let prefix = dir.path().to_string_lossy().to_string();
    let (mut mc, port) = start_memcached();
    let servers = format!("127.0.0.1:{port}");
    let policy = example_policy().to_string_lossy().to_string();
    let env = [
        ("FILESYSTEM_PREFIX", prefix.as_str()),
        ("MEMCACHED_SERVERS", servers.as_str()),
        ("AUTH_POLICY", policy.as_str()),
    ];
    let a = Server::start(&env);
    let b = Server::start(&env);
    for path in [
        "/iiif/donor/d.tif/full/300,/0/default.jpg",
        "/iiif/manuscripts/m.tif/full/max/0/default.jpg",
        "/deepzoom/manuscripts/m.tif_files/11/0_0.jpg",
    ] {
        let signed =
            iipsrv_server::access::signed::sign(SIGNING, path, &format!("expires={}", now() + 60));
        let authorised = get(a.port, &format!("{path}?{signed}"));
        assert_eq!(authorised.status, 200, "{path}");
        assert_eq!(
            authorised.header("cache-control"),
            Some("private, no-cache")
        );
        // the same answer, asked anonymously of the other server and of the same one
        assert_eq!(get(b.port, path).status, 401, "{path} from memcached");
        assert_eq!(get(a.port, path).status, 401, "{path} from RAM");
    }
    let _ = mc.kill();
    let _ = mc.wait();
}

/// A request of `method` to a server with a cookie and a body.
#[cfg(feature = "memcached")]
fn with_cookie(port: u16, method: &str, path: &str, cookie: &str, body: &str) -> Reply {
    use std::io::{BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let cookie = match cookie {
        "" => String::new(),
        c => format!("Cookie: {c}\r\n"),
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{cookie}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    read_reply(&mut BufReader::new(s), true)
}

/// Two server processes sharing one cache engine (`setting`: its variable and value): a
/// login on A opens the image on B, B hands out the session's access token, which A's
/// probe takes; a logout on B ends the session on A too (within A's one-second recheck).
#[cfg(feature = "memcached")]
fn logins_reach_every_instance(setting: (&str, &str)) {
    let dir = images();
    let prefix = dir.path().to_string_lossy().to_string();
    let policy = example_policy().to_string_lossy().to_string();
    let env = [
        ("FILESYSTEM_PREFIX", prefix.as_str()),
        ("AUTH_POLICY", policy.as_str()),
        setting,
    ];
    let (a, b) = (Server::start(&env), Server::start(&env));
    let big = "/iiif/manuscripts/m.tif/full/max/0/default.jpg";
    let access = "/iiif/_auth/access/reading-room";
    let login = with_cookie(
        a.port,
        "POST",
        access,
        "",
        "user=reader&password=reading-room",
    );
    assert_eq!(
        login.status,
        200,
        "{}",
        String::from_utf8_lossy(&login.body)
    );
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_string();
    let status = |port, path: &str| with_cookie(port, "GET", path, &cookie, "").status;
    assert_eq!(get(b.port, big).status, 401, "B, no cookie");
    assert_eq!(status(b.port, big), 200, "B takes A's login");
    assert_eq!(status(a.port, big), 200);

    let token_page = with_cookie(
        b.port,
        "GET",
        "/iiif/_auth/token/reading-room?messageId=1&origin=https%3A%2F%2Fv.example",
        &cookie,
        "",
    );
    let html = String::from_utf8_lossy(&token_page.body).to_string();
    let token = html
        .split("\"accessToken\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_else(|| panic!("no token from B: {html}"))
        .to_string();
    let probe = |port| {
        let r = raw_request(
            port,
            &format!(
                "GET /iiif/_auth/probe/manuscripts%2Fm.tif HTTP/1.1\r\nHost: x\r\n\
                 Authorization: Bearer {token}\r\n"
            ),
        );
        serde_json::from_slice::<Value>(&r.body).expect("json")["status"].clone()
    };
    assert_eq!(probe(a.port), 200, "A's probe takes the token B handed out");
    assert_eq!(probe(b.port), 200);

    let logout = with_cookie(
        b.port,
        "GET",
        "/iiif/_auth/logout/reading-room",
        &cookie,
        "",
    );
    assert_eq!(logout.status, 200);
    assert_eq!(status(b.port, big), 401, "B ended the session");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(status(a.port, big), 401, "the logout on B reached A");
    assert_eq!(probe(a.port), 401, "and the token with it");
    assert_eq!(probe(b.port), 401);
}

#[cfg(feature = "memcached")]
#[test]
fn a_login_on_one_instance_is_valid_on_all_through_memcached_until_logout() {
    let (mut mc, port) = start_memcached();
    let servers = format!("127.0.0.1:{port}");
    logins_reach_every_instance(("MEMCACHED_SERVERS", &servers));
    let _ = mc.kill();
    let _ = mc.wait();
}

#[cfg(all(feature = "memcached", feature = "redis"))]
#[test]
fn a_login_on_one_instance_is_valid_on_all_through_redis_until_logout() {
    let (mut redis, port) = start_redis();
    let url = format!("redis://127.0.0.1:{port}/0");
    logins_reach_every_instance(("REDIS_URL", &url));
    let _ = redis.kill();
    let _ = redis.wait();
}

#[cfg(feature = "memcached")]
#[test]
fn with_the_tier_down_a_login_stays_here_and_a_logout_says_it_did_not_reach_the_others() {
    let dir = images();
    let policy = example_policy();
    // nothing listens on port 1
    let app = app(
        dir.path(),
        &[
            "--auth-policy",
            policy.to_str().expect("path"),
            "--memcached-servers",
            "127.0.0.1:1",
        ],
    );
    let start = std::time::Instant::now();
    let cookie = login(&app, "reader", "reading-room").expect("a login while the tier is down");
    let with = [("cookie", cookie.as_str())];
    let big = "/iiif/manuscripts/m.tif/full/max/0/default.jpg";
    assert_eq!(app.handle(&from(OUTSIDER, big, &with)).status, 200);
    let out = app.handle(&from(OUTSIDER, "/iiif/_auth/logout/reading-room", &with));
    assert_eq!(out.status, 503, "{}", text(&out));
    assert!(
        out.header("set-cookie").is_none(),
        "the cookie stays, to log out again"
    );
    assert_eq!(app.handle(&from(OUTSIDER, big, &with)).status, 401);
    assert!(start.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn terms_sessions_minted_in_bulk_from_one_address_push_out_only_its_own() {
    let dir = images();
    let app = policy_app(dir.path());
    let accept = |peer: &str| {
        let mut post = from(peer, "/iiif/_auth/access/donor-terms", &[]);
        post.method = Method::Post;
        let r = app.handle(&post);
        r.header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("cookie")
            .to_string()
    };
    let reader = login(&app, "reader", "reading-room").expect("login");
    let neighbour = accept("198.51.100.20");
    let minted: Vec<String> = (0..300).map(|_| accept(OUTSIDER)).collect();
    let opens = |cookie: &str, path: &str| {
        app.handle(&from(OUTSIDER, path, &[("cookie", cookie)]))
            .status
    };
    let donor = "/iiif/donor/d.tif/full/100,/0/default.jpg";
    assert_eq!(opens(&minted[0], donor), 401, "the address's oldest went");
    assert_eq!(opens(&minted[299], donor), 200);
    let live = minted.iter().filter(|c| opens(c, donor) == 200).count();
    assert_eq!(live, 256, "one address holds 256 terms sessions");
    assert_eq!(
        opens(&neighbour, donor),
        200,
        "another address keeps its own"
    );
    let big = "/iiif/manuscripts/m.tif/full/max/0/default.jpg";
    assert_eq!(
        opens(&reader, big),
        200,
        "and a login from the same address stays"
    );
}
