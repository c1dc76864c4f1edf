//! The client's requests beyond get, put and delete: writes with a
//! time to live, expiry, counters, scans of the key space and flushes.

use std::time::Duration;

use super::{check_key, expect_ok, Client, ClientError, Resend, Side};
use crate::node::Consistency;
use crate::resp::Reply;

/// A key's time to live, as `PTTL` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and does not expire.
    Persistent,
    /// The key expires after about this long.
    Expires(Duration),
}

/// One page of a scan: the keys, and the cursor to go on from (0: done).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// The cursor for the next page; 0 when the scan is done.
    pub cursor: u64,
    /// The keys of this page (on a cluster a key may come more than once).
    pub keys: Vec<Vec<u8>>,
}

fn millis(ttl: Duration) -> Result<String, ClientError> {
    match u64::try_from(ttl.as_millis()) {
        Ok(ms) if ms > 0 => Ok(ms.to_string()),
        _ => Err(ClientError::new(
            super::ErrorKind::InvalidArgument,
            "a time to live must be at least 1 ms",
        )),
    }
}

impl Client {
    /// Writes `value` under `key`, to expire after `ttl` (at least 1 ms).
    pub fn put_with_ttl(
        &mut self,
        key: &[u8],
        value: &[u8],
        ttl: Duration,
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<(), ClientError> {
        check_key(key)?;
        let ms = millis(ttl)?;
        let reply = self.request(
            &[b"SET", key, value, b"PX", ms.as_bytes()],
            Some((Side::Write, consistency)),
            timeout,
        )?;
        expect_ok("SET", reply)
    }

    /// Makes `key` expire after `ttl`; `false` when the key does not exist.
    pub fn expire(
        &mut self,
        key: &[u8],
        ttl: Duration,
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<bool, ClientError> {
        check_key(key)?;
        let ms = millis(ttl)?;
        let reply = self.request(
            &[b"PEXPIRE", key, ms.as_bytes()],
            Some((Side::Write, consistency)),
            timeout,
        )?;
        integer("PEXPIRE", reply).map(|n| n == 1)
    }

    /// Removes `key`'s expiry; `false` when it had none or does not exist.
    pub fn persist(
        &mut self,
        key: &[u8],
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<bool, ClientError> {
        check_key(key)?;
        let reply = self.request(
            &[b"PERSIST", key],
            Some((Side::Write, consistency)),
            timeout,
        )?;
        integer("PERSIST", reply).map(|n| n == 1)
    }

    /// `key`'s time to live.
    pub fn ttl(
        &mut self,
        key: &[u8],
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<Ttl, ClientError> {
        check_key(key)?;
        let reply = self.request(&[b"PTTL", key], Some((Side::Read, consistency)), timeout)?;
        Ok(match integer("PTTL", reply)? {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::Expires(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    /// Adds `delta` to the integer at `key` (missing counts as 0) and
    /// returns the new value. Not sent again if the connection breaks
    /// during the request (it may have been applied): such a failure says
    /// so. See docs/commands.md for counters on a cluster.
    pub fn incr_by(
        &mut self,
        key: &[u8],
        delta: i64,
        consistency: Consistency,
        timeout: Option<Duration>,
    ) -> Result<i64, ClientError> {
        check_key(key)?;
        let delta = delta.to_string();
        let reply = self.request_with(
            &[b"INCRBY", key, delta.as_bytes()],
            Some((Side::Write, consistency)),
            timeout,
            Resend::Never,
        )?;
        integer("INCRBY", reply)
    }

    /// One page of a scan of every key matching `pattern` (a Redis glob;
    /// `None`: every key), from `cursor` (0 to start); `count` is a hint of
    /// how many keys a page holds.
    pub fn scan(
        &mut self,
        cursor: u64,
        pattern: Option<&[u8]>,
        count: usize,
        timeout: Option<Duration>,
    ) -> Result<ScanPage, ClientError> {
        let cursor = cursor.to_string();
        let count = count.max(1).to_string();
        let mut args: Vec<&[u8]> = vec![b"SCAN", cursor.as_bytes(), b"COUNT", count.as_bytes()];
        if let Some(pattern) = pattern {
            args.extend_from_slice(&[b"MATCH", pattern]);
        }
        match self.request(&args, None, timeout)? {
            Reply::Array(mut parts) if parts.len() == 2 => {
                let keys = match parts.pop() {
                    Some(Reply::Array(keys)) => keys
                        .into_iter()
                        .map(|key| match key {
                            Reply::Bulk(key) => Ok(key),
                            other => Err(ClientError::unexpected("SCAN", &other)),
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    Some(other) => return Err(ClientError::unexpected("SCAN", &other)),
                    None => Vec::new(),
                };
                let cursor = match parts.pop() {
                    Some(Reply::Bulk(text)) => std::str::from_utf8(&text)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| ClientError::unexpected("SCAN", &Reply::Bulk(text)))?,
                    Some(other) => return Err(ClientError::unexpected("SCAN", &other)),
                    None => 0,
                };
                Ok(ScanPage { cursor, keys })
            }
            other => Err(ClientError::unexpected("SCAN", &other)),
        }
    }

    /// Every key matching `pattern`, each once, gathered page by page.
    pub fn scan_all(
        &mut self,
        pattern: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u8>>, ClientError> {
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor = 0;
        loop {
            let page = self.scan(cursor, pattern, 1000, timeout)?;
            keys.extend(page.keys);
            if page.cursor == 0 {
                return Ok(keys.into_iter().collect());
            }
            cursor = page.cursor;
        }
    }

    /// Deletes every key of the cluster (`FLUSHDB`).
    pub fn flush(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        let reply = self.request(&[b"FLUSHDB"], None, timeout)?;
        expect_ok("FLUSHDB", reply)
    }
}

fn integer(command: &str, reply: Reply) -> Result<i64, ClientError> {
    match reply {
        Reply::Integer(n) => Ok(n),
        other => Err(ClientError::unexpected(command, &other)),
    }
}
