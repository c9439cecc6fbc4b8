//! What whet keeps on disk for the user: chat sessions and workbench runs.
//! Every save is atomic, and a file whet cannot read is refused, never
//! overwritten.

pub mod atomic;
pub mod dates;
pub mod export;
pub mod library;
pub mod lock;
pub mod rescue;
pub mod runs;
pub mod session;
pub mod tokens;
