//! The hand-off every backend uses between callers and its one writer thread: callers queue a
//! [`Job`] and block until the writer answers (or, queued from async code, await the answer),
//! which it gives only after the batch holding the job is durable. Dropping the handle closes the queue and joins the thread, so no
//! acknowledged-but-uncommitted work can outlive the store.

use std::sync::mpsc;
use std::thread::JoinHandle;

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
}

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
        let (reply, answer) = mpsc::sync_channel(1);
        self.queue(records, blobs, Reply::Blocking(reply))?;
        answer.recv().map_err(|_| StoreError::writer_gone())?
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
