//! Segment files: naming, listing, creation, and the IO seam.
//!
//! A segment is `wal-<lsn, 20 digits zero-padded>.log` in the WAL directory.
//! The number is the segment's *base* lsn: every record in the segment has an
//! lsn at least the base, and a segment that follows another has as base one
//! past the last lsn of its predecessor. So a segment holds only records
//! below the base of the next one, which is what
//! [`Wal::remove_segments_before`](super::Wal::remove_segments_before) relies
//! on. Files whose names do not parse (`*.damaged-at-*`, `*.after-damage`,
//! anything else) are never read, renamed or deleted by the log.
//!
//! Every operation whose failure matters for durability (writing a segment,
//! `fdatasync`, truncation, fsyncing the directory) goes through
//! [`SegmentIo`], so tests can inject faults; [`StdIo`] is the real thing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{Lsn, WalError};

const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";
const DIGITS: usize = 20;

/// The file operations the WAL's durability depends on. Implement it to
/// inject faults (a failing `fdatasync`, a short disk) in tests.
pub trait SegmentIo: Send + Sync {
    /// Writes all of `bytes` at the end of a segment opened for appending.
    fn write_all(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    /// `fdatasync`s a segment (or a kept-aside copy).
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// Creates a new segment file for appending (it must not exist).
    fn create_new(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).create_new(true).open(path)
    }

    /// Truncates a segment during recovery.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    /// fsyncs a directory, making creations, renames and deletions in it
    /// durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The real file operations.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdIo;

impl SegmentIo for StdIo {}

/// The file name of the segment with base lsn `base`.
pub fn segment_file_name(base: Lsn) -> String {
    format!("{PREFIX}{:0width$}{SUFFIX}", base.0, width = DIGITS)
}

/// The base lsn encoded in a segment file name, if `name` is one.
pub fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn)
}

/// One live segment as the log tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub(crate) base: Lsn,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
}

/// An IO error with the path it concerns.
pub(crate) fn io_error(path: &Path, source: io::Error) -> WalError {
    WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The live segments in `dir`, ordered by base lsn.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentInfo>, WalError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        let Some(base) = name.to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        let path = entry.path();
        let meta = entry.metadata().map_err(|e| io_error(&path, e))?;
        if !meta.is_file() {
            log::warn!(
                "ignoring {}: named like a WAL segment but not a file",
                path.display()
            );
            continue;
        }
        segments.push(SegmentInfo {
            base,
            path,
            len: meta.len(),
        });
    }
    segments.sort_by_key(|segment| segment.base);
    Ok(segments)
}

/// Creates the empty segment with base `base` and fsyncs the directory.
pub(crate) fn create_segment(
    dir: &Path,
    io: &dyn SegmentIo,
    base: Lsn,
) -> Result<(File, SegmentInfo), WalError> {
    let path = dir.join(segment_file_name(base));
    let file = io.create_new(&path).map_err(|e| io_error(&path, e))?;
    io.sync_dir(dir).map_err(|e| io_error(dir, e))?;
    Ok((file, SegmentInfo { base, path, len: 0 }))
}

/// Opens an existing segment for appending.
pub(crate) fn open_segment(segment: &SegmentInfo) -> Result<File, WalError> {
    OpenOptions::new()
        .append(true)
        .open(&segment.path)
        .map_err(|e| io_error(&segment.path, e))
}

/// `base` with `suffix` appended to its file name, or, if that exists, with
/// `.1`, `.2`, ... after it: a kept-aside file is never overwritten.
pub(crate) fn unused_path(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_os_string();
    name.push(suffix);
    let first = PathBuf::from(&name);
    if !first.exists() {
        return first;
    }
    (1u64..)
        .map(|n| {
            let mut numbered = name.clone();
            numbered.push(format!(".{n}"));
            PathBuf::from(numbered)
        })
        .find(|path| !path.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_lsn() {
        assert_eq!(segment_file_name(Lsn(42)), "wal-00000000000000000042.log");
        assert_eq!(
            parse_segment_file_name("wal-00000000000000000042.log"),
            Some(Lsn(42))
        );
        let max = segment_file_name(Lsn(u64::MAX));
        assert_eq!(parse_segment_file_name(&max), Some(Lsn(u64::MAX)));
        assert!(segment_file_name(Lsn(9)) < segment_file_name(Lsn(10)));
        for bad in [
            "wal-42.log",
            "wal-0000000000000000004x.log",
            "wal-00000000000000000042.log.after-damage",
            "wal-00000000000000000042.log.damaged-at-7",
            "wal-99999999999999999999.log",
            "xwal-00000000000000000042.log",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn unused_path_never_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("wal-x.log");
        let first = unused_path(&base, ".after-damage");
        assert_eq!(first, dir.path().join("wal-x.log.after-damage"));
        fs::write(&first, b"kept").unwrap();
        let second = unused_path(&base, ".after-damage");
        assert_eq!(second, dir.path().join("wal-x.log.after-damage.1"));
    }
}
