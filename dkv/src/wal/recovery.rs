//! Recovery: scan the segments, replay the valid prefix, repair the rest.
//!
//! Segments are read in base-lsn order, record by record, streaming. The scan
//! stops at the first record that is incomplete (header or payload runs past
//! the end of the file), longer than [`super::record::MAX_PAYLOAD_LEN`], fails its CRC, does
//! not decode, or whose lsn is below its segment's base or not above the
//! previous record's; and at the end of a segment whose successor's base is
//! not one past its last lsn (records were lost from its tail).
//!
//! Invariants after [`recover`] returns:
//!
//! * every record before the damage was handed to `apply` (if its lsn is at
//!   least `replay_from`) in lsn order, and nothing after it was;
//! * a torn tail (an incomplete record, or only zero bytes, at the end of the
//!   last segment) is truncated away;
//! * any other damage is kept: the bytes from the damage on are copied to
//!   `<segment>.damaged-at-<offset>` (fsynced) before the segment is truncated
//!   there, and every later segment is renamed to `<segment>.after-damage`.
//!   Kept-aside files are never overwritten, replayed or deleted;
//! * the live segments that remain form a valid log, so new records can be
//!   appended to the last one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::record::{self, DecodeError, HEADER_LEN};
use super::segment::{io_error, list_segments, unused_path, SegmentInfo, SegmentIo};
use super::{DamageReason, DamageReport, Lsn, RecoveryReport, WalError, WalRecord};

/// What recovery leaves behind for the log to continue from.
pub(crate) struct Recovered {
    pub(crate) report: RecoveryReport,
    /// The live segments, repaired, in order.
    pub(crate) segments: Vec<SegmentInfo>,
    /// The largest valid lsn seen, skipped records included.
    pub(crate) last_lsn: Option<u64>,
    /// The last lsn in the last live segment, if it holds any record.
    pub(crate) active_last: Option<u64>,
}

/// The outcome of scanning one segment.
struct Scan {
    last: Option<u64>,
    damage: Option<(u64, DamageReason)>,
}

/// Scans, replays and repairs the log in `dir` (which must exist). `next_lsn`
/// in the report is left for the caller to fill in.
pub(crate) fn recover(
    dir: &Path,
    io: &dyn SegmentIo,
    replay_from: Lsn,
    apply: &mut dyn FnMut(WalRecord),
) -> Result<Recovered, WalError> {
    let mut segments = list_segments(dir)?;
    let mut report = RecoveryReport::default();
    let mut last_lsn: Option<u64> = None;
    // `lasts[i]` is the last lsn of `segments[i]`, for the segments scanned.
    let mut lasts: Vec<Option<u64>> = Vec::with_capacity(segments.len());
    let mut damage: Option<(usize, u64, DamageReason)> = None;

    for index in 0..segments.len() {
        if index > 0 {
            let expected = lasts[index - 1].map(|last| Lsn(last.saturating_add(1)));
            let base = segments[index].base;
            if expected != Some(base) {
                let previous = index - 1;
                let reason = DamageReason::MissingRecords {
                    expected,
                    next_base: base,
                };
                damage = Some((previous, segments[previous].len, reason));
                break;
            }
        }
        let scan = scan_segment(&segments[index], last_lsn, replay_from, apply, &mut report)?;
        last_lsn = scan.last.or(last_lsn);
        lasts.push(scan.last);
        if let Some((offset, reason)) = scan.damage {
            damage = Some((index, offset, reason));
            break;
        }
    }

    if let Some((index, offset, reason)) = damage {
        let is_last = index + 1 == segments.len();
        let segment = &segments[index];
        let torn = is_last && (reason.is_incomplete() || zero_from(segment, offset)?);
        report.truncated_bytes += segment.len - offset;
        if torn {
            log::warn!(
                "WAL {}: torn record at offset {offset} ({reason}); truncating {} bytes",
                segment.path.display(),
                segment.len - offset
            );
            truncate(io, segment, offset)?;
        } else {
            keep_aside(dir, io, &segments[index..], offset, &mut report)?;
            log::error!(
                "WAL {}: damaged at offset {offset} ({reason}); replay stopped there, \
                 the rest is kept aside in {:?}; missing writes must come back from replicas",
                segment.path.display(),
                report.kept_aside
            );
        }
        report.damage = Some(DamageReport {
            segment: segment.path.clone(),
            offset,
            reason,
            torn_tail: torn,
        });
        segments.truncate(index + 1);
        segments[index].len = offset;
    }
    report.segments = segments.len();
    let active_last = lasts.get(segments.len().wrapping_sub(1)).copied().flatten();
    Ok(Recovered {
        report,
        segments,
        last_lsn,
        active_last,
    })
}

/// Reads one segment, replaying its records, up to its end or first damage.
fn scan_segment(
    segment: &SegmentInfo,
    previous: Option<u64>,
    replay_from: Lsn,
    apply: &mut dyn FnMut(WalRecord),
    report: &mut RecoveryReport,
) -> Result<Scan, WalError> {
    let path = &segment.path;
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    // Small segments (tests, a log just started) get a small buffer.
    let capacity = segment.len.clamp(8 << 10, 1 << 20) as usize;
    let mut reader = BufReader::with_capacity(capacity, file);
    let mut offset = 0u64;
    let mut last: Option<u64> = None;
    let mut payload = Vec::new();
    loop {
        let damaged = |reason: DamageReason| Scan {
            last,
            damage: Some((offset, reason)),
        };
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(&mut reader, &mut header).map_err(|e| io_error(path, e))?;
        if got == 0 {
            return Ok(Scan { last, damage: None });
        }
        let (len, crc) = match record::decode_header(&header[..got]) {
            Ok(header) => header,
            Err(e) => return Ok(damaged(DamageReason::Record(e))),
        };
        // The length is bounded by MAX_PAYLOAD_LEN; also check it against the
        // file so a damaged length never makes us allocate for nothing.
        let available = segment.len.saturating_sub(offset + HEADER_LEN as u64);
        if len as u64 > available {
            let e = DecodeError::IncompletePayload {
                len: len as u64,
                available,
            };
            return Ok(damaged(DamageReason::Record(e)));
        }
        payload.resize(len, 0);
        let got = read_full(&mut reader, &mut payload).map_err(|e| io_error(path, e))?;
        if got < len {
            let e = DecodeError::IncompletePayload {
                len: len as u64,
                available: got as u64,
            };
            return Ok(damaged(DamageReason::Record(e)));
        }
        let decoded =
            record::check_crc(&payload, crc).and_then(|()| record::decode_payload(&payload));
        let record = match decoded {
            Ok(record) => record,
            Err(e) => return Ok(damaged(DamageReason::Record(e))),
        };
        let prev = last.or(previous);
        let in_order = record.lsn >= segment.base && prev.is_none_or(|prev| record.lsn.0 > prev);
        if !in_order {
            let at_least = prev.map_or(segment.base.0, |prev| {
                prev.saturating_add(1).max(segment.base.0)
            });
            return Ok(damaged(DamageReason::LsnOutOfOrder {
                at_least: Lsn(at_least),
                found: record.lsn,
            }));
        }
        let size = (HEADER_LEN + len) as u64;
        offset += size;
        last = Some(record.lsn.0);
        if record.lsn >= replay_from {
            report.records_replayed += 1;
            report.bytes_replayed += size;
            apply(record);
        } else {
            report.records_skipped += 1;
        }
    }
}

/// Fills `buf` from `reader`; returns how many bytes it got (less only at
/// end of file).
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Whether every byte of `segment` from `offset` on is zero: space a
/// filesystem allocated but never wrote, which carries no records.
fn zero_from(segment: &SegmentInfo, offset: u64) -> Result<bool, WalError> {
    let path = &segment.path;
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| io_error(path, e))?;
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let got = read_full(&mut file, &mut chunk).map_err(|e| io_error(path, e))?;
        if chunk[..got].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        if got < chunk.len() {
            return Ok(true);
        }
    }
}

/// Truncates `segment` to `len` and makes that durable.
fn truncate(io: &dyn SegmentIo, segment: &SegmentInfo, len: u64) -> Result<(), WalError> {
    if segment.len == len {
        return Ok(());
    }
    let path = &segment.path;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    io.set_len(&file, len).map_err(|e| io_error(path, e))?;
    io.sync_data(&file).map_err(|e| io_error(path, e))
}

/// Keeps everything from `offset` in `segments[0]` on out of the live log:
/// copies those bytes aside, truncates, renames the later segments.
fn keep_aside(
    dir: &Path,
    io: &dyn SegmentIo,
    segments: &[SegmentInfo],
    offset: u64,
    report: &mut RecoveryReport,
) -> Result<(), WalError> {
    let (damaged, later) = match segments.split_first() {
        Some(split) => split,
        None => return Ok(()),
    };
    if damaged.len > offset {
        // Copy first, and make the copy's name durable, before truncating:
        // a crash in between must not lose the bytes.
        let aside = unused_path(&damaged.path, &format!(".damaged-at-{offset}"));
        let mut source = File::open(&damaged.path).map_err(|e| io_error(&damaged.path, e))?;
        source
            .seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(&damaged.path, e))?;
        let mut copy = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&aside)
            .map_err(|e| io_error(&aside, e))?;
        io::copy(&mut source, &mut copy).map_err(|e| io_error(&aside, e))?;
        io.sync_data(&copy).map_err(|e| io_error(&aside, e))?;
        io.sync_dir(dir).map_err(|e| io_error(dir, e))?;
        report.kept_aside.push(aside);
        truncate(io, damaged, offset)?;
    }
    for segment in later {
        let aside = unused_path(&segment.path, ".after-damage");
        std::fs::rename(&segment.path, &aside).map_err(|e| io_error(&segment.path, e))?;
        report.kept_aside.push(aside);
    }
    io.sync_dir(dir).map_err(|e| io_error(dir, e))
}
