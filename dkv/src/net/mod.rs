//! All client-facing IO: the mio reactor thread, its connections, and the
//! worker pool that executes their commands.

pub(crate) mod cluster;
mod conn;
pub(crate) mod peers;
pub(crate) mod reactor;
mod slab;
mod workers;
