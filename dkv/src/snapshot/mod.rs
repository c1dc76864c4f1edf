//! Snapshots: the whole engine on disk, so the WAL can be compacted.
//!
//! A snapshot is written shard by shard into `snapshot-<lsn>.dkv.tmp`,
//! fsynced, renamed to `snapshot-<lsn>.dkv`, and its directory fsynced, so a
//! crash leaves either the old snapshot or the new one, never half of one.
//! `<lsn>` is the WAL sequence number at which the snapshot began: every
//! write with a smaller sequence number is in it, and because applying
//! writes is idempotent (Last-Write-Wins) replaying the WAL from that number
//! over the snapshot is correct even though writes ran while it was taken.
//!
//! Each shard is encoded into a buffer under that shard's read lock and
//! written after the lock is released: a writer waits at most for one
//! shard's copy. The byte format is in `docs/snapshot-format.md`.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::engine::{Engine, EntryRef};
use crate::hash::crc32;
use crate::version::{NodeId, Timestamp, Version};
use crate::wal::Lsn;

const MAGIC: &[u8; 8] = b"DKVSNAP\0";
/// Format 2 added kind 2 (a value with an expiry), format 3 kinds 3 and 4
/// (a counter's state, without and with an expiry); older files, which
/// hold only the older kinds, still load.
const FORMAT_VERSION: u32 = 3;
const OLDEST_FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 4;
/// The largest block a reader accepts; writers split shards into blocks of
/// about [`BLOCK_TARGET`] bytes, so only a huge single entry comes near it.
const MAX_BLOCK: usize = 1 << 30;
const BLOCK_TARGET: usize = 1 << 20;
const ENTRY_HEADER: usize = 1 + 8 + 4 + 4 + 4;
const KIND_VALUE: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;
const KIND_EXPIRING: u8 = 2;
const KIND_COUNTER: u8 = 3;
const KIND_EXPIRING_COUNTER: u8 = 4;
const EXPIRY_LEN: usize = 8;

/// A snapshot error; every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading, writing or syncing failed.
    #[error("snapshot {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is damaged or not a snapshot.
    #[error("snapshot {path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage was found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

/// What writing or loading a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot file.
    pub path: PathBuf,
    /// WAL sequence at which it began: replay from here.
    pub lsn: Lsn,
    /// Entries in it, tombstones included.
    pub entries: u64,
    /// Size of the file.
    pub bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file name of the snapshot that began at `lsn`.
pub fn file_name(lsn: Lsn) -> String {
    format!("snapshot-{:020}.dkv", lsn.0)
}

fn parse_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".dkv")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn)
}

/// Fsyncs a directory so a rename or creation inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Snapshots in `dir`, newest first.
pub fn list(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, SnapshotError> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(lsn) = entry.file_name().to_str().and_then(parse_file_name) {
            found.push((lsn, entry.path()));
        }
    }
    found.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    Ok(found)
}

/// Writes a snapshot of `engine` that began at WAL sequence `lsn` into
/// `dir`, then deletes older snapshots and stray temporary files.
pub fn write(dir: &Path, engine: &Engine, lsn: Lsn) -> Result<SnapshotInfo, SnapshotError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let final_path = dir.join(file_name(lsn));
    let tmp_path = dir.join(format!("{}.tmp", file_name(lsn)));
    let file = File::create(&tmp_path).map_err(io_err(&tmp_path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);

    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&(engine.shard_count() as u32).to_le_bytes());
    header.extend_from_slice(&lsn.0.to_le_bytes());
    header.extend_from_slice(&crc32(&header).to_le_bytes());
    out.write_all(&header).map_err(io_err(&tmp_path))?;

    let mut entries: u64 = 0;
    let mut block = Vec::with_capacity(BLOCK_TARGET + 4096);
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for shard in 0..engine.shard_count() {
        // Encode under the shard's read lock, write after releasing it.
        engine.for_each_in_shard(shard, |key, entry| {
            encode_entry(&mut block, key, entry);
            entries += 1;
            if block.len() >= BLOCK_TARGET {
                blocks.push(std::mem::replace(
                    &mut block,
                    Vec::with_capacity(BLOCK_TARGET + 4096),
                ));
            }
        });
        for payload in blocks
            .drain(..)
            .chain((!block.is_empty()).then(|| std::mem::take(&mut block)))
        {
            write_block(&mut out, &payload).map_err(io_err(&tmp_path))?;
        }
    }
    // End marker: an empty block whose checksum covers the entry count.
    let count = entries.to_le_bytes();
    out.write_all(&0u32.to_le_bytes())
        .and_then(|_| out.write_all(&crc32(&count).to_le_bytes()))
        .and_then(|_| out.write_all(&count))
        .map_err(io_err(&tmp_path))?;
    let file = out
        .into_inner()
        .map_err(|e| io_err(&tmp_path)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp_path))?;
    let bytes = file.metadata().map_err(io_err(&tmp_path))?.len();
    drop(file);
    fs::rename(&tmp_path, &final_path).map_err(io_err(&final_path))?;
    sync_dir(dir)?;
    remove_older(dir, lsn)?;
    Ok(SnapshotInfo {
        path: final_path,
        lsn,
        entries,
        bytes,
    })
}

fn write_block(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(&crc32(payload).to_le_bytes())?;
    out.write_all(payload)
}

fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: EntryRef<'_>) {
    let value_bytes = entry.value.unwrap_or(&[]);
    let expires_at = entry.value.and(entry.expires_at);
    out.push(match (entry.value, expires_at, entry.counter) {
        (None, _, _) => KIND_TOMBSTONE,
        (Some(_), None, false) => KIND_VALUE,
        (Some(_), Some(_), false) => KIND_EXPIRING,
        (Some(_), None, true) => KIND_COUNTER,
        (Some(_), Some(_), true) => KIND_EXPIRING_COUNTER,
    });
    out.extend_from_slice(&entry.version.timestamp.0.to_le_bytes());
    out.extend_from_slice(&entry.version.node_id.0.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(value_bytes.len() as u32).to_le_bytes());
    if let Some(at) = expires_at {
        out.extend_from_slice(&at.to_le_bytes());
    }
    out.extend_from_slice(key);
    out.extend_from_slice(value_bytes);
}

/// Removes snapshots older than `keep` and leftover temporary files.
fn remove_older(dir: &Path, keep: Lsn) -> Result<(), SnapshotError> {
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = match parse_file_name(name) {
            Some(lsn) => lsn < keep,
            None => name.starts_with("snapshot-") && name.ends_with(".dkv.tmp"),
        };
        if stale {
            fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Loads the newest snapshot in `dir` into `engine`. `Ok(None)` if there is
/// none. A damaged snapshot is an error, never silently skipped: its WAL
/// prefix was compacted away, so skipping it would lose data.
pub fn load_latest(dir: &Path, engine: &Engine) -> Result<Option<SnapshotInfo>, SnapshotError> {
    match list(dir)?.into_iter().next() {
        Some((_, path)) => load(&path, engine).map(Some),
        None => Ok(None),
    }
}

/// Loads the snapshot at `path` into `engine` (Last-Write-Wins against what
/// the engine already holds).
pub fn load(path: &Path, engine: &Engine) -> Result<SnapshotInfo, SnapshotError> {
    let file = File::open(path).map_err(io_err(path))?;
    let bytes = file.metadata().map_err(io_err(path))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let corrupt = |offset: u64, reason: &str| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };

    let mut header = [0u8; HEADER_LEN];
    read_exact_or(&mut reader, &mut header, || corrupt(0, "truncated header"))
        .map_err(|e| e.into_snapshot_error(path))?;
    if &header[0..8] != MAGIC {
        return Err(corrupt(0, "not a dkv snapshot (bad magic)"));
    }
    if crc32(&header[..HEADER_LEN - 4]) != le_u32(&header[HEADER_LEN - 4..]) {
        return Err(corrupt(0, "header checksum mismatch"));
    }
    let format = le_u32(&header[8..12]);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&format) {
        return Err(corrupt(8, &format!("unsupported format version {format}")));
    }
    let lsn = Lsn(le_u64(&header[16..24]));

    let mut offset = HEADER_LEN as u64;
    let mut entries: u64 = 0;
    let mut payload = Vec::new();
    loop {
        let mut block_header = [0u8; 8];
        read_exact_or(&mut reader, &mut block_header, || {
            corrupt(offset, "truncated block header")
        })
        .map_err(|e| e.into_snapshot_error(path))?;
        let len = le_u32(&block_header[0..4]) as usize;
        let crc = le_u32(&block_header[4..8]);
        if len == 0 {
            let mut count = [0u8; 8];
            read_exact_or(&mut reader, &mut count, || {
                corrupt(offset, "truncated end marker")
            })
            .map_err(|e| e.into_snapshot_error(path))?;
            if crc32(&count) != crc || u64::from_le_bytes(count) != entries {
                return Err(corrupt(
                    offset,
                    "end marker does not match the entries read",
                ));
            }
            if offset + 16 != bytes {
                return Err(corrupt(offset + 16, "trailing bytes after the end marker"));
            }
            break;
        }
        if len > MAX_BLOCK {
            return Err(corrupt(
                offset,
                &format!("block length {len} over the limit"),
            ));
        }
        // Nothing is allocated for bytes the file does not hold.
        if len as u64 > bytes.saturating_sub(offset + 8) {
            return Err(corrupt(offset, "truncated block"));
        }
        payload.resize(len, 0);
        read_exact_or(&mut reader, &mut payload, || {
            corrupt(offset, "truncated block")
        })
        .map_err(|e| e.into_snapshot_error(path))?;
        if crc32(&payload) != crc {
            return Err(corrupt(offset, "block checksum mismatch"));
        }
        entries += decode_block(&payload, format, |key, entry| {
            engine.apply(key, entry);
        })
        .map_err(|reason| corrupt(offset, reason))?;
        offset += 8 + len as u64;
    }
    Ok(SnapshotInfo {
        path: path.to_path_buf(),
        lsn,
        entries,
        bytes,
    })
}

/// Decodes one block's entries, calling `apply` for each; returns how many.
fn decode_block(
    mut payload: &[u8],
    format: u32,
    mut apply: impl FnMut(&[u8], EntryRef<'_>),
) -> Result<u64, &'static str> {
    let mut count = 0;
    while !payload.is_empty() {
        if payload.len() < ENTRY_HEADER {
            return Err("truncated entry header");
        }
        let kind = payload[0];
        let version = Version::new(
            Timestamp(le_u64(&payload[1..9])),
            NodeId(le_u32(&payload[9..13])),
        );
        let key_len = le_u32(&payload[13..17]) as usize;
        let value_len = le_u32(&payload[17..21]) as usize;
        let mut rest = &payload[ENTRY_HEADER..];
        let mut expires_at = None;
        let expiring = (kind == KIND_EXPIRING && format >= 2)
            || (kind == KIND_EXPIRING_COUNTER && format >= 3);
        if expiring {
            let Some((at, after)) = rest.split_first_chunk::<EXPIRY_LEN>() else {
                return Err("entry runs past its block");
            };
            expires_at = Some(u64::from_le_bytes(*at));
            rest = after;
        }
        if rest.len() < key_len || rest.len() - key_len < value_len {
            return Err("entry runs past its block");
        }
        let (key, rest) = rest.split_at(key_len);
        let (value, rest) = rest.split_at(value_len);
        match kind {
            KIND_VALUE => apply(key, EntryRef::value(version, value)),
            KIND_EXPIRING if expires_at.is_some() => {
                apply(key, EntryRef::new(version, Some(value), expires_at))
            }
            KIND_TOMBSTONE if value_len == 0 => apply(key, EntryRef::tombstone(version)),
            KIND_COUNTER if format >= 3 => apply(key, EntryRef::counter(version, value, None)),
            KIND_EXPIRING_COUNTER if expires_at.is_some() => {
                apply(key, EntryRef::counter(version, value, expires_at))
            }
            _ => return Err("bad entry kind"),
        }
        payload = rest;
        count += 1;
    }
    Ok(count)
}

enum ReadFail {
    Io(io::Error),
    Short(SnapshotError),
}

impl ReadFail {
    fn into_snapshot_error(self, path: &Path) -> SnapshotError {
        match self {
            ReadFail::Io(source) => SnapshotError::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadFail::Short(err) => err,
        }
    }
}

fn read_exact_or(
    reader: &mut impl Read,
    buf: &mut [u8],
    short: impl FnOnce() -> SnapshotError,
) -> Result<(), ReadFail> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ReadFail::Short(short())),
        Err(e) => Err(ReadFail::Io(e)),
    }
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(buf)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

pub mod floor;

#[cfg(test)]
mod tests;
