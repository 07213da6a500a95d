//! berth's console monitor: one small single-threaded process per container that holds its
//! pty masters, keeps every output byte (ring, raw log, CRI log, optional asciicast), keeps a
//! screen model for instant redraws, and serves any number of attach clients over the
//! [`berth_proto`] protocol without ever letting a client stall the container.
//!
//! Modules, bottom up: [`ring`] (output tail with offsets), [`rotate`] (rename-and-reopen log
//! files), [`logs`] (CRI and asciicast), [`screen`] (the vt100 model, off the data path),
//! [`term`] (one terminal), [`client`] (one connection and the sending side), [`sock`]
//! (SEQPACKET plumbing), [`runtime`] (bundle overlay, exec process, runtime commands),
//! [`config`] (flags and annotations), and [`monitor`] (the event loop; its docs give the order
//! of operations and what happens when the monitor itself dies).

pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod logs;
pub mod monitor;
pub mod ring;
pub mod rotate;
pub mod runtime;
pub mod screen;
pub mod sock;
pub mod term;

pub use config::Config;
pub use error::MonitorError;
pub use monitor::{MONITOR_DIR, Monitor, monitor_dir};
