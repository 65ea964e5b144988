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
    /// Per file: its objects as runs of consecutive objects on consecutive channels.
    object_runs: Vec<Vec<Run>>,
    /// Whether the CPU has AVX (runs are then taken apart eight channels at a time).
    avx: bool,
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
        let object_runs = object_runs(&object_src, files.len());
        Ok(Sources {
            files,
            object_runs,
            avx: crate::dsp::has_avx(),
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
                for &run in &self.object_runs[f] {
                    take_run(rows, nch, run, objects, start, self.avx);
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

/// Objects `object..object + len` read channels `channel..channel + len` of one file (an
/// ADM master's tracks are in object order, so its objects make one run).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    object: usize,
    channel: usize,
    len: usize,
}

/// Each file's objects (`objects[i]` = (file, channel)) grouped into maximal runs.
fn object_runs(objects: &[(usize, usize)], files: usize) -> Vec<Vec<Run>> {
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); files];
    for (i, &(file, channel)) in objects.iter().enumerate() {
        match runs[file].last_mut() {
            Some(r) if r.object + r.len == i && r.channel + r.len == channel => r.len += 1,
            _ => runs[file].push(Run {
                object: i,
                channel,
                len: 1,
            }),
        }
    }
    runs
}

/// Copies a run's channels out of `rows` (interleaved frames of `nch` samples) into its
/// objects' buffers from frame `at`. With AVX, eight channels by eight frames are
/// transposed in registers: a column at a time would load every sample from another
/// cache line, and this loop was a tenth of an ADM render's time. Values are only
/// moved, so both ways give the same samples.
fn take_run(rows: &[f32], nch: usize, run: Run, objects: &mut [Vec<f32>], at: usize, avx: bool) {
    let frames = rows.len() / nch;
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if avx {
        let whole = run.len / 8 * 8;
        for k in (0..whole).step_by(8) {
            let outs = &mut objects[run.object + k..run.object + k + 8];
            // SAFETY: `avx` is only true when the CPU reported AVX (`Sources::open`).
            unsafe { transpose8_avx(rows, nch, run.channel + k, outs, at) };
        }
        done = whole;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx;
    for k in done..run.len {
        let ch = run.channel + k;
        let out = &mut objects[run.object + k][at..at + frames];
        for (x, row) in out.iter_mut().zip(rows.chunks_exact(nch)) {
            *x = row[ch];
        }
    }
}

/// Channels `ch..ch + 8` of `rows` into `outs[j][at..]`: eight frames at a time through
/// an 8 × 8 register transpose, the last `frames % 8` one by one.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose8_avx(rows: &[f32], nch: usize, ch: usize, outs: &mut [Vec<f32>], at: usize) {
    use std::arch::x86_64::*;
    let frames = rows.len() / nch;
    let whole = frames / 8 * 8;
    // Checked once here, so that the loop indexes by pointer: rows `0..frames` hold
    // channels `ch..ch + 8`, and every output frames `at..at + frames`.
    assert!(ch + 8 <= nch && outs.len() == 8);
    assert!(outs.iter().all(|o| o.len() >= at + frames));
    let base = rows[ch..].as_ptr();
    for f in (0..whole).step_by(8) {
        // SAFETY: frame `f + r` < `frames`, so its eight floats from `ch` are in `rows`.
        let load = |r: usize| unsafe { _mm256_loadu_ps(base.add((f + r) * nch)) };
        let (r0, r1, r2, r3) = (load(0), load(1), load(2), load(3));
        let (r4, r5, r6, r7) = (load(4), load(5), load(6), load(7));
        // Pairs of frames interleaved, then quads, then the 128-bit halves swapped.
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let columns = [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ];
        for (out, column) in outs.iter_mut().zip(columns) {
            // SAFETY: `at + f + 8` ≤ `at + frames` ≤ `out.len()` (checked above).
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at + f), column) };
        }
    }
    for (j, out) in outs.iter_mut().enumerate() {
        for f in whole..frames {
            out[at + f] = rows[f * nch + ch + j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every run, with and without AVX, against a plain column copy: runs of 1…19
    /// channels (whole eights and remainders) over tiles of 1…37 frames.
    #[test]
    fn runs_take_the_same_samples_as_a_column_copy() {
        let nch = 29;
        // Objects 0..19 on channels 3..22; 19 on channel 0; 20..22 on channels 26, 25, 24.
        let mut map: Vec<(usize, usize)> = (0..19).map(|i| (0, 3 + i)).collect();
        map.push((0, 0));
        map.extend([(0, 26), (0, 25), (0, 24)]);
        let runs = object_runs(&map, 1);
        assert_eq!(
            runs[0][0],
            Run {
                object: 0,
                channel: 3,
                len: 19
            }
        );
        assert_eq!(runs[0].len(), 5);
        for frames in [1, 7, 8, 9, 16, 37] {
            let rows: Vec<f32> = (0..frames * nch).map(|k| k as f32 * 0.5 - 3.0).collect();
            for avx in [false, crate::dsp::has_avx()] {
                let mut objects = vec![vec![f32::NAN; frames + 5]; map.len()];
                for &run in &runs[0] {
                    take_run(&rows, nch, run, &mut objects, 5, avx);
                }
                for (i, &(_, ch)) in map.iter().enumerate() {
                    for f in 0..frames {
                        assert_eq!(
                            objects[i][5 + f],
                            rows[f * nch + ch],
                            "object {i} frame {f}"
                        );
                    }
                    assert!(
                        objects[i][..5].iter().all(|x| x.is_nan()),
                        "object {i} before `at`"
                    );
                }
            }
        }
    }
}
