//! Thread priorities: the threads that decode, resample and encode run at a lower
//! scheduling priority (nice +10) than the connection threads. On a saturated machine the
//! answers made on the connection threads — health probes, metrics, cached answers, stored
//! tiles — then are not held up behind renders, which lose a few percent of their share.
//! Linux keeps a nice value per thread, so only the calling thread is lowered.

use std::cell::Cell;

/// How much lower than the connection threads the render threads run.
const RENDER_NICE: libc::c_int = 10;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Lowers the calling thread to the render priority (once; later calls cost a
/// thread-local read). A refusal (no permission) leaves the thread as it was.
pub fn render_thread() {
    if LOWERED.replace(true) {
        return;
    }
    // SAFETY: setpriority reads its three integer arguments only; `who` 0 names the
    // calling thread on Linux, and raising one's own nice value needs no privilege.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, RENDER_NICE) } != 0;
    if failed {
        tracing::debug!("render thread priority unchanged");
    }
}
