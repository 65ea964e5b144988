//! What the outputs measure: loudness and true peak (ITU-R BS.1770-4, EBU R 128) and the
//! translation analysis of fold-down and headphone versions against the immersive mix;
//! the time series of both and the QC page drawn from them.

mod k_weighting;
pub mod loudness;
pub mod page;
pub mod timeline;
pub mod translation;
