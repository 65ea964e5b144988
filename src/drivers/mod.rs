//! Whole jobs built from the layers below: offline render (on threads), ADM import and
//! export, live playback, and the demo's built-in material.

pub mod demo;
pub mod exchange;
pub mod parallel;
pub mod playback;
pub mod render;
