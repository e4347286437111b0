//! A reader that runs another reader on its own thread, a few chunks ahead.
//!
//! The output step reads every part from start to end: zstd decompression,
//! then splitting lines, parsing each line's head and writing it. On one
//! thread those alternate, so with a second core idle the step ran at
//! 1.08x of its one-thread speed (`perf`: decompression about a third of the
//! step). [`DecodeAhead`] moves the inner reader (the part's decompressor) to
//! a worker thread that fills chunks of [`CHUNK`] bytes and queues up to
//! [`DEPTH`] of them; the consumer sees the same bytes in the same order
//! through [`BufRead`]. Chunks go back to the worker for reuse, so a long
//! part allocates `DEPTH + 2` chunks in all.
//!
//! Errors keep their place: an error of the inner reader is returned after
//! the bytes read before it, and a worker that ends without saying so (a
//! panic) is an error, never a silent end of file. Dropping the reader
//! early (a task that stops at its range's end) stops the worker: its next
//! send fails and it returns; `Drop` waits for it.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes per chunk handed over.
pub const CHUNK: usize = 1 << 20;
/// Chunks queued ahead of the consumer.
pub const DEPTH: usize = 4;

enum Chunk {
    Bytes(Vec<u8>),
    End,
    Failed(io::Error),
}

pub struct DecodeAhead {
    chunks: Option<Receiver<Chunk>>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// Set once the worker said `End`: later reads return 0 bytes.
    ended: bool,
    worker: Option<JoinHandle<()>>,
}

impl DecodeAhead {
    /// Starts reading `inner` on a new thread named `name`.
    pub fn spawn<R: Read + Send + 'static>(mut inner: R, name: &str) -> io::Result<DecodeAhead> {
        let (tx, rx) = sync_channel::<Chunk>(DEPTH);
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let worker = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || loop {
                let mut buf: Vec<u8> = spare_rx.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let mut filled = 0;
                let failed = loop {
                    match inner.read(&mut buf[filled..]) {
                        Ok(0) => break None,
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                break None;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Some(e),
                    }
                };
                buf.truncate(filled);
                let at_end = filled < CHUNK;
                if filled > 0 && tx.send(Chunk::Bytes(buf)).is_err() {
                    return;
                }
                if let Some(e) = failed {
                    let _ = tx.send(Chunk::Failed(e));
                    return;
                }
                if at_end {
                    let _ = tx.send(Chunk::End);
                    return;
                }
            })?;
        Ok(DecodeAhead {
            chunks: Some(rx),
            spare: spare_tx,
            current: Vec::new(),
            pos: 0,
            ended: false,
            worker: Some(worker),
        })
    }
}

impl Read for DecodeAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for DecodeAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() && !self.ended {
            let Some(chunks) = &self.chunks else {
                return Ok(&[]);
            };
            match chunks.recv() {
                Ok(Chunk::Bytes(b)) => {
                    let used = std::mem::replace(&mut self.current, b);
                    self.pos = 0;
                    // A full spare queue just lets the chunk go.
                    let _ = self.spare.try_send(used);
                }
                Ok(Chunk::End) => self.ended = true,
                Ok(Chunk::Failed(e)) => {
                    self.chunks = None;
                    return Err(e);
                }
                Err(_) => {
                    self.chunks = None;
                    return Err(io::Error::other(
                        "the decompressing thread stopped before the end of its input",
                    ));
                }
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.current.len());
    }
}

impl Drop for DecodeAhead {
    fn drop(&mut self) {
        self.chunks = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call and fails at
    /// `fail_at` if set.
    struct Dribble {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_at: Option<usize>,
    }

    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.at >= f) {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad frame"));
            }
            let end = (self.at + self.step)
                .min(self.data.len())
                .min(self.fail_at.unwrap_or(usize::MAX));
            let n = (end - self.at).min(out.len());
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn same_bytes_as_the_inner_reader() {
        for (len, step) in [
            (0, 7),
            (1, 1),
            (CHUNK - 1, 4096),
            (CHUNK, 1 << 16),
            (CHUNK + 1, 1 << 16),
            (3 * CHUNK + 12_345, 99_999),
        ] {
            let want = data(len);
            let inner = Dribble {
                data: want.clone(),
                at: 0,
                step,
                fail_at: None,
            };
            let mut r = DecodeAhead::spawn(inner, "test").unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "len {len}");
            // After the end, still the end.
            assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0);
        }
    }

    #[test]
    fn lines_split_across_chunks_come_out_whole() {
        let mut want = Vec::new();
        for i in 0..200_000 {
            want.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 97)).as_bytes());
        }
        let inner = io::Cursor::new(want.clone());
        let r = DecodeAhead::spawn(inner, "test").unwrap();
        let lines: Vec<String> = r.lines().map(|l| l.unwrap()).collect();
        assert_eq!(lines.len(), 200_000);
        assert_eq!(lines.join("\n") + "\n", String::from_utf8(want).unwrap());
    }

    #[test]
    fn an_error_comes_after_the_bytes_before_it() {
        let len = 2 * CHUNK + 500;
        let fail_at = CHUNK + 100;
        let inner = Dribble {
            data: data(len),
            at: 0,
            step: 1 << 15,
            fail_at: Some(fail_at),
        };
        let mut r = DecodeAhead::spawn(inner, "test").unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 10_000];
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("end of file instead of the error"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(got, data(len)[..fail_at]);
    }

    #[test]
    fn a_panicking_inner_reader_is_an_error_not_an_end() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("decoder bug")
            }
        }
        let mut r = DecodeAhead::spawn(Panics, "test").unwrap();
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("stopped before the end"), "{err}");
    }

    #[test]
    fn dropping_early_stops_the_worker() {
        // Endless input: only a worker that notices the drop returns.
        let mut r = DecodeAhead::spawn(io::repeat(b'a'), "test").unwrap();
        let mut buf = vec![0u8; 100];
        r.read_exact(&mut buf).unwrap();
        drop(r); // joins; a worker that kept reading would hang here
    }
}
