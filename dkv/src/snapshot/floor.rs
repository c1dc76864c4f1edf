//! The flush floor on disk: `flush-floor.dkv` in the snapshot directory,
//! the version at or below which every entry was flushed (`FLUSHDB`).
//!
//! Layout (24 bytes, little-endian): `DKVFLOOR`, timestamp u64, node id
//! u32, CRC-32 of the 20 bytes before it. Written to a temporary file,
//! fsynced, renamed over the old one and the directory fsynced, so a crash
//! leaves the old floor or the new one. A store reads it before its
//! snapshot and log, so nothing flushed is replayed back.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::{io_err, le_u32, le_u64, sync_dir, SnapshotError};
use crate::hash::crc32;
use crate::version::{NodeId, Timestamp, Version};

const FILE: &str = "flush-floor.dkv";
const MAGIC: &[u8; 8] = b"DKVFLOOR";
const LEN: usize = 24;

/// The floor recorded in `dir`, or the zero version when none is.
pub fn read(dir: &Path) -> Result<Version, SnapshotError> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Version::default()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let corrupt = |reason: &str| SnapshotError::Corrupt {
        path: path.clone(),
        offset: 0,
        reason: reason.to_string(),
    };
    if bytes.len() != LEN || &bytes[..8] != MAGIC {
        return Err(corrupt("not a flush floor"));
    }
    if crc32(&bytes[..20]) != le_u32(&bytes[20..24]) {
        return Err(corrupt("flush floor checksum mismatch"));
    }
    Ok(Version::new(
        Timestamp(le_u64(&bytes[8..16])),
        NodeId(le_u32(&bytes[16..20])),
    ))
}

/// Records `floor` in `dir` durably.
pub fn write(dir: &Path, floor: Version) -> Result<(), SnapshotError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut bytes = Vec::with_capacity(LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&floor.timestamp.0.to_le_bytes());
    bytes.extend_from_slice(&floor.node_id.0.to_le_bytes());
    let crc = crc32(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join(format!("{FILE}.tmp"));
    let path = dir.join(FILE);
    File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        })
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_round_trips_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Version::default());
        let floor = Version::new(Timestamp(0x1234_5678_9abc), NodeId(3));
        write(dir.path(), floor).unwrap();
        assert_eq!(read(dir.path()).unwrap(), floor);
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes[9] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }
}
