//! The peer wire protocol (in progress).
