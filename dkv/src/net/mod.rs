//! All client-facing IO: the mio reactor thread, its connections, and the
//! worker pool that executes their commands.

mod conn;
pub(crate) mod reactor;
mod slab;
mod workers;
