//! The worker pool: threads that run jobs handed over by the reactor and
//! hand results back through a queue and a `mio::Waker`.
//!
//! Invariant: after a worker pushes a result, the reactor is woken unless a
//! wake is already pending; the reactor clears the pending flag *before* it
//! drains the queue, so no result is ever left without a wake.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

/// Wakes the reactor at most once per drain.
pub(crate) struct Wakeup {
    waker: mio::Waker,
    pending: AtomicBool,
}

impl Wakeup {
    pub fn new(waker: mio::Waker) -> Self {
        Wakeup {
            waker,
            pending: AtomicBool::new(false),
        }
    }

    pub fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!("cannot wake the reactor: {e}");
            }
        }
    }

    /// Called by the reactor before it drains what woke it.
    pub fn clear(&self) {
        self.pending.store(false, Ordering::Release);
    }
}

struct Queue<J> {
    jobs: VecDeque<J>,
    stopping: bool,
}

/// A fixed pool of threads running `run(job)` for each submitted job.
pub(crate) struct WorkerPool<J: Send + 'static> {
    queue: Arc<(Mutex<Queue<J>>, Condvar)>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static> WorkerPool<J> {
    pub fn start(threads: usize, run: impl Fn(J) + Send + Sync + 'static) -> std::io::Result<Self> {
        let queue = Arc::new((
            Mutex::new(Queue {
                jobs: VecDeque::new(),
                stopping: false,
            }),
            Condvar::new(),
        ));
        let run = Arc::new(run);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let run = Arc::clone(&run);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("dkv-worker-{i}"))
                    .spawn(move || loop {
                        let job = {
                            let (lock, ready) = &*queue;
                            let mut q = lock.lock();
                            loop {
                                if let Some(job) = q.jobs.pop_front() {
                                    break job;
                                }
                                if q.stopping {
                                    return;
                                }
                                ready.wait(&mut q);
                            }
                        };
                        run(job);
                    })?,
            );
        }
        Ok(WorkerPool {
            queue,
            threads: handles,
        })
    }

    pub fn submit(&self, job: J) {
        let (lock, ready) = &*self.queue;
        lock.lock().jobs.push_back(job);
        ready.notify_one();
    }

    /// Lets queued jobs finish, then joins the threads.
    pub fn stop(&mut self) {
        {
            let (lock, ready) = &*self.queue;
            lock.lock().stopping = true;
            ready.notify_all();
        }
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                log::error!("a worker thread panicked");
            }
        }
    }
}

impl<J: Send + 'static> Drop for WorkerPool<J> {
    fn drop(&mut self) {
        self.stop();
    }
}
