//! The workers: `threads - 1` helper threads plus the calling thread, which walks and
//! hands jobs over through a bounded queue (each queued job holds an open file), works
//! off jobs itself when the queue is full, and joins the workers once the walk is done.
//! The first error stops everything: the walk at its next job, the workers at their next
//! one.

use std::collections::VecDeque;
use std::io;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use super::content::{Content, Job, Outcome, Worker};
use super::ScanError;

/// Jobs waiting at most, per thread.
const QUEUED_PER_THREAD: usize = 64;

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<Job>,
    /// No more jobs will come.
    closed: bool,
    /// The first error of a worker, for the walk to report.
    error: Option<ScanError>,
}

#[derive(Debug)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    stop: AtomicBool,
    capacity: usize,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a worker's error (the first one wins) and stops everyone.
    fn fail(&self, e: ScanError) {
        let mut state = self.lock();
        if state.error.is_none() {
            state.error = Some(e);
        }
        self.stop.store(true, Ordering::Relaxed);
        self.ready.notify_all();
    }

    /// The next job for a worker, waiting for one; `None` when stopped or done.
    fn next(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// How the walk hands over jobs.
#[derive(Debug)]
pub(crate) struct Emitter<'q, 'c, 's> {
    queue: &'q Queue,
    worker: Worker<'c, 's>,
    outcomes: Vec<Outcome>,
}

impl Emitter<'_, '_, '_> {
    /// Queues `job`; when the queue is full, works off the oldest job first.
    ///
    /// # Errors
    /// The first error of any worker, or of the job worked off here.
    pub(crate) fn emit(&mut self, job: Job) -> Result<(), ScanError> {
        let oldest = {
            let mut state = self.queue.lock();
            if let Some(e) = state.error.take() {
                return Err(e);
            }
            let oldest = if state.jobs.len() >= self.queue.capacity {
                state.jobs.pop_front()
            } else {
                None
            };
            state.jobs.push_back(job);
            self.queue.ready.notify_one();
            oldest
        };
        if let Some(job) = oldest {
            match self.worker.process(job) {
                Ok(outcome) => self.outcomes.push(outcome),
                Err(e) => {
                    self.queue.stop.store(true, Ordering::Relaxed);
                    self.queue.ready.notify_all();
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// A worker's loop: jobs until the queue is closed and empty, or stopped.
fn work(queue: &Queue, worker: &mut Worker<'_, '_>, outcomes: &mut Vec<Outcome>) {
    while let Some(job) = queue.next() {
        match worker.process(job) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => return queue.fail(e),
        }
    }
}

/// Runs `walk` on this thread with `threads - 1` helpers processing the jobs it emits, at
/// most `max_queued` of them waiting (each holds an open file); returns what the walk
/// returned and every job's outcome.
pub(crate) fn run<'c, 's, W>(
    threads: NonZeroUsize,
    max_queued: usize,
    content: &'c Content<'c, 's>,
    walk: impl FnOnce(&mut Emitter<'_, 'c, 's>) -> Result<W, ScanError>,
) -> Result<(W, Vec<Outcome>), ScanError> {
    let queue = Queue {
        state: Mutex::new(State::default()),
        ready: Condvar::new(),
        stop: AtomicBool::new(false),
        capacity: threads
            .get()
            .saturating_mul(QUEUED_PER_THREAD)
            .min(max_queued),
    };
    thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.get())
            .filter_map(|_| {
                thread::Builder::new()
                    .name("scan-worker".into())
                    .spawn_scoped(scope, || {
                        let mut outcomes = Vec::new();
                        work(&queue, &mut Worker::new(content), &mut outcomes);
                        outcomes
                    })
                    .ok()
            })
            .collect();
        let mut emitter = Emitter {
            queue: &queue,
            worker: Worker::new(content),
            outcomes: Vec::new(),
        };
        let walked = walk(&mut emitter);
        if walked.is_err() {
            queue.stop.store(true, Ordering::Relaxed);
        }
        queue.close();
        let Emitter {
            mut worker,
            mut outcomes,
            ..
        } = emitter;
        work(&queue, &mut worker, &mut outcomes);
        let mut panicked = false;
        for helper in helpers {
            match helper.join() {
                Ok(more) => outcomes.extend(more),
                Err(_) => panicked = true,
            }
        }
        let walked = walked?;
        if let Some(e) = queue.lock().error.take() {
            return Err(e);
        }
        if panicked {
            return Err(ScanError::Io {
                op: "scan",
                path: PathBuf::new(),
                source: io::Error::other("a worker thread panicked"),
            });
        }
        Ok((walked, outcomes))
    })
}
