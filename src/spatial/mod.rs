//! Gains and filters that place sound: the object panner, binaural (HRTF) rendering and
//! the fold-downs (ITU-R BS.775). Pure computation on scene data; no files.

pub mod binaural;
pub mod direct_speakers;
pub mod downmix;
pub mod hoa;
pub mod objectbased;
pub mod panner;
