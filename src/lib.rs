//! halo — an object-based immersive mixer and renderer.
//!
//! Sessions place mono objects and channel beds around the listener; the engine renders
//! them to speaker layouts by full-sphere VBAP, binaurally by HRTF convolution, and to a
//! stereo fold-down with its own master chain, and meters every output (ITU-R BS.1770-4)
//! so that translation problems show up before delivery. See `DESIGN.md` for the map.

pub mod adm;
pub mod automation;
pub mod binaural;
pub mod demo;
pub mod downmix;
pub mod dsp;
pub mod engine;
pub mod exchange;
pub mod geometry;
pub mod io;
pub mod layout;
pub mod loudness;
pub mod panner;
pub mod parallel;
pub mod playback;
pub mod render;
pub mod session;
pub mod translation;
