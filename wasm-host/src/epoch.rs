//! Wall-clock limits for guest code: a thread advances the engine's epoch
//! at a fixed rate, and a store whose deadline (in ticks) passes traps the
//! next time the guest checks, even in a loop that never calls the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

/// Time between epoch ticks: the precision of every time limit.
pub const TICK: Duration = Duration::from_millis(10);

/// The number of ticks in `limit`, at least one.
pub fn ticks(limit: Duration) -> u64 {
    (limit.as_millis() / TICK.as_millis()).max(1) as u64
}

/// Advances an engine's epoch every [`TICK`] until dropped.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking `engine`.
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
