//! Memory that crosses the boundary: [`dkv_slice`] (the caller's bytes,
//! borrowed for one call), [`dkv_buf`] (bytes libdkv allocated and the
//! caller frees with `dkv_buf_free`), and [`dkv_cluster_status`] (freed
//! with `dkv_cluster_status_free`).
//!
//! Invariant: a `dkv_buf` is either `{NULL, 0}` or the exact pointer and
//! length of a boxed byte slice libdkv leaked; freeing rebuilds that box.

use dkv::client::NodeStatus;

use crate::error::guard_void;

/// Bytes the caller lends to libdkv for the duration of one call.
/// `data` may be NULL only when `len` is 0.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dkv_slice {
    /// The first byte.
    pub data: *const u8,
    /// How many bytes.
    pub len: usize,
}

/// Bytes libdkv allocated and handed to the caller, who owns them until
/// passing the buffer to `dkv_buf_free`. An empty value is `{NULL, 0}`.
/// Do not change `data` or `len`, and do not free `data` with `free()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct dkv_buf {
    /// The first byte, or NULL when `len` is 0.
    pub data: *mut u8,
    /// How many bytes.
    pub len: usize,
}

impl dkv_buf {
    /// The empty buffer `{NULL, 0}`.
    pub const EMPTY: dkv_buf = dkv_buf {
        data: std::ptr::null_mut(),
        len: 0,
    };

    /// Hands `bytes` over to the caller.
    pub fn from_vec(bytes: Vec<u8>) -> dkv_buf {
        if bytes.is_empty() {
            return dkv_buf::EMPTY;
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        dkv_buf {
            data: Box::into_raw(boxed).cast::<u8>(),
            len,
        }
    }
}

/// Frees the bytes of `buf` and sets it to `{NULL, 0}`. Passing NULL, or
/// a buffer that is already `{NULL, 0}`, does nothing; freeing the same
/// bytes twice through two copies of the struct is an error the library
/// cannot detect.
#[no_mangle]
pub extern "C" fn dkv_buf_free(buf: *mut dkv_buf) {
    guard_void("dkv_buf_free", || {
        // SAFETY: a non-NULL `buf` points to a dkv_buf the caller owns.
        let Some(buf) = (unsafe { buf.as_mut() }) else {
            return;
        };
        if !buf.data.is_null() && buf.len > 0 {
            let slice = std::ptr::slice_from_raw_parts_mut(buf.data, buf.len);
            // SAFETY: by the invariant, data/len are those of a leaked
            // Box<[u8]> (dkv_buf::from_vec), handed back exactly once.
            drop(unsafe { Box::from_raw(slice) });
        }
        *buf = dkv_buf::EMPTY;
    });
}

/// One peer as the answering node sees it.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct dkv_peer_status {
    /// The peer's node id.
    pub node_id: u32,
    /// Whether the failure detector thinks the peer is up.
    pub up: bool,
    /// Whether the answering node's link to the peer is connected.
    pub connected: bool,
    /// Hints the answering node holds for this peer (writes it missed).
    pub hints_pending: u64,
}

/// A node's view of its cluster. Filled by `dkv_node_status` or
/// `dkv_client_status`; release it with `dkv_cluster_status_free`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct dkv_cluster_status {
    /// The answering node's id.
    pub node_id: u32,
    /// N: replicas per key.
    pub replication_factor: u32,
    /// W: acknowledgements a QUORUM write waits for.
    pub write_quorum: u32,
    /// R: replies a QUORUM read waits for.
    pub read_quorum: u32,
    /// Every other member, by increasing id; NULL when `peer_count` is 0.
    pub peers: *mut dkv_peer_status,
    /// Number of entries in `peers`.
    pub peer_count: usize,
    /// Hints held for all peers together.
    pub hints_pending: u64,
}

impl dkv_cluster_status {
    /// The empty status (no peers, nothing allocated).
    pub const EMPTY: dkv_cluster_status = dkv_cluster_status {
        node_id: 0,
        replication_factor: 0,
        write_quorum: 0,
        read_quorum: 0,
        peers: std::ptr::null_mut(),
        peer_count: 0,
        hints_pending: 0,
    };

    /// Hands a status over to the caller.
    pub fn from_status(status: &NodeStatus) -> dkv_cluster_status {
        let peers: Box<[dkv_peer_status]> = status
            .peers
            .iter()
            .map(|p| dkv_peer_status {
                node_id: p.id.0,
                up: p.up,
                connected: p.connected,
                hints_pending: p.hints_pending,
            })
            .collect();
        let peer_count = peers.len();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        dkv_cluster_status {
            node_id: status.node_id.0,
            replication_factor: count(status.replication_factor),
            write_quorum: count(status.write_quorum),
            read_quorum: count(status.read_quorum),
            peers: if peer_count == 0 {
                std::ptr::null_mut()
            } else {
                Box::into_raw(peers).cast::<dkv_peer_status>()
            },
            peer_count,
            hints_pending: status.hints_pending,
        }
    }
}

/// Frees the peer array of `status` and zeroes it. NULL, or a status
/// already freed (zeroed), does nothing.
#[no_mangle]
pub extern "C" fn dkv_cluster_status_free(status: *mut dkv_cluster_status) {
    guard_void("dkv_cluster_status_free", || {
        // SAFETY: a non-NULL `status` points to a struct the caller owns.
        let Some(status) = (unsafe { status.as_mut() }) else {
            return;
        };
        if !status.peers.is_null() && status.peer_count > 0 {
            let slice = std::ptr::slice_from_raw_parts_mut(status.peers, status.peer_count);
            // SAFETY: peers/peer_count are those of the Box<[_]> leaked by
            // from_status, handed back once.
            drop(unsafe { Box::from_raw(slice) });
        }
        *status = dkv_cluster_status::EMPTY;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_round_trip_and_free_twice_safely() {
        let mut buf = dkv_buf::from_vec(b"hello".to_vec());
        assert_eq!(buf.len, 5);
        // SAFETY: data/len from from_vec.
        assert_eq!(
            unsafe { std::slice::from_raw_parts(buf.data, buf.len) },
            b"hello"
        );
        dkv_buf_free(&mut buf);
        assert!(buf.data.is_null() && buf.len == 0);
        dkv_buf_free(&mut buf);
        dkv_buf_free(std::ptr::null_mut());
        let empty = dkv_buf::from_vec(Vec::with_capacity(10));
        assert!(empty.data.is_null());
    }

    #[test]
    fn status_peers_are_freed() {
        let status = NodeStatus::parse("node_1:self,up\nnode_2:up,connected\nnode_3:down,x\n");
        let mut c = dkv_cluster_status::from_status(&status);
        assert_eq!(c.peer_count, 2);
        // SAFETY: peers/peer_count from from_status.
        let peers = unsafe { std::slice::from_raw_parts(c.peers, c.peer_count) };
        assert!(peers[0].up && !peers[1].up);
        dkv_cluster_status_free(&mut c);
        assert!(c.peers.is_null());
        dkv_cluster_status_free(&mut c);
    }
}
