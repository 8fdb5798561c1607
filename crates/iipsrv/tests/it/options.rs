//! Process-level options of the man page: OMP_NUM_THREADS sizes the worker pools,
//! KAKADU_READMODE is accepted (0-2) and ignored, DECODER_MODULES is a start-up warning,
//! bad values stop the start with a message.

use crate::harness::*;
use std::process::Command;

/// Threads of a running process, from /proc.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn omp_num_threads_sizes_the_worker_pools() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 800, 600).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let count = |n: &str| {
        let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("OMP_NUM_THREADS", n)]);
        // A region render uses the decode pool too.
        let r = get(server.port, "/iiif/a.tif/full/300,/0/default.png");
        assert_eq!(r.status, 200);
        threads(server.pid())
    };
    let (one, eight) = (count("1"), count("8"));
    // Eight workers in each of the two pools (requests, decoding) against one.
    assert!(
        eight >= one + 14,
        "1 worker: {one} threads, 8 workers: {eight}"
    );
}

#[test]
fn kakadu_readmode_is_accepted_and_checked() {
    let dir = tempdir();
    let prefix = dir.path().to_string_lossy().to_string();
    let mut ok = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("KAKADU_READMODE", "2")]);
    assert!(ok.alive());
    let out = Command::new(env!("CARGO_BIN_EXE_iipsrv"))
        .args(["--http", "127.0.0.1:0"])
        .env("KAKADU_READMODE", "7")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KAKADU_READMODE"));
}

/// The original's decoder plug-ins have no counterpart (every format is built in): the
/// start-up log says so, and the server starts and serves.
#[test]
fn decoder_modules_is_a_start_up_warning() {
    let dir = tempdir();
    let (head, started) = start_up_log(&[
        ("FILESYSTEM_PREFIX", dir.path().as_os_str()),
        ("DECODER_MODULES", "/usr/lib/iipsrv/kakadu.so".as_ref()),
    ]);
    assert!(started, "{head:?}");
    let warned = head.iter().any(|l| {
        l.contains("WARN") && l.contains("DECODER_MODULES=/usr/lib/iipsrv/kakadu.so is ignored")
    });
    assert!(warned, "{head:?}");
}

#[test]
fn man_page_is_generated_from_the_options_and_committed() {
    let page = run_stdout(Command::new(env!("CARGO_BIN_EXE_iipsrv")).arg("man"));
    for needle in [
        ".TH iipsrv 1",
        ".SH ENVIRONMENT",
        "\\fBMAX_LAYERS\\fR",
        "\\-\\-bind",
    ] {
        assert!(page.contains(needle), "missing {needle}");
    }
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/iipsrv.1"))
            .expect("docs/iipsrv.1");
    assert!(
        committed == page,
        "docs/iipsrv.1 is stale: run `cargo run -- man > docs/iipsrv.1`"
    );
}
