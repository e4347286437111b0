//! External sorting of fixed-size records under a memory budget.
//!
//! LSH band records and candidate edges can outgrow memory (1.6 billion band
//! records of 12 bytes for The Stack v2 Python; see the module docs of
//! [`super`]). [`ExternalSorter`] keeps records in a buffer of at most
//! `budget` bytes; when it fills, the buffer is sorted (in parallel) and
//! written to a run file in the scratch directory. [`ExternalSorter::finish`]
//! returns one sorted stream: the buffer itself when nothing spilled, else a
//! k-way merge (a binary heap over one buffered reader per run). More than
//! [`MAX_FAN_IN`] runs are first merged in groups into longer runs, so open
//! files and reader buffers stay bounded whatever the budget.
//!
//! With `dedup`, equal records collapse to one, both inside a buffer before
//! it spills (so a buffer of repeats compacts instead of spilling) and in the
//! merged stream.
//!
//! DETERMINISM: records are totally ordered and equal records are identical
//! bytes, so the stream is the same whether and however often we spilled.

use anyhow::{Context, Result};
use rayon::slice::ParallelSliceMut;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Most runs merged at once.
pub const MAX_FAN_IN: usize = 64;
/// Smallest in-memory buffer, in records, whatever the budget.
pub const MIN_BUFFER_RECORDS: usize = 256;

/// A fixed-size, totally ordered record with a little-endian byte form.
pub trait FixedRecord: Copy + Ord + Send + Sync {
    const SIZE: usize;
    fn write_le(&self, out: &mut [u8]);
    fn read_le(bytes: &[u8]) -> Self;
}

impl FixedRecord for u64 {
    const SIZE: usize = 8;
    fn write_le(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
    fn read_le(bytes: &[u8]) -> Self {
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        u64::from_le_bytes(b)
    }
}

/// What spilling cost, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpillStats {
    pub records: u64,
    pub runs: u64,
    pub bytes_spilled: u64,
}

/// Sorts records that may not fit in memory.
pub struct ExternalSorter<R: FixedRecord> {
    buf: Vec<R>,
    cap: usize,
    dedup: bool,
    dir: PathBuf,
    name: &'static str,
    runs: Vec<PathBuf>,
    next_run: usize,
    stats: SpillStats,
}

impl<R: FixedRecord> ExternalSorter<R> {
    /// A sorter holding at most `budget_bytes` of records in memory, spilling
    /// run files named `<name>-<n>.run` into `dir`.
    pub fn new(budget_bytes: u64, dedup: bool, dir: &Path, name: &'static str) -> Self {
        let cap = ((budget_bytes / std::mem::size_of::<R>().max(1) as u64) as usize)
            .max(MIN_BUFFER_RECORDS);
        ExternalSorter {
            buf: Vec::new(),
            cap,
            dedup,
            dir: dir.to_path_buf(),
            name,
            runs: Vec::new(),
            next_run: 0,
            stats: SpillStats::default(),
        }
    }

    pub fn push(&mut self, r: R) -> Result<()> {
        if self.buf.len() >= self.cap {
            self.make_room()?;
        }
        if self.buf.len() == self.buf.capacity() {
            // Doubling, but never past the budget: a plain `push` would
            // double a buffer of 0.6 budgets to 1.2.
            let target = (self.buf.capacity() * 2).clamp(MIN_BUFFER_RECORDS, self.cap);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.push(r);
        self.stats.records += 1;
        Ok(())
    }

    pub fn stats(&self) -> SpillStats {
        self.stats
    }

    fn sort_buf(&mut self) {
        self.buf.par_sort_unstable();
        if self.dedup {
            self.buf.dedup();
        }
    }

    fn make_room(&mut self) -> Result<()> {
        self.sort_buf();
        // PERF: a buffer that compacted to under half its size (repeated
        // candidate edges) keeps going in memory instead of spilling.
        if self.dedup && self.buf.len() <= self.cap / 2 {
            return Ok(());
        }
        let path = self.run_path();
        write_run(&path, &self.buf)?;
        self.stats.runs += 1;
        self.stats.bytes_spilled += (self.buf.len() * R::SIZE) as u64;
        self.runs.push(path);
        self.buf.clear();
        Ok(())
    }

    fn run_path(&mut self) -> PathBuf {
        self.next_run += 1;
        self.dir
            .join(format!("{}-{}.run", self.name, self.next_run))
    }

    /// The records in ascending order (deduplicated when asked).
    pub fn finish(mut self) -> Result<SortedStream<R>> {
        self.sort_buf();
        if self.runs.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            return Ok(SortedStream {
                inner: Inner::Memory(buf.into_iter()),
                last: None,
                dedup: self.dedup,
                stats: self.stats,
            });
        }
        if !self.buf.is_empty() {
            let path = self.run_path();
            write_run(&path, &self.buf)?;
            self.stats.runs += 1;
            self.stats.bytes_spilled += (self.buf.len() * R::SIZE) as u64;
            self.runs.push(path);
        }
        self.buf = Vec::new();
        // Reader buffers share the budget the in-memory buffer had.
        let budget = (self.cap * std::mem::size_of::<R>()) as u64;
        while self.runs.len() > MAX_FAN_IN {
            let group: Vec<PathBuf> = self.runs.drain(..MAX_FAN_IN).collect();
            let path = self.run_path();
            let mut merge = Merge::<R>::open(&group, budget, self.dedup)?;
            let mut w = RunWriter::create(&path)?;
            while let Some(r) = merge.next()? {
                w.push(&r)?;
            }
            let written = w.finish()?;
            self.stats.bytes_spilled += written;
            drop(merge);
            for p in &group {
                let _ = std::fs::remove_file(p);
            }
            self.runs.push(path);
        }
        let mut merge = Merge::open(&self.runs, budget, self.dedup)?;
        // The stream now owns the run files and removes them when dropped.
        merge.owned = std::mem::take(&mut self.runs);
        Ok(SortedStream {
            inner: Inner::Merge(merge),
            last: None,
            dedup: self.dedup,
            stats: self.stats,
        })
    }
}

impl<R: FixedRecord> Drop for ExternalSorter<R> {
    fn drop(&mut self) {
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
    }
}

struct RunWriter {
    path: PathBuf,
    w: BufWriter<File>,
    bytes: u64,
    scratch: Vec<u8>,
}

impl RunWriter {
    fn create(path: &Path) -> Result<RunWriter> {
        let f = File::create(path)
            .with_context(|| format!("cannot create spill file {}", path.display()))?;
        Ok(RunWriter {
            path: path.to_path_buf(),
            w: BufWriter::with_capacity(1 << 20, f),
            bytes: 0,
            scratch: Vec::new(),
        })
    }

    fn push<R: FixedRecord>(&mut self, r: &R) -> Result<()> {
        self.scratch.resize(R::SIZE, 0);
        r.write_le(&mut self.scratch);
        self.w
            .write_all(&self.scratch)
            .with_context(|| format!("cannot write spill file {}", self.path.display()))?;
        self.bytes += R::SIZE as u64;
        Ok(())
    }

    fn finish(mut self) -> Result<u64> {
        self.w
            .flush()
            .with_context(|| format!("cannot write spill file {}", self.path.display()))?;
        Ok(self.bytes)
    }
}

fn write_run<R: FixedRecord>(path: &Path, records: &[R]) -> Result<()> {
    let mut w = RunWriter::create(path)?;
    for r in records {
        w.push(r)?;
    }
    w.finish()?;
    Ok(())
}

struct RunReader<R> {
    path: PathBuf,
    r: BufReader<File>,
    scratch: Vec<u8>,
    _r: std::marker::PhantomData<R>,
}

impl<R: FixedRecord> RunReader<R> {
    fn open(path: &Path, buffer: usize) -> Result<Self> {
        let f = File::open(path)
            .with_context(|| format!("cannot open spill file {}", path.display()))?;
        Ok(RunReader {
            path: path.to_path_buf(),
            r: BufReader::with_capacity(buffer, f),
            scratch: vec![0u8; R::SIZE],
            _r: std::marker::PhantomData,
        })
    }

    fn next(&mut self) -> Result<Option<R>> {
        let mut got = 0;
        while got < R::SIZE {
            let n = self
                .r
                .read(&mut self.scratch[got..])
                .with_context(|| format!("cannot read spill file {}", self.path.display()))?;
            if n == 0 {
                anyhow::ensure!(
                    got == 0,
                    "spill file {} ends inside a record",
                    self.path.display()
                );
                return Ok(None);
            }
            got += n;
        }
        Ok(Some(R::read_le(&self.scratch)))
    }
}

struct Merge<R: FixedRecord> {
    readers: Vec<RunReader<R>>,
    heap: BinaryHeap<Reverse<(R, usize)>>,
    last: Option<R>,
    dedup: bool,
    /// Run files removed on drop.
    owned: Vec<PathBuf>,
}

impl<R: FixedRecord> Drop for Merge<R> {
    fn drop(&mut self) {
        for p in &self.owned {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl<R: FixedRecord> Merge<R> {
    fn open(paths: &[PathBuf], budget: u64, dedup: bool) -> Result<Self> {
        let buffer = ((budget / paths.len().max(1) as u64) as usize).clamp(4096, 8 << 20);
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let mut r = RunReader::open(p, buffer)?;
            if let Some(rec) = r.next()? {
                heap.push(Reverse((rec, i)));
            }
            readers.push(r);
        }
        Ok(Merge {
            readers,
            heap,
            last: None,
            dedup,
            owned: Vec::new(),
        })
    }

    fn next(&mut self) -> Result<Option<R>> {
        loop {
            let Some(Reverse((rec, i))) = self.heap.pop() else {
                return Ok(None);
            };
            if let Some(n) = self.readers[i].next()? {
                self.heap.push(Reverse((n, i)));
            }
            if self.dedup && self.last == Some(rec) {
                continue;
            }
            self.last = Some(rec);
            return Ok(Some(rec));
        }
    }
}

enum Inner<R: FixedRecord> {
    Memory(std::vec::IntoIter<R>),
    Merge(Merge<R>),
}

/// The sorted output of an [`ExternalSorter`].
pub struct SortedStream<R: FixedRecord> {
    inner: Inner<R>,
    last: Option<R>,
    dedup: bool,
    stats: SpillStats,
}

impl<R: FixedRecord> SortedStream<R> {
    /// The next record; not an `Iterator` because reading a run can fail.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<R>> {
        loop {
            let r = match &mut self.inner {
                Inner::Memory(it) => it.next(),
                Inner::Merge(m) => m.next()?,
            };
            let Some(r) = r else { return Ok(None) };
            if self.dedup && self.last == Some(r) {
                continue;
            }
            self.last = Some(r);
            return Ok(Some(r));
        }
    }

    pub fn stats(&self) -> SpillStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut s: SortedStream<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(r) = s.next().unwrap() {
            out.push(r);
        }
        out
    }

    fn pseudo_random(n: usize, modulo: u64) -> Vec<u64> {
        let mut state = 7u64;
        (0..n)
            .map(|_| crate::backends::ops::splitmix64(&mut state) % modulo)
            .collect()
    }

    #[test]
    fn in_memory_and_spilled_streams_agree() {
        let dir = tempfile::tempdir().unwrap();
        let data = pseudo_random(50_000, 1 << 40);
        let mut expect = data.clone();
        expect.sort_unstable();

        let mut big = ExternalSorter::<u64>::new(1 << 30, false, dir.path(), "big");
        let mut tiny = ExternalSorter::<u64>::new(0, false, dir.path(), "tiny");
        for &d in &data {
            big.push(d).unwrap();
            tiny.push(d).unwrap();
        }
        let big = big.finish().unwrap();
        let tiny = tiny.finish().unwrap();
        assert_eq!(big.stats().runs, 0);
        // 50_000 / 256 records per run: more runs than one merge takes, so
        // the multi-level merge ran.
        assert!(
            tiny.stats().runs as usize > MAX_FAN_IN,
            "{:?}",
            tiny.stats()
        );
        assert_eq!(drain(big), expect);
        assert_eq!(drain(tiny), expect);
    }

    #[test]
    fn dedup_collapses_repeats_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let data = pseudo_random(20_000, 1000);
        let mut expect = data.clone();
        expect.sort_unstable();
        expect.dedup();
        let mut s = ExternalSorter::<u64>::new(0, true, dir.path(), "d");
        for &d in &data {
            s.push(d).unwrap();
        }
        assert_eq!(drain(s.finish().unwrap()), expect);
    }

    #[test]
    fn run_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = ExternalSorter::<u64>::new(0, false, dir.path(), "x");
            for d in pseudo_random(5_000, 1 << 30) {
                s.push(d).unwrap();
            }
            let st = s.finish().unwrap();
            assert!(st.stats().runs > 1);
            // Runs are still needed while streaming.
            assert!(std::fs::read_dir(dir.path()).unwrap().count() > 0);
        }
        // Dropping the stream removed every run file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
