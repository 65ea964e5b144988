//! Whole jobs built from the layers below: offline render (on threads), ADM import and
//! export, live playback, and the demo's built-in material.

pub mod demo;
pub mod exchange;
pub mod parallel;
pub mod plan;
// The device-free core of `halo play` (player, transport, analysis) is used by the binary
// only with the `playback` feature; its tests run without the feature.
#[cfg_attr(not(feature = "playback"), allow(dead_code))]
pub mod playback;
pub mod render;
pub mod sources;
