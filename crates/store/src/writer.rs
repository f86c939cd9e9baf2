//! The hand-off every backend uses between callers and its one writer thread: callers queue a
//! [`Job`] and block until the writer answers (or, queued from async code, await the answer),
//! which it gives only after the batch holding the job is durable. Dropping the handle closes the queue and joins the thread, so no
//! acknowledged-but-uncommitted work can outlive the store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trailmark_log::{SignerKey, VerifierKey};
use trailmark_model::{Blob, NewRecord};

use crate::{Appended, StoreError};

/// Where the writer answers a job: a caller blocked on it, or one awaiting it.
pub(crate) enum Reply {
    Blocking(mpsc::SyncSender<Result<Vec<Appended>, StoreError>>),
    Awaiting(tokio::sync::oneshot::Sender<Result<Vec<Appended>, StoreError>>),
}

impl Reply {
    /// Answers the caller; a caller that has gone away is not an error of the batch.
    pub(crate) fn send(self, answer: Result<Vec<Appended>, StoreError>) {
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(answer);
            }
            Reply::Awaiting(tx) => {
                let _ = tx.send(answer);
            }
        }
    }
}

/// One caller's append: its records (one atomic batch), the raw inputs they cite, and where to
/// answer.
pub(crate) struct Job {
    pub(crate) records: Vec<NewRecord>,
    pub(crate) blobs: Vec<Blob>,
    pub(crate) reply: Reply,
}

/// The writer thread and its queue.
pub(crate) struct WriterHandle {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// How long the last blocking caller waited for its answer, in µs (see [`Self::submit`]).
    last_wait_us: AtomicU64,
    /// Whether a blocking caller is spinning for its answer now: one at a time.
    spinning: AtomicBool,
    /// Whether callers may spin at all: not with one core, where a spinning caller would keep
    /// the writer it waits for from running.
    may_spin: bool,
}

/// Longest a blocking caller spins for its answer before it sleeps.
///
/// A thread asleep on its answer is woken by the writer through the kernel, and on a virtual
/// machine that wake-up costs tens of microseconds (a round trip between two threads took 40 µs
/// on the development machine): a quarter of a one-record append there. A caller whose answer
/// usually comes within this time therefore polls for it first; one whose answers take longer
/// (a slow disk, a remote database) sleeps at once, as does a second caller while one spins, and
/// every caller on a machine with one core.
const SPIN_MAX: Duration = Duration::from_micros(250);

impl WriterHandle {
    /// Starts the writer thread `name` running `work` over the job queue.
    pub(crate) fn spawn(
        name: &str,
        work: impl FnOnce(mpsc::Receiver<Job>) + Send + 'static,
    ) -> Result<WriterHandle, StoreError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || work(jobs))
            .map_err(|e| StoreError::Backend {
                op: "starting the writer thread",
                message: e.to_string(),
            })?;
        Ok(WriterHandle {
            queue: Some(queue),
            thread: Some(thread),
            // Until a caller has waited, the first one may spin.
            last_wait_us: AtomicU64::new(0),
            spinning: AtomicBool::new(false),
            may_spin: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
        })
    }

    /// Queues an append and waits for the writer's answer (given once the batch is durable).
    pub(crate) fn submit(
        &self,
        records: Vec<NewRecord>,
        blobs: Vec<Blob>,
    ) -> Result<Vec<Appended>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answers) = mpsc::sync_channel(1);
        let start = Instant::now();
        self.queue(records, blobs, Reply::Blocking(reply))?;
        let mut got = None;
        if self.may_spin
            && Duration::from_micros(self.last_wait_us.load(Ordering::Relaxed)) <= SPIN_MAX
            && !self.spinning.swap(true, Ordering::Acquire)
        {
            while start.elapsed() < SPIN_MAX {
                match answers.try_recv() {
                    Ok(a) => {
                        got = Some(a);
                        break;
                    }
                    Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            }
            self.spinning.store(false, Ordering::Release);
        }
        let answer = match got {
            Some(a) => a,
            None => answers.recv().map_err(|_| StoreError::writer_gone())?,
        };
        let waited = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_wait_us.store(waited, Ordering::Relaxed);
        answer
    }

    /// Queues an append without waiting: the answer (given once the batch is durable) is
    /// awaited on the returned [`crate::Pending`].
    pub(crate) fn submit_async(&self, records: Vec<NewRecord>, blobs: Vec<Blob>) -> crate::Pending {
        if records.is_empty() {
            return crate::Pending::ready(Ok(Vec::new()));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self.queue(records, blobs, Reply::Awaiting(reply)) {
            Ok(()) => crate::Pending::queued(answer),
            Err(e) => crate::Pending::ready(Err(e)),
        }
    }

    fn queue(
        &self,
        records: Vec<NewRecord>,
        blobs: Vec<Blob>,
        reply: Reply,
    ) -> Result<(), StoreError> {
        // No hashing of blobs here: a `Blob` is its bytes and their digest by construction.
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| StoreError::WriterStopped("the store is closing".into()))?;
        queue
            .send(Job {
                records,
                blobs,
                reply,
            })
            .map_err(|_| StoreError::WriterStopped("the writer thread has exited".into()))
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish the batch it is on and exit; joining makes
        // sure no acknowledged-but-uncommitted work can exist when the store handle is gone.
        self.queue.take();
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// A store opened for writing must be given the key its log was created with.
pub(crate) fn check_signer(signer: &SignerKey, verifier: &VerifierKey) -> Result<(), StoreError> {
    if signer.verifier() != *verifier {
        return Err(StoreError::Incompatible(format!(
            "the signing key {} is not this log's key ({})",
            signer.verifier(),
            verifier
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use trailmark_log::Hash;
    use trailmark_model::LogIndex;

    use super::*;

    fn one_record() -> Vec<NewRecord> {
        vec![
            trailmark_model::parse_record(
                r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P-1"}]}"#,
            )
            .unwrap(),
        ]
    }

    /// A writer answering job `n` with index `n`, after `delay(n)`.
    fn writer(delay: fn(u64) -> Duration) -> WriterHandle {
        WriterHandle::spawn("test-writer", move |jobs| {
            for (n, job) in jobs.into_iter().enumerate() {
                let n = n as u64;
                std::thread::sleep(delay(n));
                job.reply.send(Ok(vec![Appended {
                    index: LogIndex(n),
                    leaf_hash: Hash([0; 32]),
                    duplicate: false,
                }]));
            }
        })
        .unwrap()
    }

    /// Whether a caller polls or sleeps (answers within `SPIN_MAX`, answers slower, the one
    /// and then the other), each gets its own answer.
    #[test]
    fn a_blocking_caller_gets_its_answer_however_long_the_writer_takes() {
        for delay in [
            (|_| Duration::ZERO) as fn(u64) -> Duration,
            |_| SPIN_MAX * 3,
            |n| {
                if n % 2 == 0 {
                    Duration::ZERO
                } else {
                    SPIN_MAX * 3
                }
            },
        ] {
            let w = writer(delay);
            for n in 0..6 {
                let got = w.submit(one_record(), Vec::new()).unwrap();
                assert_eq!(got[0].index, LogIndex(n));
            }
        }
    }

    /// Callers on several threads at once (one polls, the others sleep) each get their own
    /// answer.
    #[test]
    fn concurrent_blocking_callers_each_get_their_answer() {
        let w = writer(|_| Duration::from_micros(50));
        let got: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..25)
                            .map(|_| w.submit(one_record(), Vec::new()).unwrap()[0].index.0)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    /// A writer that exits without answering, while its caller polls or sleeps: the caller
    /// gets an error, not a hang.
    #[test]
    fn a_caller_whose_writer_exits_without_answering_gets_an_error() {
        for wait in [Duration::ZERO, SPIN_MAX * 3] {
            let w = WriterHandle::spawn("test-writer", move |jobs| {
                if let Ok(job) = jobs.recv() {
                    std::thread::sleep(wait);
                    drop(job);
                }
            })
            .unwrap();
            assert!(matches!(
                w.submit(one_record(), Vec::new()),
                Err(StoreError::WriterStopped(_))
            ));
        }
    }
}
