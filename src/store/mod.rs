//! What whet keeps on disk for the user: sessions (more to come). Every save
//! is atomic, and a file whet cannot read is refused, never overwritten.

pub mod atomic;
pub mod export;
pub mod library;
pub mod runs;
pub mod session;
