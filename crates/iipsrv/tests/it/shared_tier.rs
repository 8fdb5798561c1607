//! The shared tier with real engines (memcached and Redis, started here): answers shared
//! between two server processes, and a purge — by the admin endpoint or `iipsrv purge` —
//! that reaches both.

use crate::harness::*;
use std::process::{Child, Command};
use std::time::Duration;

/// A cache engine process on a free port; killed on drop.
struct Engine {
    child: Child,
    /// The server setting that points at it (name, value).
    setting: (&'static str, String),
    /// Its name as metrics label the tier.
    name: &'static str,
}

impl Engine {
    fn memcached() -> Engine {
        let (child, port) = start_memcached();
        let setting = ("MEMCACHED_SERVERS", format!("127.0.0.1:{port}"));
        Engine {
            child,
            setting,
            name: "memcached",
        }
    }

    fn redis() -> Engine {
        let (child, port) = start_redis();
        let setting = ("REDIS_URL", format!("redis://127.0.0.1:{port}/0"));
        Engine {
            child,
            setting,
            name: "redis",
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tier(port: u16, name: &str, outcome: &str) -> u64 {
    metric(
        port,
        &format!("iipsrv_cache_lookups_total{{tier=\"{name}\",outcome=\"{outcome}\"}}"),
    )
}

/// How many tier lookups with `outcome` one GET of `path` made (asserting a 200).
fn lookups_by(port: u16, path: &str, name: &str, outcome: &str) -> u64 {
    let before = tier(port, name, outcome);
    assert_eq!(get(port, path).status, 200, "{path}");
    tier(port, name, outcome) - before
}

fn post(port: u16, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    raw_request(
        port,
        &format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{auth}"),
    )
}

fn purge_reaches_every_instance(engine: Engine) {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 900, 700).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let env = [
        ("FILESYSTEM_PREFIX", prefix.as_str()),
        (engine.setting.0, engine.setting.1.as_str()),
        ("ADMIN_TOKEN", "s3cret-token"),
        ("REVALIDATE_INTERVAL", "1"),
    ];
    let (a, b) = (Server::start(&env), Server::start(&env));
    let name = engine.name;
    let path = "/iiif/a.tif/10,20,500,400/250,/0/default.jpg";

    let first = get(a.port, path);
    assert_eq!(first.status, 200);
    let second = get(b.port, path);
    assert_eq!(second.body, first.body);
    assert_eq!(tier(b.port, name, "hit"), 1, "{name}: B found A's answer");

    // the endpoint wants POST and the token
    assert_eq!(post(a.port, "/admin/purge/a.tif", None).status, 401);
    assert_eq!(
        post(a.port, "/admin/purge/a.tif", Some("s3cret-tokem")).status,
        401
    );
    assert_eq!(get(a.port, "/admin/purge/a.tif").status, 405);
    let r = post(a.port, "/admin/purge/a.tif", Some("s3cret-token"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["generation"], 1, "{v}");
    assert_eq!(v["tier"], name);
    assert_eq!(
        post(a.port, "/admin/purge/nope.tif", Some("s3cret-token")).status,
        404
    );

    // A renders anew at once: its RAM copy is gone and the tier has no answer of generation 1
    assert_eq!(
        lookups_by(a.port, path, name, "miss"),
        1,
        "{name}: A asked the tier again"
    );
    // B follows once its check is due: its RAM copy is of the old generation
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        lookups_by(b.port, path, name, "hit"),
        1,
        "{name}: B found A's new answer"
    );

    // the command line purges the same image, from the same settings
    let out = Command::new(env!("CARGO_BIN_EXE_iipsrv"))
        .args(["purge", "a.tif"])
        .env("FILESYSTEM_PREFIX", &prefix)
        .env(engine.setting.0, &engine.setting.1)
        .output()
        .expect("run iipsrv purge");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "purged a.tif: generation 2"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        lookups_by(b.port, path, name, "miss"),
        1,
        "{name}: B saw the CLI's purge"
    );
}

#[test]
fn purge_reaches_every_instance_through_memcached() {
    purge_reaches_every_instance(Engine::memcached());
}

#[test]
fn purge_reaches_every_instance_through_redis() {
    purge_reaches_every_instance(Engine::redis());
}

#[test]
fn purge_is_off_without_a_token() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 300, 200).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let s = Server::start(&[("FILESYSTEM_PREFIX", prefix.as_str())]);
    assert_eq!(
        post(s.port, "/admin/purge/a.tif", Some("anything")).status,
        404
    );
    let out = Command::new(env!("CARGO_BIN_EXE_iipsrv"))
        .args(["purge", "a.tif"])
        .env("FILESYSTEM_PREFIX", &prefix)
        .env_remove("MEMCACHED_SERVERS")
        .env_remove("REDIS_URL")
        .output()
        .expect("run iipsrv purge");
    assert_eq!(out.status.code(), Some(2), "no tier: nothing to purge");
}
