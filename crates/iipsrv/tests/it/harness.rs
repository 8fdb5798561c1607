//! Shared helpers of the integration tests: test images made here (our pattern written by
//! libvips/libtiff in every container and compression variant), a minimal HTTP client,
//! the server binary on an ephemeral port, and pixel comparison.

use iipsrv_core::raster::Raster;
use iipsrv_core::view::Rect;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs a command, panicking with its output when it fails (missing tools included).
pub fn run(cmd: &mut Command) {
    run_stdout(cmd);
}

/// Runs a command as [`run`] does and returns its standard output.
pub fn run_stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (install libvips-tools / libtiff-tools)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `r` as a PNG file.
pub fn write_png(r: &Raster, path: &Path) {
    let bytes = iipsrv_formats::codec::png::encode(r, 1, Default::default()).expect("png encode");
    std::fs::write(path, bytes).expect("write png");
}

/// Decodes a PNG or JPEG answer into a raster.
pub fn decode_image(bytes: &[u8]) -> Raster {
    if bytes.starts_with(b"\x89PNG") {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(png::Transformations::EXPAND);
        let mut reader = dec.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("png frame");
        buf.truncate(info.buffer_size());
        let ch = info.color_type.samples() as u8;
        return Raster::from_vec(info.width, info.height, ch, buf).expect("png raster");
    }
    let h = turbojpeg::read_header(bytes).expect("jpeg header");
    let ch = if h.colorspace == turbojpeg::Colorspace::Gray {
        1
    } else {
        3
    };
    iipsrv_formats::codec::jpeg::decode(bytes, h.width as u32, h.height as u32, ch)
        .expect("jpeg decode")
}

/// Area-average of `region` of `src` at `w`×`h`: the reference for scaled answers.
pub fn reference(src: &Raster, region: Rect, w: u32, h: u32) -> Raster {
    let ch = src.channels as usize;
    let mut out = Raster::filled(w, h, src.channels, 0);
    for oy in 0..h {
        let y0 = region.y as f64 + oy as f64 * region.h as f64 / h as f64;
        let y1 = region.y as f64 + (oy + 1) as f64 * region.h as f64 / h as f64;
        for ox in 0..w {
            let x0 = region.x as f64 + ox as f64 * region.w as f64 / w as f64;
            let x1 = region.x as f64 + (ox + 1) as f64 * region.w as f64 / w as f64;
            let (sx0, sx1) = (
                x0.floor() as u32,
                (x1.ceil() as u32).max(x0.floor() as u32 + 1).min(src.width),
            );
            let (sy0, sy1) = (
                y0.floor() as u32,
                (y1.ceil() as u32)
                    .max(y0.floor() as u32 + 1)
                    .min(src.height),
            );
            let mut acc = vec![0f64; ch];
            let mut n = 0.0;
            for sy in sy0..sy1 {
                for sx in sx0..sx1 {
                    let i = (sy as usize * src.width as usize + sx as usize) * ch;
                    for (a, v) in acc.iter_mut().zip(&src.data[i..i + ch]) {
                        *a += *v as f64;
                    }
                    n += 1.0;
                }
            }
            let o = (oy as usize * w as usize + ox as usize) * ch;
            for (d, a) in out.data[o..o + ch].iter_mut().zip(&acc) {
                *d = (a / n).round() as u8;
            }
        }
    }
    out
}

/// Mean absolute difference per sample between two rasters of the same shape.
pub fn mean_error(a: &Raster, b: &Raster) -> f64 {
    assert_eq!(
        (a.width, a.height, a.channels),
        (b.width, b.height, b.channels),
        "shapes differ"
    );
    let sum: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.data.len() as f64
}

/// A plain HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one raw request (with `Connection: close` appended) and reads the answer.
pub fn raw_request(port: u16, head: &str) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // one write; a server that answers early (bad request) may close before we finish
    let _ = s.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
    let mut reader = BufReader::new(s);
    if head.starts_with("HEAD ") {
        return read_head(&mut reader);
    }
    read_reply(&mut reader, true)
}

/// Reads the status line and headers of an answer that has no body (HEAD).
pub fn read_head<R: BufRead>(r: &mut R) -> Reply {
    let (status, headers) = read_status_and_headers(r);
    Reply {
        status,
        headers,
        body: Vec::new(),
    }
}

fn read_status_and_headers<R: BufRead>(r: &mut R) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

/// Reads one answer from a connection; `to_eof` reads a body without length until close.
pub fn read_reply<R: BufRead>(r: &mut R, to_eof: bool) -> Reply {
    let (status, headers) = read_status_and_headers(r);
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body).expect("body");
        }
        None if to_eof => {
            r.read_to_end(&mut body).expect("body");
        }
        None => {}
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// GET a path.
pub fn get(port: u16, path: &str) -> Reply {
    raw_request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"),
    )
}

/// GETs an image answer, asserting a 200, and decodes it.
pub fn fetch(port: u16, path: &str) -> Raster {
    decode_image(&fetch_bytes(port, path, None))
}

/// GETs an answer's body, asserting a 200 and, when given, its Content-Type.
pub fn fetch_bytes(port: u16, path: &str, mime: Option<&str>) -> Vec<u8> {
    let r = get(port, path);
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    if let Some(m) = mime {
        assert_eq!(r.header("content-type"), Some(m), "{path}");
    }
    r.body
}

/// Starts the binary on a free port with `env` (VERBOSITY and LOGFILE unset) and returns
/// its start-up log (standard error up to the line saying where it serves) and whether it
/// was still running then; the process is killed.
pub fn start_up_log(env: &[(&str, &std::ffi::OsStr)]) -> (Vec<String>, bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iipsrv"));
    cmd.args(["--http", "127.0.0.1:0"])
        .env_remove("VERBOSITY")
        .env_remove("LOGFILE")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start");
    let stderr = child.stderr.take().expect("stderr");
    let head: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("serving http://"))
        .collect();
    let started = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    (head, started)
}

/// The server binary running on an ephemeral port; killed on drop.
pub struct Server {
    pub port: u16,
    child: Child,
}

impl Server {
    /// Starts `iipsrv --http 127.0.0.1:0` with the given environment.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iipsrv"));
        cmd.args(["--http", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for var in [
            "FILESYSTEM_PREFIX",
            "CORS",
            "VERBOSITY",
            "LOGFILE",
            "MAX_CVT",
            "BASE_URL",
            "MAX_LAYERS",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start iipsrv");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("server exited early")
                .expect("read stderr");
            if let Some(rest) = line.split("serving http://").nth(1) {
                let addr = rest.trim_end_matches('/');
                break addr
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("port");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { port, child }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by name (`TERM`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        run(Command::new("kill")
            .args(["-s", name])
            .arg(self.child.id().to_string()));
    }

    /// Waits up to `timeout` for the process to exit; its status, or None if still running.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks `path` until it is answered 200 (at most 180 s); every other answer must be a 503
/// with a Retry-After of 1-30 s. The answer, and how many 503s came first.
pub fn until_built(port: u16, path: &str) -> (Reply, usize) {
    let start = std::time::Instant::now();
    let mut waits = 0;
    loop {
        let r = get(port, path);
        if r.status == 200 {
            return (r, waits);
        }
        assert_eq!(
            r.status,
            503,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let after: u32 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!((1..=30).contains(&after), "Retry-After {after}");
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{path}: never built"
        );
        waits += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pyramids (`*.tif`) in a pyramid cache directory, in name order.
pub fn pyramids(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .expect("cache dir")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tif"))
        .collect();
    v.sort();
    v
}

/// A fresh temporary directory that lives as long as the value.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("iipsrv-test")
        .tempdir()
        .expect("tempdir")
}

/// The source pattern of the test images.
pub fn pattern(w: u32, h: u32) -> Raster {
    iipsrv_server::demo::pattern(w, h)
}

/// Runs `vips` with the arguments.
pub fn vips(args: &[&str]) {
    run(Command::new("vips").args(args));
}

/// `src_png` (8-bit) as 16-bit samples, v × 257 filling the type's range: `<dir>/u16.v`.
pub fn sixteen_bit(dir: &Path, src_png: &Path) -> PathBuf {
    let p = |n: &str| dir.join(n).to_string_lossy().to_string();
    vips(&["linear", &src_png.to_string_lossy(), &p("w.v"), "257", "0"]);
    vips(&["cast", &p("w.v"), &p("c.v"), "ushort"]);
    vips(&["copy", &p("c.v"), &p("u16.v"), "--interpretation", "rgb16"]);
    dir.join("u16.v")
}

/// `src_png` as float samples v / 255, in 0-1 (the range the original assumes for floats
/// without SMin/SMaxSampleValue): `<dir>/f32.v`.
pub fn unit_float(dir: &Path, src_png: &Path) -> PathBuf {
    let p = |n: &str| dir.join(n).to_string_lossy().to_string();
    let scale = (1.0f64 / 255.0).to_string();
    vips(&["linear", &src_png.to_string_lossy(), &p("f.v"), &scale, "0"]);
    vips(&["cast", &p("f.v"), &p("f32.v"), "float"]);
    dir.join("f32.v")
}

/// Makes `name` in `dir` from a PNG source with `vips tiffsave` and extra arguments.
pub fn vips_tiff(dir: &Path, src_png: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = Command::new("vips");
    cmd.arg("tiffsave")
        .arg(src_png)
        .arg(&out)
        .args(["--tile", "--pyramid"])
        .args(args);
    if !args.contains(&"--tile-width") {
        cmd.args(["--tile-width", "256", "--tile-height", "256"]);
    }
    run(&mut cmd);
    out
}

/// The peak resident memory (VmHWM) of process `pid`, in KiB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// A TCP port free on the loopback interface right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits (at most 10 s) until something listens on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(any(feature = "memcached", feature = "object-storage"))]
/// A helper process (a cache engine, an object store) listening on a free port: `args`
/// after the program name, `{port}` replaced by the port; started and waited for.
pub fn spawn_listener(program: &str, args: &[&str]) -> (Child, u16) {
    let port = free_port();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let child = Command::new(program)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program} ({e}; scripts/deps.sh test installs it)"));
    wait_for_port(port, program);
    (child, port)
}

#[cfg(any(feature = "memcached", feature = "object-storage"))]
/// memcached on a free port (64 MB).
pub fn start_memcached() -> (Child, u16) {
    spawn_listener(
        "memcached",
        &[
            "-l",
            "127.0.0.1",
            "-p",
            "{port}",
            "-U",
            "0",
            "-m",
            "64",
            "-u",
            "root",
        ],
    )
}

#[cfg(all(feature = "memcached", feature = "redis"))]
/// redis-server on a free port, keeping nothing on disk.
pub fn start_redis() -> (Child, u16) {
    spawn_listener(
        "redis-server",
        &[
            "--port",
            "{port}",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
}

/// A counter or gauge of a server's `/metrics`: the value of the first line starting with
/// `line_start` (0 when there is none).
pub fn metric(port: u16, line_start: &str) -> u64 {
    let body = String::from_utf8(get(port, "/metrics").body).expect("text");
    body.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The handler serving `dir`, configured by command-line style `args`.
pub fn app(dir: &Path, args: &[&str]) -> iipsrv_server::handler::App {
    let mut all = vec!["iipsrv"];
    all.extend_from_slice(args);
    let config = iipsrv_server::settings::Config::from_args(all).expect("config");
    let settings = config.settings().expect("settings");
    iipsrv_server::handler::App::new(settings, Some(dir)).expect("app")
}

/// A GET of `path` through the handler, without sockets.
pub fn call(app: &iipsrv_server::handler::App, path: &str) -> iipsrv_server::handler::Response {
    app.handle(&iipsrv_server::handler::Request::get(path))
}

/// A handler answer's body as text.
pub fn text(r: &iipsrv_server::handler::Response) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

/// Peak signal-to-noise ratio of `a` against `b` in dB (infinite when equal).
pub fn psnr(a: &Raster, b: &Raster) -> f64 {
    assert_eq!(
        (a.width, a.height, a.channels),
        (b.width, b.height, b.channels)
    );
    let sum: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    let mse = sum / a.data.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}
