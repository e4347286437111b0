//! A file writer whose `write` system calls run on a thread of their own.
//!
//! Writing the curated JSONL is mostly the kernel copying each buffer into
//! the page cache (`copy_folio_from_iter_atomic`: 47% of the output step's
//! thread in `perf record --call-graph dwarf` of `curate --threads 2` on 1M
//! files, 660 MB written). While that copy runs, the thread that formats the
//! lines waits. [`WriteBehind`] fills a buffer of [`CHUNK`] bytes, hands it to
//! a writer thread (at most [`DEPTH`] queued) and goes on formatting; the
//! file receives the same bytes in the same order. Buffers come back for
//! reuse.
//!
//! Errors are not lost: the writer thread stops at its first error and the
//! next `write`, `flush` or [`WriteBehind::finish`] returns it. `flush` waits
//! until everything handed over is written, so a flushed `WriteBehind`
//! behaves like a flushed `BufWriter`. `finish` returns the inner writer
//! (the file) for the caller's sync and rename.

use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes per buffer handed to the writer thread.
pub const CHUNK: usize = 1 << 20;
/// Buffers queued for the writer thread.
pub const DEPTH: usize = 4;

enum Job {
    Bytes(Vec<u8>),
    /// Answer on the channel once everything before is written.
    Flush(SyncSender<()>),
}

pub struct WriteBehind<W> {
    buf: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    spare: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<io::Result<W>>>,
    /// The writer thread's error, once seen; returned by every later call.
    failed: Option<(io::ErrorKind, String)>,
}

impl<W: Write + Send + 'static> WriteBehind<W> {
    pub fn new(mut file: W, name: &str) -> io::Result<WriteBehind<W>> {
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(DEPTH);
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let worker = std::thread::Builder::new().name(name.to_string()).spawn(
            move || -> io::Result<W> {
                for job in jobs_rx {
                    match job {
                        Job::Bytes(mut b) => {
                            file.write_all(&b)?;
                            b.clear();
                            let _ = spare_tx.try_send(b);
                        }
                        Job::Flush(done) => {
                            file.flush()?;
                            let _ = done.send(());
                        }
                    }
                }
                Ok(file)
            },
        )?;
        Ok(WriteBehind {
            buf: Vec::with_capacity(CHUNK),
            jobs: Some(jobs_tx),
            spare: spare_rx,
            worker: Some(worker),
            failed: None,
        })
    }

    /// The writer thread's error (it stopped): the first call joins the
    /// thread and returns its error as it was; later calls a copy (same
    /// kind and message).
    fn worker_error(&mut self) -> io::Error {
        if let Some((kind, msg)) = &self.failed {
            return io::Error::new(*kind, msg.clone());
        }
        self.jobs = None;
        let e = match self.worker.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            Some(Ok(Ok(_))) | None => io::Error::other("the writing thread stopped"),
            Some(Err(_)) => io::Error::other("the writing thread panicked"),
        };
        self.failed = Some((e.kind(), e.to_string()));
        e
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        if self.failed.is_some() {
            return Err(self.worker_error());
        }
        let jobs = self.jobs.as_ref().expect("present until finish");
        if jobs.send(job).is_err() {
            return Err(self.worker_error());
        }
        Ok(())
    }

    /// Hands the buffer over (if it holds anything) and takes a spare one.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        self.send(Job::Bytes(full))
    }

    /// Writes what is left, stops the thread and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.hand_over()?;
        self.jobs = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the writing thread panicked")),
            None => Err(self.worker_error()),
        }
    }
}

impl<W: Write + Send + 'static> Write for WriteBehind<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.failed.is_some() {
            return Err(self.worker_error());
        }
        while !data.is_empty() {
            let room = CHUNK - self.buf.len().min(CHUNK);
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() >= CHUNK {
                self.hand_over()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()?;
        let (done_tx, done_rx) = sync_channel(1);
        self.send(Job::Flush(done_tx))?;
        match done_rx.recv() {
            Ok(()) => Ok(()),
            Err(_) => Err(self.worker_error()),
        }
    }
}

impl<W> Drop for WriteBehind<W> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Read;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    #[test]
    fn the_file_gets_the_same_bytes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let want = data(5 * CHUNK + 777);
        let mut w = WriteBehind::new(File::create(&path).unwrap(), "test").unwrap();
        // Pieces of every size, some larger than a chunk.
        let mut at = 0;
        let mut step = 1;
        while at < want.len() {
            let end = (at + step).min(want.len());
            w.write_all(&want[at..end]).unwrap();
            at = end;
            step = (step * 3 + 1) % (2 * CHUNK + 5);
        }
        w.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), want.len());
        w.write_all(b"tail").unwrap();
        let f = w.finish().unwrap();
        drop(f);
        let mut got = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), want.len() + 4);
        assert!(got[..want.len()] == want[..] && &got[want.len()..] == b"tail");
    }

    #[test]
    fn a_write_error_comes_back_and_stays() {
        // /dev/full fails every write with ENOSPC.
        let Ok(f) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut w = WriteBehind::new(f, "test").unwrap();
        let chunk = data(CHUNK);
        let mut first = None;
        for _ in 0..3 * DEPTH + 3 {
            if let Err(e) = w.write_all(&chunk) {
                first = Some(e);
                break;
            }
        }
        let e = first.or_else(|| w.flush().err()).expect("an error");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        let again = w.write_all(b"x").unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::StorageFull, "{again}");
        assert!(w.flush().is_err());
        let e = w.finish().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
    }
}
