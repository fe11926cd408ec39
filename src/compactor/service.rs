//! The compactor as a loop a long-running service drives: a pass whenever new inbox data
//! arrives (inotify on the inbox and spool directories, through the `notify` crate), a pass
//! at least every [`ServiceOptions::idle_pass`] (spools of other stores' fallbacks, transcripts),
//! retention and recompression every [`ServiceOptions::maintenance_every`], and a clean stop
//! on request: the pass in progress finishes and commits, then [`run`] returns.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ctrace::compactor::{Compactor, service};
//! let store = ctrace::log::Store::open(
//!     std::path::Path::new("/tmp/store"),
//!     ctrace::config::Config::default(),
//! )?;
//! let trigger = Arc::new(service::Trigger::new());
//! let _watcher = service::watch_inbox(&store, Arc::clone(&trigger))?;
//! let stopper = Arc::clone(&trigger);
//! ctrlc_like_handler(move || stopper.stop());
//! # let consumers: &[&dyn ctrace::compactor::Consumer] = &[];
//! service::run(&Compactor::new(&store, consumers), &trigger, &service::ServiceOptions::default(), &mut |pass| {
//!     if let Err(error) = pass { eprintln!("compaction failed: {error}"); }
//! });
//! # Ok(()) }
//! # fn ctrlc_like_handler(_: impl Fn()) {}
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{CompactError, CompactOptions, CompactReport, Compactor};
use crate::log::Store;

/// Wakes the loop and asks it to stop; shared between the loop, watchers and signal handlers.
#[derive(Debug, Default)]
pub struct Trigger {
    state: Mutex<TriggerState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct TriggerState {
    /// Wakes not yet consumed by [`Trigger::wait`].
    pending: u64,
    stopped: bool,
}

/// Why [`Trigger::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// [`Trigger::wake`] was called (once or more) since the last wait.
    Woken,
    /// The timeout passed without a wake.
    Timeout,
    /// [`Trigger::stop`] was called.
    Stopped,
}

impl Trigger {
    /// A trigger with no wake pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for a pass (new data arrived).
    pub fn wake(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.pending += 1;
        self.changed.notify_all();
    }

    /// Asks the loop to stop after the pass in progress.
    pub fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.stopped = true;
        self.changed.notify_all();
    }

    /// Whether [`Trigger::stop`] was called.
    pub(crate) fn is_stopped(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopped
    }

    /// Waits up to `timeout` for a wake or a stop; consumes the pending wakes.
    pub fn wait(&self, timeout: Duration) -> Wake {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.stopped {
                return Wake::Stopped;
            }
            if state.pending > 0 {
                state.pending = 0;
                return Wake::Woken;
            }
            let now = Instant::now();
            if now >= deadline {
                return Wake::Timeout;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Timing of the service loop.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Longest time between passes without a wake (default 60 s): picks up what no watcher
    /// reports (the fallback spool under `$TMPDIR`, transcripts named by hooks).
    pub idle_pass: Duration,
    /// After a wake, wait this long for more (default 200 ms), so a burst of hooks makes one
    /// pass.
    pub debounce: Duration,
    /// Retention and recompression run at most this often (default 10 min), and on the first
    /// pass.
    pub maintenance_every: Duration,
    /// First wait after a failed pass (default 1 s), doubled after each failure in a row up to
    /// `idle_pass`.
    pub retry_after_error: Duration,
    /// How long a pass waits for another process updating a consumer (default 5 s; the pass
    /// fails and is retried after that).
    pub writer_wait: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            idle_pass: Duration::from_secs(60),
            debounce: Duration::from_millis(200),
            maintenance_every: Duration::from_secs(600),
            retry_after_error: Duration::from_secs(1),
            writer_wait: Duration::from_secs(5),
        }
    }
}

/// Runs compaction passes until `trigger` is stopped; `on_pass` sees each pass's outcome (to
/// log it or publish what changed). A failed pass is retried with backoff; it never ends the
/// loop. Returns after the pass in progress when stopped.
pub fn run(
    compactor: &Compactor<'_>,
    trigger: &Trigger,
    options: &ServiceOptions,
    on_pass: &mut dyn FnMut(&Result<CompactReport, CompactError>),
) {
    let mut last_maintenance: Option<Instant> = None;
    let mut failures: u32 = 0;
    while !trigger.is_stopped() {
        let maintenance =
            last_maintenance.is_none_or(|at| at.elapsed() >= options.maintenance_every);
        let pass_options = CompactOptions {
            writer_wait: Some(options.writer_wait),
            retention: maintenance,
            recompress: maintenance,
            ..CompactOptions::default()
        };
        let outcome = compactor.run_once(&pass_options);
        on_pass(&outcome);
        let wait = match &outcome {
            Ok(_) => {
                failures = 0;
                if maintenance {
                    last_maintenance = Some(Instant::now());
                }
                options.idle_pass
            }
            Err(error) => {
                tracing::warn!(error = %chain(error), "compaction pass failed");
                failures = failures.saturating_add(1);
                backoff(options.retry_after_error, failures, options.idle_pass)
            }
        };
        match trigger.wait(wait) {
            Wake::Stopped => break,
            Wake::Woken => {
                // Let a burst settle; a stop during it still ends the loop at once.
                if trigger.wait(options.debounce) == Wake::Stopped {
                    break;
                }
            }
            Wake::Timeout => {}
        }
    }
}

/// `error` and its sources, joined by `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// `first × 2^(failures-1)`, at most `cap`.
fn backoff(first: Duration, failures: u32, cap: Duration) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    first.saturating_mul(factor).min(cap)
}

/// Watches a store's inbox and spool directories and wakes `trigger` when data is written
/// there. Dropping it stops watching.
pub struct InboxWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for InboxWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxWatcher").finish_non_exhaustive()
    }
}

/// Errors of [`watch_inbox`].
#[derive(Debug, thiserror::Error)]
#[error("watching {} for new records", path.display())]
pub struct WatchError {
    /// The directory.
    pub path: PathBuf,
    /// What failed (creating it, or the watch itself).
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Starts watching `store`'s inbox and spool directories (created 0700 when missing): a file
/// created or written there wakes `trigger`. Renames and removals (the seal consuming files)
/// do not, so a pass does not wake the next one.
///
/// # Errors
/// [`WatchError`] when a directory cannot be created or inotify refuses the watch (e.g. the
/// `fs.inotify.max_user_watches` limit).
pub fn watch_inbox(store: &Store, trigger: Arc<Trigger>) -> Result<InboxWatcher, WatchError> {
    use notify::{EventKind, RecursiveMode, Watcher, event::ModifyKind};
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
        ) {
            trigger.wake();
        }
    })
    .map_err(|e| WatchError {
        path: store.paths().inbox.clone(),
        source: Box::new(e),
    })?;
    for dir in [&store.paths().inbox, &store.paths().spool] {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| WatchError {
            path: dir.clone(),
            source,
        };
        crate::log::inbox::create_dir_private(dir).map_err(|e| failed(Box::new(e)))?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| failed(Box::new(e)))?;
    }
    Ok(InboxWatcher { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_times_out_and_stops() {
        let trigger = Trigger::new();
        assert_eq!(trigger.wait(Duration::from_millis(1)), Wake::Timeout);
        trigger.wake();
        trigger.wake();
        assert_eq!(trigger.wait(Duration::from_secs(60)), Wake::Woken);
        assert_eq!(trigger.wait(Duration::from_millis(1)), Wake::Timeout);
        trigger.stop();
        trigger.wake();
        assert_eq!(trigger.wait(Duration::from_secs(60)), Wake::Stopped);
        assert!(trigger.is_stopped());
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let trigger = Arc::new(Trigger::new());
        let waker = Arc::clone(&trigger);
        let thread = std::thread::spawn(move || waker.wake());
        assert_eq!(trigger.wait(Duration::from_secs(600)), Wake::Woken);
        thread.join().unwrap();
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let first = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(first, 1, cap), Duration::from_secs(1));
        assert_eq!(backoff(first, 3, cap), Duration::from_secs(4));
        assert_eq!(backoff(first, 40, cap), cap);
    }
}

/// The loop driven by the inbox watcher on a real store (library API, no CLI).
#[cfg(test)]
mod loop_tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::compactor::Consumer;
    use crate::config::Config;
    use crate::ingest::hook::{Payload, Placement, store_payload};

    const CONSUMERS: &[&dyn Consumer] = &[&crate::views::consumer::Views];

    fn payload(n: u64) -> Payload {
        Payload {
            raw: format!(
                r#"{{"hook_event_name":"UserPromptSubmit","session_id":"s-{n}","prompt":"p{n}"}}"#
            )
            .into_bytes(),
            truncated: None,
            ts: 1_700_000_000_000_000_000 + n,
            pty_session: None,
        }
    }

    fn applied(store: &Store) -> u64 {
        crate::views::applied_offset(store.paths())
            .ok()
            .flatten()
            .map_or(0, |offset| offset.0)
    }

    /// Issue 15 item 1: a pass runs when the inbox is written (not on the idle timer, set to
    /// an hour here), the loop goes idle after it, and a stop ends it.
    #[test]
    fn inbox_writes_wake_the_loop_and_stop_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&root, Config::default()).unwrap();
        let trigger = Arc::new(Trigger::new());
        let _watcher = watch_inbox(&store, Arc::clone(&trigger)).unwrap();
        let passes = Arc::new(AtomicU64::new(0));
        let options = ServiceOptions {
            idle_pass: Duration::from_secs(3600),
            debounce: Duration::from_millis(20),
            ..ServiceOptions::default()
        };
        std::thread::scope(|scope| {
            let loop_store = &store;
            let (loop_trigger, loop_passes) = (Arc::clone(&trigger), Arc::clone(&passes));
            let runner = scope.spawn(move || {
                run(
                    &Compactor::new(loop_store, CONSUMERS),
                    &loop_trigger,
                    &options,
                    &mut |pass| {
                        pass.as_ref().unwrap();
                        loop_passes.fetch_add(1, Ordering::SeqCst);
                    },
                );
            });
            let deadline = Instant::now() + Duration::from_secs(120);
            while passes.load(Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "no first pass");
                std::thread::sleep(Duration::from_millis(10));
            }
            for n in 0..3 {
                let stored = store_payload(&root, Config::default(), payload(n));
                assert_eq!(stored.placement, Placement::Inbox, "{:?}", stored.problems);
            }
            while applied(&store) < 3 {
                assert!(
                    Instant::now() < deadline,
                    "the watcher did not wake the loop"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let settled = passes.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(500));
            assert!(
                passes.load(Ordering::SeqCst) <= settled + 1,
                "the loop keeps waking itself"
            );
            trigger.stop();
            runner.join().unwrap();
        });
        assert_eq!(applied(&store), 3);
        let report = crate::log::verify(&store);
        assert!(report.is_clean(), "{report:?}");
    }
}
