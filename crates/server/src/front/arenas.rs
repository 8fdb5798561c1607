//! Memory arenas: glibc's allocator gives threads that meet in it arenas of their own, up
//! to eight per core, and a server's render threads, connection threads and blocking pool
//! all allocate large short-lived buffers, so every arena grows to its own high-water mark.
//! Measured with `bench.sh` hot, cold and region at 256 connections on the 20000 x 15000
//! set (default caches): peak RSS 318 MB with glibc's default, 226 MB with as many arenas
//! as worker threads (shared by every thread of the process), the same throughput within
//! the runs' spread (docs/benchmarks.md).

/// Limits glibc's malloc to as many arenas as worker threads (at least 2), unless
/// MALLOC_ARENA_MAX or GLIBC_TUNABLES' arena_max says otherwise (glibc reads those itself).
/// Call before the worker threads start; nothing on other C libraries.
pub fn limit(threads: usize) {
    let tunable = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if tunable || std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    set_arena_max(threads.clamp(2, 64) as libc::c_int);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(n: libc::c_int) {
    // SAFETY: mallopt reads its two integer arguments only; M_ARENA_MAX is a parameter glibc
    // accepts at any time (it bounds arenas made from then on).
    let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, n) } == 1;
    if !ok {
        tracing::debug!("malloc arena limit not set");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_n: libc::c_int) {}
