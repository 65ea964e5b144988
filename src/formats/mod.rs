//! Bytes and text ⇄ scene: the RON session, ADM BWF (ITU-R BS.2076 / BS.2088), and
//! WAV/BW64/RF64 sample I/O. Only `io` touches the file system.

pub mod adm;
pub mod dbmd;
pub mod io;
pub mod session;
