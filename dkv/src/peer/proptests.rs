//! Property tests (placeholder, filled in next).
