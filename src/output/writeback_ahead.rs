//! A file writer that asks the kernel to start writing its bytes to disk as
//! it goes, so that the `fsync` of a finished file waits only for its tail.
//!
//! Every file this program writes is synced before its step or shard
//! commits (an `fsync` of an output, a `syncfs` of the work directory). A
//! buffered write only dirties the page cache, so without help the whole
//! file goes to disk inside that final sync, on the committing thread, with
//! the other cores idle: for the 757 MB curated file of 1M scale-corpus
//! files the `fsync` alone took 0.27 s of a 1.9 s output step (`strace -T`).
//! [`WritebackAhead`] calls `sync_file_range(SYNC_FILE_RANGE_WRITE)` on each
//! [`START_WRITEBACK`] bytes once written: it starts their writeback and
//! returns without waiting for the disk. This is RocksDB's `bytes_per_sync`
//! and PostgreSQL's `backend_flush_after`. With the curated file written
//! behind (see [`super::write_behind`]), the writeback runs on the writing
//! thread while the step formats the next lines, and the step took
//! 1.36-1.47 s instead of 1.85-1.90 s (benches/results/hot-paths.md).
//!
//! The bytes and their order are unchanged. An error of the hint is ignored
//! on purpose: it changes nothing about what was written, and the final
//! `fsync` reports any error of the writeback itself.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// Bytes written between two requests to start writeback.
pub const START_WRITEBACK: u64 = 16 << 20;

pub struct WritebackAhead {
    file: File,
    written: u64,
    /// Where the bytes not yet handed to writeback start.
    started: u64,
}

impl WritebackAhead {
    /// Writes to `file` from its current offset, which must be 0 (a new
    /// file): the ranges handed to writeback are counted from there.
    pub fn new(file: File) -> WritebackAhead {
        WritebackAhead {
            file,
            written: 0,
            started: 0,
        }
    }

    /// The file, for the caller's sync.
    pub fn into_inner(self) -> File {
        self.file
    }

    /// Writes all of `data` at `offset`, leaving the file's cursor alone:
    /// several threads may each write their own range at once. The bytes
    /// count for writeback once [`WritebackAhead::written_to`] says so.
    pub fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, offset)
    }

    /// The end of what is written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Says that every byte before `end` is written (by
    /// [`WritebackAhead::write_all_at`]), for the writeback requests.
    pub fn written_to(&mut self, end: u64) {
        self.written = self.written.max(end);
        if self.written - self.started >= START_WRITEBACK {
            self.start_writeback();
        }
    }

    fn start_writeback(&mut self) {
        let len = self.written - self.started;
        // SAFETY: the descriptor is open for the life of `self.file`; the
        // call reads no memory of ours and only schedules writeback.
        unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                self.started as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.started = self.written;
    }
}

impl Write for WritebackAhead {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data)?;
        self.written += n as u64;
        if self.written - self.started >= START_WRITEBACK {
            self.start_writeback();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_gets_the_same_bytes_across_writeback_requests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let want: Vec<u8> = (0..(2 * START_WRITEBACK as usize + 12_345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut w = WritebackAhead::new(File::create(&path).unwrap());
        for piece in want.chunks(3 << 20) {
            w.write_all(piece).unwrap();
        }
        // Requested once: after the sixth piece (18 MiB), the first past 16.
        assert_eq!(w.started, 18 << 20);
        let f = w.into_inner();
        f.sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == want);
    }

    #[test]
    fn ranges_written_by_several_threads_make_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let want: Vec<u8> = (0..(START_WRITEBACK as usize + 777_777))
            .map(|i| (i * 17 % 253) as u8)
            .collect();
        let mut w = WritebackAhead::new(File::create(&path).unwrap());
        let chunk = want.len() / 4 + 1;
        std::thread::scope(|s| {
            for (k, piece) in want.chunks(chunk).enumerate().rev() {
                let w = &w;
                s.spawn(move || w.write_all_at(piece, (k * chunk) as u64).unwrap());
            }
        });
        w.written_to(want.len() as u64);
        assert_eq!(w.started, want.len() as u64);
        let f = w.into_inner();
        f.sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == want);
    }

    #[test]
    fn a_file_that_cannot_take_the_hint_still_gets_its_bytes() {
        // A pipe has no page cache: the hint fails (ESPIPE) and is ignored.
        let (mut r, w) = std::io::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut got).unwrap();
            got
        });
        let mut w = WritebackAhead::new(File::from(std::os::fd::OwnedFd::from(w)));
        let want = vec![7u8; START_WRITEBACK as usize + 5];
        w.write_all(&want).unwrap();
        drop(w);
        assert!(reader.join().unwrap() == want);
    }
}
