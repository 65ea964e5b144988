//! Every source a scene reads, each distinct file opened once and resampled to the
//! session rate: objects and beds read their channels from the block last read. Shared by
//! offline rendering, export and playback.

use crate::drivers::plan::RenderError;
use crate::formats::io::{IoError, SourceStream};
use crate::scene::mix::Scene;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub file: PathBuf,
    pub sample_rate: u32,
    pub resampled: bool,
}

/// Who first named a source file: read errors are reported against it.
enum Owner {
    Object(String),
    Bed(String),
}

/// One opened source file. A file several objects or beds read from (the tracks of an
/// ADM master, a multichannel stem) is opened, read and resampled once per block.
struct Source {
    stream: SourceStream,
    channels: usize,
    scratch: Vec<f32>,
    finished: bool,
    owner: Owner,
}

impl Source {
    fn error(&self, source: IoError) -> RenderError {
        match &self.owner {
            Owner::Object(object) => RenderError::ObjectSource {
                object: object.clone(),
                source,
            },
            Owner::Bed(bed) => RenderError::BedSource {
                bed: bed.clone(),
                source,
            },
        }
    }

    /// Reads up to `frames` frames into the scratch buffer, zero-padding past the end.
    fn fill(&mut self, frames: usize) -> Result<(), IoError> {
        let want = frames * self.channels;
        let mut got = 0;
        while !self.finished && got < want {
            let n = self.stream.read(&mut self.scratch[got..want])?;
            if n == 0 {
                self.finished = true;
            }
            got += n * self.channels;
        }
        self.scratch[got..want].fill(0.0);
        Ok(())
    }
}

/// Every source a scene reads, each distinct file opened once; objects and beds read
/// their channels from the block last read. Shared by offline rendering and export.
pub struct Sources {
    files: Vec<Source>,
    /// (file, channel) of every object.
    objects: Vec<(usize, usize)>,
    /// (file, [(file channel, layout channel)]) of every bed.
    beds: Vec<(usize, Vec<(usize, usize)>)>,
    /// One per object, then one per bed.
    pub reports: Vec<SourceReport>,
}

impl Sources {
    /// Opens the sources of `scene`, resampled to `rate`, for blocks of up to
    /// `block_frames`; checks channel numbers and bed channel counts.
    pub fn open(scene: &Scene, rate: u32, block_frames: usize) -> Result<Sources, RenderError> {
        let mut source_reports = Vec::new();
        let mut files: Vec<Source> = Vec::new();
        let mut open = |path: &Path, owner: Owner| -> Result<usize, RenderError> {
            if let Some(i) = files.iter().position(|f| f.stream.path() == path) {
                return Ok(i);
            }
            let stream = SourceStream::open(path, rate).map_err(|source| match &owner {
                Owner::Object(object) => RenderError::ObjectSource {
                    object: object.clone(),
                    source,
                },
                Owner::Bed(bed) => RenderError::BedSource {
                    bed: bed.clone(),
                    source,
                },
            })?;
            let channels = stream.info().channels;
            files.push(Source {
                channels,
                scratch: vec![0.0; block_frames * channels],
                stream,
                finished: false,
                owner,
            });
            Ok(files.len() - 1)
        };
        // (file, channel) of every object.
        let mut object_src: Vec<(usize, usize)> = Vec::with_capacity(scene.objects.len());
        for obj in &scene.objects {
            let file = open(&obj.source.path, Owner::Object(obj.name.clone()))?;
            object_src.push((file, 0));
        }
        // (file, [(file channel, layout channel)]) of every bed.
        let mut bed_src: Vec<(usize, Vec<(usize, usize)>)> = Vec::with_capacity(scene.beds.len());
        for bed in &scene.beds {
            let file = open(&bed.source, Owner::Bed(bed.name.clone()))?;
            bed_src.push((file, Vec::new()));
        }
        for (obj, (file, channel)) in scene.objects.iter().zip(object_src.iter_mut()) {
            let src = &files[*file];
            let channels = src.channels;
            let name = &obj.name;
            *channel = match obj.source.channel {
                None if channels == 1 => 0,
                None => {
                    return Err(RenderError::NotMono {
                        object: name.clone(),
                        path: obj.source.path.clone(),
                        channels,
                    });
                }
                Some(c) if c >= channels => {
                    return Err(RenderError::NoSuchChannel {
                        object: name.clone(),
                        path: obj.source.path.clone(),
                        channels,
                        channel: c + 1,
                    });
                }
                Some(c) => c,
            };
            source_reports.push(SourceReport {
                name: name.clone(),
                file: obj.source.path.clone(),
                sample_rate: src.stream.info().sample_rate,
                resampled: src.stream.resampled(),
            });
        }
        for (bed, (file, map)) in scene.beds.iter().zip(bed_src.iter_mut()) {
            let name = &bed.name;
            let src = &files[*file];
            let channels = src.channels;
            if let Some(list) = &bed.channels {
                // An explicit map (an ADM master's bed tracks): file channel per layout channel.
                if let Some(&c) = list.iter().find(|&&c| c >= channels) {
                    return Err(RenderError::BedNoSuchChannel {
                        bed: name.clone(),
                        path: bed.source.clone(),
                        channels,
                        channel: c + 1,
                    });
                }
                *map = list
                    .iter()
                    .enumerate()
                    .map(|(layout_ch, &file_ch)| (file_ch, layout_ch))
                    .collect();
            } else {
                if channels != bed.layout.num_channels() {
                    return Err(RenderError::BedChannels {
                        bed: name.clone(),
                        path: bed.source.clone(),
                        channels,
                        layout: bed.layout.name.clone(),
                        expected: bed.layout.num_channels(),
                        labels: bed.layout.labels().join(" "),
                    });
                }
                // A file whose mask matches the layout is in mask (WAV) order; otherwise the
                // file is taken to be in the layout's own order.
                let order = match (
                    src.stream.info().channel_mask,
                    bed.layout.wav_channel_mask(),
                ) {
                    (Some(m), Some(l)) if m == l => bed.layout.wav_order(),
                    _ => (0..channels).collect(),
                };
                *map = order.into_iter().enumerate().collect();
            }
            source_reports.push(SourceReport {
                name: name.clone(),
                file: bed.source.clone(),
                sample_rate: src.stream.info().sample_rate,
                resampled: src.stream.resampled(),
            });
        }
        Ok(Sources {
            files,
            objects: object_src,
            beds: bed_src,
            reports: source_reports,
        })
    }

    /// Frames of the longest source (at the render rate).
    pub fn frames(&self) -> u64 {
        self.files
            .iter()
            .map(|s| s.stream.frames())
            .max()
            .unwrap_or(0)
    }

    /// Moves every file to `frame` (at the render rate), for live playback's seeks.
    pub fn seek(&mut self, frame: u64) -> Result<(), RenderError> {
        for src in self.files.iter_mut() {
            let to = frame.min(src.stream.frames());
            if let Err(e) = src.stream.seek(to) {
                return Err(src.error(e));
            }
            src.finished = false;
        }
        Ok(())
    }

    /// Reads the next `frames` frames of every file (silence past a file's end).
    pub fn read_block(&mut self, frames: usize) -> Result<(), RenderError> {
        for src in self.files.iter_mut() {
            if let Err(e) = src.fill(frames) {
                return Err(src.error(e));
            }
        }
        Ok(())
    }

    /// Reads the next `frames` frames of every file straight into the objects' buffers
    /// (object `i` into `objects[i][..frames]`) and the beds' (`beds[b][layout channel]`):
    /// the same values as [`Sources::read_block`] then [`Sources::object`] and
    /// [`Sources::bed_channel`]. A file is read and taken apart a few frames at a time
    /// (≈ 16 KB of samples), so that its interleaved samples stay in the L1/L2 cache while
    /// each object takes its own: a 128-track master's whole block is half a megabyte,
    /// and striding through it once per object cost ≈ 15 % of a 7.1.4 render (measured).
    pub fn read_into(
        &mut self,
        frames: usize,
        objects: &mut [Vec<f32>],
        beds: &mut [Vec<Vec<f32>>],
    ) -> Result<(), RenderError> {
        /// Samples (all channels) per tile.
        const TILE_SAMPLES: usize = 4096;
        for (f, src) in self.files.iter_mut().enumerate() {
            let nch = src.channels;
            let tile = (TILE_SAMPLES / nch).clamp(1, frames.max(1));
            let mut start = 0;
            while start < frames {
                let n = tile.min(frames - start);
                if let Err(e) = src.fill(n) {
                    return Err(src.error(e));
                }
                let rows = &src.scratch[..n * nch];
                for (out, &(_, ch)) in objects
                    .iter_mut()
                    .zip(&self.objects)
                    .filter(|(_, (file, _))| *file == f)
                {
                    for (x, row) in out[start..start + n].iter_mut().zip(rows.chunks_exact(nch)) {
                        *x = row[ch];
                    }
                }
                for (bed, (_, map)) in beds
                    .iter_mut()
                    .zip(&self.beds)
                    .filter(|(_, (file, _))| *file == f)
                {
                    for (layout_ch, out) in bed.iter_mut().enumerate() {
                        let out = &mut out[start..start + n];
                        match map.iter().find(|&&(_, l)| l == layout_ch) {
                            Some(&(file_ch, _)) => {
                                for (x, row) in out.iter_mut().zip(rows.chunks_exact(nch)) {
                                    *x = row[file_ch];
                                }
                            }
                            None => out.fill(0.0),
                        }
                    }
                }
                start += n;
            }
        }
        Ok(())
    }

    /// Object `i`'s samples of the block last read, into `out` (`out.len()` frames).
    pub fn object(&self, i: usize, out: &mut [f32]) {
        let (file, ch) = self.objects[i];
        let src = &self.files[file];
        for (f, x) in out.iter_mut().enumerate() {
            *x = src.scratch[f * src.channels + ch];
        }
    }

    /// Channel `layout_ch` (layout order) of bed `b`, of the block last read, into `out`.
    pub fn bed_channel(&self, b: usize, layout_ch: usize, out: &mut [f32]) {
        let (file, map) = &self.beds[b];
        let src = &self.files[*file];
        match map.iter().find(|&&(_, l)| l == layout_ch) {
            Some(&(file_ch, _)) => {
                for (f, x) in out.iter_mut().enumerate() {
                    *x = src.scratch[f * src.channels + file_ch];
                }
            }
            None => out.fill(0.0),
        }
    }
}
