//! Group commit of the write-ahead log: request handlers append their
//! records themselves and wait; one thread syncs what has been appended and
//! answers every request a sync covers.
//!
//! A handler appends under the log's lock (a buffered write: no disk wait)
//! and queues a waiter for its record. The sync thread takes the number of
//! records appended and a [`SyncHandle`](super::wal::SyncHandle) under the
//! same lock, lets go of it, syncs (`fdatasync`), and answers every waiter
//! up to that number. Appends go on during a sync, so the next sync covers
//! all that came while the last one ran: batches form without a timer or
//! a queue between threads. (A handler whose record closes a segment syncs
//! that segment itself, under the lock, once per segment.)
//!
//! When to sync: while other requests are being decoded ([`Coming`]) the
//! sync thread waits for them — at most [`COMMIT_WAIT`] after the oldest
//! waiter came — as a request mid-decode would otherwise need a sync of its
//! own right after this one. It is woken when the request threads run out
//! of work ([`IdleHook`], the runtime's park hook: requests already read
//! from their sockets join the batch too; at the latest the commit wait
//! after the first request waiting), or without a hook by the last request
//! to arrive; a refused request that was coming wakes it as well.
//!
//! Without fsync ([`SyncPolicy::Never`]) a handler appends and returns:
//! there is nothing to wait for.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::wal::{SyncPolicy, Wal, WalError};

/// How long the sync thread waits for requests still being decoded before
/// it syncs a batch without them: a sync costs CPU and a disk interrupt,
/// while a request still being decoded is usually a fraction of this
/// away (decode speeds: BENCHMARKS.md).
pub const COMMIT_WAIT: Duration = Duration::from_millis(1);

/// How often old segments are expired.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// What the log has done, for `/metrics` and `/readyz`.
#[derive(Default)]
pub struct LogStats {
    /// Record bytes appended (payloads).
    pub bytes: AtomicU64,
    /// Group commits (fsyncs).
    pub commits: AtomicU64,
    /// Closed segments compaction found damaged and set aside.
    pub damaged_segments: AtomicU64,
    /// Appends and syncs that failed (their requests were refused).
    pub failures: AtomicU64,
    /// The last failure, when it happened and what it was; cleared by the
    /// next append or sync that works.
    last_failure: Mutex<Option<(Instant, String)>>,
}

impl LogStats {
    /// Counts a failure, printing it when it starts a run of them.
    fn failed(&self, failure: &LogFailure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none() {
            eprintln!("tracelens: error: writing the log: {failure}; the requests it held are refused (retryable)");
        }
        *last = Some((Instant::now(), failure.to_string()));
    }

    /// A write or sync that worked ends a run of failures.
    fn worked(&self) {
        let mut last = self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        if last.take().is_some() {
            eprintln!("tracelens: the log is written again");
        }
    }

    /// The last failure, if no append or sync has worked since: how long
    /// ago, and what it was.
    pub fn last_failure(&self) -> Option<(Duration, String)> {
        let last = self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().map(|(at, why)| (at.elapsed(), why.clone()))
    }
}

/// Settings of a [`GroupCommit`].
#[derive(Clone, Copy, Debug)]
pub struct CommitConfig {
    /// Closed segments last written longer ago are deleted.
    pub retention: Duration,
    /// See [`COMMIT_WAIT`].
    pub commit_wait: Duration,
}

/// The log as the request handlers use it.
pub struct GroupCommit {
    inner: Arc<Inner>,
    /// The runtime's park hook wakes the sync thread ([`IdleHook`]).
    idle_hooked: bool,
}

/// Tells group commit when the request threads run out of work: the
/// runtime calls [`IdleHook::idle`] before a worker thread parks
/// (`on_thread_park`). The sync thread then waits for every request the
/// runtime had ready (read from its socket, being decoded) to be appended,
/// not only for those already announced as [`Coming`]: on the benchmark
/// load 1.8 requests per sync instead of 1.5-1.7 when the last request to
/// arrive wakes it. A runtime that stays busy does not hold a sync back
/// longer than the commit wait: the first request waiting then wakes the
/// sync thread. Without a hook, the last request to arrive wakes it after
/// yielding to the runtime once.
#[derive(Clone, Default)]
pub struct IdleHook(Arc<OnceLock<Weak<Inner>>>);

impl IdleHook {
    /// A request thread is about to park: wake the sync thread if requests
    /// wait and none is coming.
    pub fn idle(&self) {
        if let Some(inner) = self.0.get().and_then(Weak::upgrade) {
            inner.nudge();
        }
    }
}

/// The thread that syncs; [`Syncer::stop`] ends it.
pub struct Syncer {
    inner: Arc<Inner>,
    /// Taken by [`Syncer::stop`].
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the sync thread.
    wake: Condvar,
    /// Requests announced ([`Coming`]) and not yet appended or refused.
    coming: AtomicUsize,
    durable: bool,
    config: CommitConfig,
    stats: Arc<LogStats>,
}

struct State {
    wal: Wal,
    /// Records appended since the log was opened.
    appended: u64,
    /// Requests waiting for a sync, in the order of their records.
    waiters: VecDeque<Waiter>,
    /// The sync thread is waiting on [`Inner::wake`].
    asleep: bool,
    /// Asked to stop: sync what is waiting, then end.
    stopping: bool,
    /// The sync thread has ended: appends are refused.
    ended: bool,
}

struct Waiter {
    /// The number of its record ([`State::appended`] after it).
    record: u64,
    since: Instant,
    done: tokio::sync::oneshot::Sender<Result<(), LogFailure>>,
}

/// Why a record was not logged, or not made durable.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LogFailure {
    /// The log is closed: the server is stopping.
    #[error("the log's sync thread stopped")]
    Stopped,
    /// Appending the record failed.
    #[error(transparent)]
    Append(Arc<WalError>),
    /// Syncing the log failed (every record the sync covered is refused).
    #[error(transparent)]
    Sync(Arc<WalError>),
}

/// Marks a request on its way to the log (being decoded) until it is
/// appended or refused; the sync thread waits for such requests.
pub struct Coming<'a>(&'a Inner);

impl Coming<'_> {
    /// Ends the announcement with the log's lock held (the caller decides
    /// on waking the sync thread); returns how many are still coming.
    fn arrive(self) -> usize {
        let left = self.0.coming.fetch_sub(1, Ordering::SeqCst) - 1;
        std::mem::forget(self);
        left
    }
}

impl Drop for Coming<'_> {
    /// Refused (or nothing to log): the sync thread may have been waiting
    /// for this request alone.
    fn drop(&mut self) {
        if self.0.coming.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.nudge();
        }
    }
}

impl GroupCommit {
    /// Takes over the log and starts the sync thread (with fsync; without,
    /// handlers append and return and the thread only expires segments).
    /// `idle`: the runtime's park hook, if it has one (one log per hook).
    pub fn start(
        wal: Wal,
        config: CommitConfig,
        stats: Arc<LogStats>,
        idle: Option<&IdleHook>,
    ) -> std::io::Result<(GroupCommit, Syncer)> {
        let durable = wal.sync_policy() == SyncPolicy::EveryAppend;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                wal,
                appended: 0,
                waiters: VecDeque::new(),
                asleep: false,
                stopping: false,
                ended: false,
            }),
            wake: Condvar::new(),
            coming: AtomicUsize::new(0),
            durable,
            config,
            stats,
        });
        let thread = {
            let inner = inner.clone();
            std::thread::Builder::new().name("tracelens-wal".into()).spawn(move || inner.sync_loop())?
        };
        let idle_hooked = idle.is_some_and(|hook| hook.0.set(Arc::downgrade(&inner)).is_ok());
        Ok((GroupCommit { inner: inner.clone(), idle_hooked }, Syncer { inner, thread: Some(thread) }))
    }

    /// Announces a request that will be appended (or refused) soon.
    pub fn coming(&self) -> Coming<'_> {
        self.inner.coming.fetch_add(1, Ordering::SeqCst);
        Coming(&self.inner)
    }

    /// What the log has done.
    pub fn stats(&self) -> &LogStats {
        &self.inner.stats
    }

    /// Where the log is (see [`Wal::position`]).
    pub fn position(&self) -> Result<(u64, u64), LogFailure> {
        let state = self.inner.lock();
        if state.ended {
            return Err(LogFailure::Stopped);
        }
        Ok(state.wal.position())
    }

    /// Appends a record (given in parts) and returns once it is durable (per
    /// the sync policy).
    pub async fn append(&self, parts: &[&[u8]], coming: Coming<'_>) -> Result<(), LogFailure> {
        let Some(mut pending) = self.submit(parts, coming)? else { return Ok(()) };
        if pending.last && !self.idle_hooked {
            // Let the runtime take up requests that are ready before the
            // sync thread is woken: they join this sync.
            tokio::task::yield_now().await;
            self.inner.nudge();
        }
        let answer = if pending.first && self.idle_hooked {
            // The runtime's park hook starts the sync; should the runtime
            // stay busy, the first waiter starts it after the commit wait.
            match tokio::time::timeout(self.inner.config.commit_wait, &mut pending.durable).await {
                Ok(answer) => answer,
                Err(_) => {
                    self.inner.wake_now();
                    pending.durable.await
                }
            }
        } else {
            pending.durable.await
        };
        match answer {
            Ok(result) => result,
            Err(_) => Err(LogFailure::Stopped),
        }
    }

    /// Appends a record; with fsync, returns where its sync will be said.
    fn submit(&self, parts: &[&[u8]], coming: Coming<'_>) -> Result<Option<Pending>, LogFailure> {
        let inner = &*self.inner;
        let bytes: usize = parts.iter().map(|p| p.len()).sum();
        let mut state = inner.lock();
        let left = coming.arrive();
        if state.ended {
            return Err(LogFailure::Stopped);
        }
        if state.wal.segment_failed() && !state.waiters.is_empty() {
            // A sync failed: what the waiting requests appended is in doubt
            // and no later sync can vouch for it. They are refused; this
            // append starts a new segment.
            let failure = LogFailure::Sync(Arc::new(WalError::SyncFailed { path: state.wal.current_path() }));
            for waiter in state.waiters.drain(..) {
                let _ = waiter.done.send(Err(failure.clone()));
            }
        }
        let appended = state.wal.append_parts_unsynced(parts);
        let result = match appended {
            Err(e) => {
                let failure = LogFailure::Append(Arc::new(e));
                inner.stats.failed(&failure);
                Err(failure)
            }
            Ok(()) if !inner.durable => {
                inner.stats.worked();
                Ok(None)
            }
            Ok(()) => {
                state.appended += 1;
                let (done, durable) = tokio::sync::oneshot::channel();
                let record = state.appended;
                state.waiters.push_back(Waiter { record, since: Instant::now(), done });
                Ok(Some(Pending { durable, last: left == 0, first: state.waiters.len() == 1 }))
            }
        };
        // The first waiter while others are coming: the sync thread now
        // waits for them, at most the commit wait. (The last to come wakes
        // it through [`Inner::nudge`].)
        if state.asleep && left > 0 && state.waiters.len() == 1 {
            inner.wake.notify_one();
        }
        if left == 0 && result.is_err() {
            drop(state);
            inner.nudge();
        }
        if result.is_ok() {
            inner.stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        }
        result
    }
}

/// A record appended with fsync, waiting for its sync.
struct Pending {
    durable: tokio::sync::oneshot::Receiver<Result<(), LogFailure>>,
    /// Nothing else was coming: the sync thread is to be woken.
    last: bool,
    /// No other request was waiting.
    first: bool,
}

impl Syncer {
    /// Syncs and answers what is waiting, ends the thread and closes the log.
    /// Call once every handler is done.
    pub fn stop(mut self) {
        self.signal_stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn signal_stop(&self) {
        self.inner.lock().stopping = true;
        self.inner.wake.notify_one();
    }
}

impl Drop for Syncer {
    /// Dropped without [`Syncer::stop`] (the server failed to start): the
    /// thread still syncs what waits and ends, without being waited for.
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.signal_stop();
        }
    }
}

/// On the sync thread's way out (a stop, or a panic): later appends are
/// refused and the requests still waiting are told.
struct Ending<'a>(&'a Inner);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.ended = true;
        state.waiters.clear();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere under the lock leaves the log as consistent as
        // the WAL's own error handling does.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the sync thread if it waits for requests and none is coming.
    fn nudge(&self) {
        if !self.durable {
            return;
        }
        let state = self.lock();
        if state.asleep && !state.waiters.is_empty() && self.coming.load(Ordering::SeqCst) == 0 {
            self.wake.notify_one();
        }
    }

    /// Wakes the sync thread if it sleeps while requests wait (it syncs
    /// them if the oldest has waited the commit wait).
    fn wake_now(&self) {
        let state = self.lock();
        if state.asleep && !state.waiters.is_empty() {
            self.wake.notify_one();
        }
    }

    fn sleep<'a>(&self, mut state: MutexGuard<'a, State>, at_most: Duration) -> MutexGuard<'a, State> {
        state.asleep = true;
        let mut state = self.wake.wait_timeout(state, at_most).unwrap_or_else(|p| p.into_inner()).0;
        state.asleep = false;
        state
    }

    fn sync_loop(&self) {
        let _ending = Ending(self);
        let mut last_expiry = Instant::now();
        let mut batch = Vec::new();
        let mut state = self.lock();
        loop {
            // Wait for a batch worth syncing.
            loop {
                // Under load as well as when idle: now and then.
                if last_expiry.elapsed() >= EXPIRY_INTERVAL {
                    if let Err(e) = state.wal.expire(self.config.retention) {
                        eprintln!("tracelens: warning: expiring old log segments: {e}");
                    }
                    last_expiry = Instant::now();
                }
                let Some(oldest) = state.waiters.front() else {
                    if state.stopping {
                        return;
                    }
                    state = self.sleep(state, EXPIRY_INTERVAL);
                    continue;
                };
                let waited = oldest.since.elapsed();
                if state.stopping || waited >= self.config.commit_wait || self.coming.load(Ordering::SeqCst) == 0 {
                    break;
                }
                state = self.sleep(state, self.config.commit_wait - waited);
            }
            let (target, handle) = (state.appended, state.wal.sync_handle());
            drop(state);
            let result = handle.sync().map_err(|e| LogFailure::Sync(Arc::new(e)));
            drop(handle);
            state = self.lock();
            let covered = state.waiters.partition_point(|w| w.record <= target);
            batch.extend(state.waiters.drain(..covered));
            drop(state);
            match &result {
                Ok(()) => {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    self.stats.worked();
                }
                Err(e) => self.stats.failed(e),
            }
            for waiter in batch.drain(..) {
                let _ = waiter.done.send(result.clone());
            }
            state = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wal::{WalConfig, replay};

    fn open(dir: &std::path::Path, commit_wait: Duration) -> (GroupCommit, Syncer) {
        open_hooked(dir, commit_wait, None)
    }

    fn open_hooked(dir: &std::path::Path, commit_wait: Duration, hook: Option<&IdleHook>) -> (GroupCommit, Syncer) {
        let (wal, _) = Wal::open(WalConfig::new(dir)).unwrap();
        let config = CommitConfig { retention: Duration::from_secs(3600), commit_wait };
        GroupCommit::start(wal, config, Arc::default(), hook).unwrap()
    }

    /// Lets the sync thread settle into its wait (it looks at what is
    /// coming whenever it wakes).
    fn settle(log: &GroupCommit) {
        std::thread::sleep(Duration::from_millis(20));
        while !log.inner.lock().asleep {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// [`GroupCommit::append`] up to its wait, from a thread.
    fn submit(
        log: &GroupCommit,
        body: &[u8],
        coming: Coming<'_>,
    ) -> tokio::sync::oneshot::Receiver<Result<(), LogFailure>> {
        let pending = log.submit(&[b"\x01", body], coming).unwrap().expect("durable");
        if pending.last {
            log.inner.nudge();
        }
        pending.durable
    }

    fn records(dir: &std::path::Path) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        replay(dir, &mut |r| records.push(r[1..].to_vec())).unwrap();
        records
    }

    /// A request appended while another is announced as coming joins its
    /// sync (one fsync for both); the sync goes as soon as nothing more is
    /// coming, not at the end of the wait.
    #[test]
    fn a_sync_waits_for_requests_still_being_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let (log, syncer) = open(dir.path(), Duration::from_secs(20));
        let started = Instant::now();
        let (a_coming, b_coming) = (log.coming(), log.coming());
        let a = submit(&log, b"first", a_coming);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(log.stats().commits.load(Ordering::SeqCst), 0, "synced without the request still coming");
        let b = submit(&log, b"second", b_coming);
        assert!(matches!(a.blocking_recv().unwrap(), Ok(())));
        assert!(matches!(b.blocking_recv().unwrap(), Ok(())));
        assert_eq!(log.stats().commits.load(Ordering::SeqCst), 1);
        // Nothing coming: a lone request is synced at once.
        let c = submit(&log, b"third", log.coming());
        assert!(matches!(c.blocking_recv().unwrap(), Ok(())));
        assert_eq!(log.stats().commits.load(Ordering::SeqCst), 2);
        // A request announced but refused before the log ends the wait too.
        let refused = log.coming();
        let d = submit(&log, b"fourth", log.coming());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(log.stats().commits.load(Ordering::SeqCst), 2, "synced without the refused request");
        drop(refused);
        assert!(matches!(d.blocking_recv().unwrap(), Ok(())));
        assert!(started.elapsed() < Duration::from_secs(10), "waited out the commit wait: {:?}", started.elapsed());
        assert_eq!(log.stats().bytes.load(Ordering::SeqCst), 4 + 5 + 6 + 5 + 6);
        syncer.stop();
        assert_eq!(records(dir.path()), [&b"first"[..], b"second", b"third", b"fourth"]);
    }

    /// A request that never arrives holds a sync back for the commit wait
    /// only.
    #[test]
    fn a_sync_waits_no_longer_than_the_commit_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (log, syncer) = open(dir.path(), Duration::from_millis(100));
        let _stuck = log.coming();
        let started = Instant::now();
        let a = submit(&log, b"first", log.coming());
        assert!(matches!(a.blocking_recv().unwrap(), Ok(())));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "synced before the commit wait: {waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        syncer.stop();
        assert_eq!(records(dir.path()), [b"first"]);
    }

    /// With a runtime's park hook, the sync goes when the request threads
    /// run out of work (and nothing is coming), not when the last request
    /// arrives.
    #[test]
    fn with_an_idle_hook_a_sync_waits_for_the_runtime_to_idle() {
        let dir = tempfile::tempdir().unwrap();
        let hook = IdleHook::default();
        let (log, syncer) = open_hooked(dir.path(), Duration::from_secs(20), Some(&hook));
        assert!(log.idle_hooked);
        settle(&log);
        let started = Instant::now();
        let busy = log.coming();
        let pending = log.submit(&[b"\x01", b"first"], log.coming()).unwrap().expect("durable");
        assert!(!pending.last);
        settle(&log);
        hook.idle(); // a request is still being decoded
        let second = log.submit(&[b"\x01", b"second"], busy).unwrap().expect("durable");
        assert!(second.last);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(log.stats().commits.load(Ordering::SeqCst), 0, "synced before the runtime idled");
        hook.idle();
        assert!(matches!(pending.durable.blocking_recv().unwrap(), Ok(())));
        assert!(matches!(second.durable.blocking_recv().unwrap(), Ok(())));
        assert_eq!(log.stats().commits.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(10), "waited out the commit wait");
        // A second log cannot take the same hook.
        let other = tempfile::tempdir().unwrap();
        let (other_log, other_syncer) = open_hooked(other.path(), Duration::from_secs(20), Some(&hook));
        assert!(!other_log.idle_hooked);
        other_syncer.stop();
        syncer.stop();
        assert_eq!(records(dir.path()), [&b"first"[..], b"second"]);
    }

    /// With a park hook that never fires (a runtime that stays busy), a
    /// request is still synced, after the commit wait.
    #[test]
    fn with_an_idle_hook_a_busy_runtime_still_gets_its_sync() {
        let dir = tempfile::tempdir().unwrap();
        let hook = IdleHook::default();
        let (log, syncer) = open_hooked(dir.path(), Duration::from_millis(100), Some(&hook));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        settle(&log);
        let started = Instant::now();
        runtime.block_on(log.append(&[b"\x01", b"first"], log.coming())).unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "synced before the commit wait: {waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        assert_eq!(log.stats().commits.load(Ordering::SeqCst), 1);
        syncer.stop();
        assert_eq!(records(dir.path()), [b"first"]);
    }

    /// A syncer dropped without a stop still ends its thread, after syncing
    /// what waits.
    #[test]
    fn a_dropped_syncer_ends_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (log, syncer) = open(dir.path(), Duration::from_secs(20));
        let stuck = log.coming();
        let a = submit(&log, b"first", log.coming());
        let alive = Arc::downgrade(&syncer.inner);
        drop(syncer);
        assert!(matches!(a.blocking_recv().unwrap(), Ok(())));
        drop(stuck);
        drop(log);
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive.upgrade().is_some() {
            assert!(Instant::now() < deadline, "the sync thread still holds the log");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(records(dir.path()), [b"first"]);
    }

    /// Records appended while a sync runs are covered by the next one, from
    /// many threads at once, and every one is answered and replayed.
    #[test]
    fn concurrent_appends_are_all_synced_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (log, syncer) = open(dir.path(), COMMIT_WAIT);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..50u8 {
                        let done = submit(log, &[t, i], log.coming());
                        assert!(matches!(done.blocking_recv().unwrap(), Ok(())));
                    }
                });
            }
        });
        let commits = log.stats().commits.load(Ordering::SeqCst);
        assert!((1..=200).contains(&commits), "{commits}");
        syncer.stop();
        let records = records(dir.path());
        assert_eq!(records.len(), 200);
        for t in 0..4u8 {
            let mine: Vec<u8> = records.iter().filter(|r| r[0] == t).map(|r| r[1]).collect();
            assert_eq!(mine, (0..50).collect::<Vec<u8>>(), "thread {t}'s records in order");
        }
    }

    /// Stopping syncs what is waiting; appends after that are refused, not
    /// left waiting.
    #[test]
    fn after_a_stop_appends_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (log, syncer) = open(dir.path(), Duration::from_secs(20));
        let _stuck = log.coming();
        let a = submit(&log, b"first", log.coming());
        syncer.stop();
        assert!(matches!(a.blocking_recv().unwrap(), Ok(())));
        let refused = log.submit(&[b"\x01", b"late"], log.coming());
        assert!(matches!(refused, Err(LogFailure::Stopped)), "{:?}", refused.err());
        assert_eq!(records(dir.path()), [b"first"]);
    }
}
