//! What a mix is, as plain data: geometry and room mapping, automation, speaker layouts
//! (ITU-R BS.2051). Nothing here knows of files, processors or rendering.

pub mod automation;
pub mod geometry;
pub mod layout;
pub mod mix;
