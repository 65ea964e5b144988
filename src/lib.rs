//! halo — an object-based immersive mixer and renderer.
//!
//! Sessions place mono objects and channel beds around the listener; the engine renders
//! them to speaker layouts by full-sphere VBAP, binaurally by HRTF convolution, and to a
//! stereo fold-down with its own master chain, and meters every output (ITU-R BS.1770-4)
//! so that translation problems show up before delivery. See `DESIGN.md` for the map.

pub mod drivers;
pub mod dsp;
pub mod engine;
pub mod formats;
pub mod measure;
pub mod scene;
pub mod spatial;
