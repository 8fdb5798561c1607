//! Two server processes sharing one real memcached (started here): an answer rendered by
//! one is served to the other from memcached; a dead memcached costs nothing but the cache.

use crate::harness::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

struct Memcached {
    port: u16,
    child: Child,
}

impl Memcached {
    fn start() -> Memcached {
        let (child, port) = start_memcached();
        Memcached { port, child }
    }

    /// One value of memcached's `stats`.
    fn stat(&self, name: &str) -> u64 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.write_all(b"stats\r\n").expect("send");
        let mut r = BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).expect("read");
            if line.starts_with("END") || line.is_empty() {
                panic!("no stat {name}");
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() == 3 && parts[1] == name {
                return parts[2].parse().expect("number");
            }
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_servers_share_answers_and_survive_its_death() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 900, 700).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let mut mc = Memcached::start();
    let servers = format!("127.0.0.1:{}", mc.port);
    let env = [
        ("FILESYSTEM_PREFIX", prefix.as_str()),
        ("MEMCACHED_SERVERS", servers.as_str()),
    ];
    let a = Server::start(&env);
    let b = Server::start(&env);

    let path = "/iiif/a.tif/10,20,500,400/250,/0/default.jpg";
    let first = get(a.port, path);
    assert_eq!(first.status, 200);
    assert_eq!(mc.stat("curr_items"), 1, "A stored its answer");
    assert_eq!(mc.stat("get_hits"), 0);
    let second = get(b.port, path);
    assert_eq!(second.status, 200);
    assert_eq!(mc.stat("get_hits"), 1, "B found A's answer in memcached");
    assert_eq!(second.body, first.body);
    // the same view through IIP on B is the same entry
    let iip = get(b.port, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&JTL=2,0");
    assert_eq!(iip.status, 200);

    let _ = mc.child.kill();
    let _ = mc.child.wait();
    let start = Instant::now();
    for i in 0..20 {
        let r = get(
            a.port,
            &format!("/iiif/a.tif/full/{},/0/default.jpg", 100 + i),
        );
        assert_eq!(r.status, 200, "requests succeed with memcached dead");
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a dead memcached costs {:?}",
        start.elapsed()
    );
}

#[test]
fn answers_kept_longer_than_memcacheds_thirty_days_are_still_shared() {
    // memcached reads an expiry above 30 days as a Unix time: 60 days would be 1970,
    // every entry stored already expired. The server shortens it to 30 days.
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let mc = Memcached::start();
    let servers = format!("127.0.0.1:{}", mc.port);
    let env = [
        ("FILESYSTEM_PREFIX", prefix.as_str()),
        ("MEMCACHED_SERVERS", servers.as_str()),
        ("MEMCACHED_TIMEOUT", "5184000"),
    ];
    let a = Server::start(&env);
    let b = Server::start(&env);
    let path = "/iiif/a.tif/full/300,/0/default.jpg";
    assert_eq!(get(a.port, path).status, 200);
    assert_eq!(get(b.port, path).status, 200);
    assert_eq!(mc.stat("get_hits"), 1, "B found A's answer in memcached");
}
