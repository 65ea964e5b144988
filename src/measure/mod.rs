//! What the outputs measure: loudness and true peak (ITU-R BS.1770-4, EBU R 128) and the
//! translation analysis of fold-down and headphone versions against the immersive mix.

pub mod loudness;
pub mod translation;
