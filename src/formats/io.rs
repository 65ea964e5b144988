//! Audio and text file I/O, the only module that touches the file system: streamed WAV
//! reading (RIFF/WAVE, RF64 and BW64 per EBU Tech 3306 / ITU-R BS.2088), WAV writing
//! (WAVE_FORMAT_EXTENSIBLE, RF64 past 4 GiB, atomic temp-file-then-rename commit) and a
//! streaming sample-rate converter (`rubato` FFT resampler, delay compensated).
//!
//! # Why the WAV code is hand-written
//!
//! `hound` 3.5 always writes the channel mask `(1 << n) - 1` (wrong for 5.1.4 or 7.1.4,
//! whose masks have gaps), cannot read or write RF64/BW64 (renders of 12 channels pass
//! 4 GiB after about 40 minutes at 48 kHz), and has no way to add the BW64 `chna`/`axml`
//! chunks that ADM export needs. The format is small, so this module writes and parses it
//! directly; [`Chunk`] lets a caller put extra chunks before `data`.
//!
//! # Files written
//!
//! `RIFF`/`RF64` header, a 28-byte `JUNK` chunk right after `WAVE` (replaced in place by
//! `ds64` when the file outgrows 32-bit sizes, as EBU Tech 3306 recommends), a 40-byte
//! EXTENSIBLE `fmt ` chunk with the caller's `dwChannelMask` (0 when none is given),
//! optional extra chunks, then `data` (padded to an even length). No `fact` chunk is
//! written for float files: it is redundant with the data size, optional for
//! WAVE_FORMAT_EXTENSIBLE in practice (libsndfile, ffmpeg, sox and hound read such files),
//! and would need its own 64-bit handling in RF64.
//!
//! # Atomicity
//!
//! [`WavWriter`] writes to a hidden temp file in the destination directory;
//! [`WavWriter::finish`] patches the header and syncs, giving a [`PendingFile`] whose
//! [`PendingFile::commit`] renames it into place. Dropping either before the end removes
//! the temp file, so a failed render leaves nothing behind, and a render with several
//! outputs can finish all of them before committing any.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

mod commit;
mod guard;
pub use commit::{commit_all, forget_dir, note_dir, remove_own_temps};
pub use guard::{MAX_SOFA_BYTES, MAX_TEXT_BYTES, check_outputs, open_input, read_capped};

/// Lowest sample rate accepted from a file (sources, masters, SOFA sets), in Hz.
pub const MIN_RATE_HZ: u32 = 8_000;
/// Highest sample rate accepted from a file, in Hz.
pub const MAX_RATE_HZ: u32 = 768_000;
/// Most channels accepted in a WAV file (ADM masters carry up to a few hundred tracks).
pub const MAX_CHANNELS: usize = 1024;
/// Largest magnitude of a float sample read (+120 dBFS): beyond it a file is refused, as
/// its sums (resampler, meters, mix) would overflow; real overs are a few dB.
pub const MAX_FLOAT_SAMPLE: f32 = 1.0e6;

/// Errors of the I/O module: each names the file (or directory) and what is wrong.
#[derive(Debug, Error)]
pub enum IoError {
    #[error("{}: file not found", .path.display())]
    /// The file does not exist.
    NotFound {
        /// The file or directory concerned.
        path: PathBuf,
    },
    #[error("{}: is {kind}; allowed: a regular file", .path.display())]
    /// The path is not a regular file.
    NotRegular {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the path is instead (a directory, a device, ...).
        kind: &'static str,
    },
    #[error("{}: the file is {size} bytes; allowed: at most {max} bytes", .path.display())]
    /// The file exceeds the size limit.
    TooLarge {
        /// The file or directory concerned.
        path: PathBuf,
        /// Size of the file, in bytes.
        size: u64,
        /// Largest size allowed, in bytes.
        max: u64,
    },
    #[error(
        "{}: output would replace {}, which this command reads; allowed: an output that is none of the inputs (choose another --out)",
        .output.display(), .input.display()
    )]
    /// An output path is also one of the inputs.
    OutputIsInput {
        /// The output path.
        output: PathBuf,
        /// The input it would replace.
        input: PathBuf,
    },
    #[error(
        "{}: sample {value} (not a finite number) in channel {channel} at frame {frame}; allowed: finite samples",
        .path.display()
    )]
    /// A sample is NaN or infinite.
    NonFinite {
        /// The file or directory concerned.
        path: PathBuf,
        /// The offending sample value.
        value: f32,
        /// 1-based.
        channel: usize,
        /// Frame index (0-based).
        frame: u64,
    },
    #[error(
        "{}: sample {value:e} ({level_db:.0} dBFS) in channel {channel} at frame {frame} is beyond +120 dBFS; allowed: float samples within ±1e6 (+120 dBFS)",
        .path.display()
    )]
    /// A float sample so large that it cannot be a signal (and overflows the resampler's
    /// and the meters' sums).
    Overrange {
        /// The file concerned.
        path: PathBuf,
        /// The offending sample value.
        value: f32,
        /// Its level, dBFS.
        level_db: f64,
        /// 1-based.
        channel: usize,
        /// Frame index (0-based).
        frame: u64,
    },
    #[error("{}: cannot read: {source}", .path.display())]
    /// The file cannot be read.
    Unreadable {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying operating-system error.
        #[source]
        source: io::Error,
    },
    #[error("{}: not a WAV file: {reason}", .path.display())]
    /// The file is not a RIFF/RF64/BW64 WAVE file.
    NotWav {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    #[error("{}: unsupported {what}; allowed: {allowed}", .path.display())]
    /// The file uses a feature halo does not support.
    Unsupported {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is unsupported or invalid.
        what: String,
        /// What is allowed instead.
        allowed: &'static str,
    },
    #[error(
        "{}: truncated: the header declares {expected_frames} frames but the data ends at frame {got_frames}",
        .path.display()
    )]
    /// The audio data ends before the header says it should.
    Truncated {
        /// The file or directory concerned.
        path: PathBuf,
        /// Frames the header declares.
        expected_frames: u64,
        /// Frames actually present.
        got_frames: u64,
    },
    #[error("{}: corrupt WAV file: {reason}", .path.display())]
    /// The file is malformed.
    Corrupt {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    #[error("{}: directory is not writable: {source}", .path.display())]
    /// The directory cannot be written to.
    NotWritable {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying operating-system error.
        #[source]
        source: io::Error,
    },
    #[error("{}: write failed: {source}", .path.display())]
    /// Writing failed.
    Write {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying operating-system error.
        #[source]
        source: io::Error,
    },
    #[error("{}: invalid output spec: {what}; allowed: {allowed}", .path.display())]
    /// The output spec is invalid.
    InvalidSpec {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is unsupported or invalid.
        what: String,
        /// What is allowed instead.
        allowed: &'static str,
    },
    #[error(
        "{}: buffer of {len} samples is not a whole number of {channels}-channel frames",
        .path.display()
    )]
    /// A buffer does not hold whole frames.
    BufferShape {
        /// The file or directory concerned.
        path: PathBuf,
        /// Length of the buffer, in samples.
        len: usize,
        /// Channels per frame.
        channels: usize,
    },
    #[error("{}: cannot seek to frame {frame}; the file has {frames} frames", .path.display())]
    /// A seek past the end of the file.
    SeekOutOfRange {
        /// The file or directory concerned.
        path: PathBuf,
        /// Frame index (0-based).
        frame: u64,
        /// Frames in the file.
        frames: u64,
    },
    #[error("{}: resampling {from_hz} Hz to {to_hz} Hz failed: {reason}", .path.display())]
    /// Resampling failed.
    Resample {
        /// The file or directory concerned.
        path: PathBuf,
        /// Source sample rate, in Hz.
        from_hz: u32,
        /// Target sample rate, in Hz.
        to_hz: u32,
        /// What is wrong, in words.
        reason: String,
    },
}

/// Sample encoding of a WAV file that can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Unsigned 8-bit integer (offset 128).
    Pcm8,
    Pcm16,
    Pcm24,
    Pcm32,
    F32,
    F64,
}

impl IoError {
    /// True when the machine failed (disk full, permission, device: exit code 4) rather
    /// than the input being at fault (exit code 2).
    pub fn is_environment(&self) -> bool {
        match self {
            IoError::Unreadable { source, .. }
            | IoError::NotWritable { source, .. }
            | IoError::Write { source, .. } => !matches!(
                source.kind(),
                // A path that names the wrong thing is the user's input.
                io::ErrorKind::NotADirectory
                    | io::ErrorKind::IsADirectory
                    | io::ErrorKind::NotFound
                    | io::ErrorKind::InvalidFilename
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::InvalidData
            ),
            _ => false,
        }
    }
}

impl SampleFormat {
    /// Bytes per sample in the file.
    pub fn bytes(self) -> usize {
        match self {
            SampleFormat::Pcm8 => 1,
            SampleFormat::Pcm16 => 2,
            SampleFormat::Pcm24 => 3,
            SampleFormat::Pcm32 | SampleFormat::F32 => 4,
            SampleFormat::F64 => 8,
        }
    }
}

/// What the header of a WAV file says.
#[derive(Debug, Clone, PartialEq)]
pub struct WavInfo {
    pub channels: usize,
    pub sample_rate: u32,
    /// Length in frames (samples per channel).
    pub frames: u64,
    pub format: SampleFormat,
    /// `dwChannelMask` of a WAVE_FORMAT_EXTENSIBLE file; `None` for plain PCM/float.
    pub channel_mask: Option<u32>,
}

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// The 14 bytes that follow the format tag in the KSDATAFORMAT_SUBTYPE_* GUIDs
/// (`xxxxxxxx-0000-0010-8000-00aa00389b71`, little-endian fields).
const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];
/// Largest `fmt ` chunk accepted (EXTENSIBLE is 40 bytes; anything huge is corrupt).
const MAX_FMT_BYTES: u64 = 4096;
/// Largest `ds64` chunk accepted (28 bytes plus a table of 12-byte entries).
const MAX_DS64_BYTES: u64 = 65_536;
/// Bytes of file data the reader keeps in memory.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Bytes the writer collects before one `write` call.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;
const ALLOWED_FORMATS: &str = "PCM (tag 1) 8/16/24/32-bit, IEEE float (tag 3) 32/64-bit, \
     or WAVE_FORMAT_EXTENSIBLE (0xFFFE) with a PCM or IEEE float subformat";

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

fn fourcc(id: [u8; 4]) -> String {
    id.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

fn open_error(path: &Path, e: io::Error) -> IoError {
    if e.kind() == io::ErrorKind::NotFound {
        IoError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        IoError::Unreadable {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Reads as many bytes as possible into `buf`, stopping only at end of file.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Parsed `fmt ` chunk.
struct Fmt {
    channels: usize,
    sample_rate: u32,
    format: SampleFormat,
    block_align: usize,
    channel_mask: Option<u32>,
}

fn parse_fmt(path: &Path, b: &[u8]) -> Result<Fmt, IoError> {
    let corrupt = |reason: String| IoError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if b.len() < 16 {
        return Err(corrupt(format!(
            "fmt chunk is {} bytes, at least 16 needed",
            b.len()
        )));
    }
    let tag = u16_at(b, 0);
    let channels = u16_at(b, 2) as usize;
    let sample_rate = u32_at(b, 4);
    let block_align = u16_at(b, 12) as usize;
    let bits = u16_at(b, 14);
    let (float, channel_mask) = match tag {
        WAVE_FORMAT_PCM => (false, None),
        WAVE_FORMAT_IEEE_FLOAT => (true, None),
        WAVE_FORMAT_EXTENSIBLE => {
            if b.len() < 40 || u16_at(b, 16) < 22 {
                return Err(corrupt(format!(
                    "WAVE_FORMAT_EXTENSIBLE fmt chunk is {} bytes (cbSize {}), 40 bytes with cbSize 22 needed",
                    b.len(),
                    if b.len() >= 18 { u16_at(b, 16) } else { 0 }
                )));
            }
            let valid_bits = u16_at(b, 18);
            if valid_bits > bits {
                return Err(corrupt(format!(
                    "wValidBitsPerSample {valid_bits} exceeds the {bits}-bit container"
                )));
            }
            let sub = u16_at(b, 24);
            if b[26..40] != GUID_TAIL || (sub != WAVE_FORMAT_PCM && sub != WAVE_FORMAT_IEEE_FLOAT) {
                let guid: String = b[24..40].iter().map(|x| format!("{x:02x}")).collect();
                return Err(IoError::Unsupported {
                    path: path.to_path_buf(),
                    what: format!("EXTENSIBLE subformat GUID (bytes {guid})"),
                    allowed: ALLOWED_FORMATS,
                });
            }
            (sub == WAVE_FORMAT_IEEE_FLOAT, Some(u32_at(b, 20)))
        }
        other => {
            let name = match other {
                0x0002 => " (Microsoft ADPCM)",
                0x0006 => " (A-law)",
                0x0007 => " (mu-law)",
                0x0011 => " (IMA ADPCM)",
                0x0055 => " (MPEG layer 3)",
                _ => "",
            };
            return Err(IoError::Unsupported {
                path: path.to_path_buf(),
                what: format!("format tag 0x{other:04X}{name}"),
                allowed: ALLOWED_FORMATS,
            });
        }
    };
    if channels == 0 {
        return Err(corrupt("fmt chunk declares 0 channels".into()));
    }
    if sample_rate == 0 {
        return Err(corrupt("fmt chunk declares a sample rate of 0 Hz".into()));
    }
    if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&sample_rate) {
        return Err(IoError::Unsupported {
            path: path.to_path_buf(),
            what: format!("sample rate {sample_rate} Hz"),
            allowed: "8000 to 768000 Hz",
        });
    }
    if channels > MAX_CHANNELS {
        return Err(IoError::Unsupported {
            path: path.to_path_buf(),
            what: format!("{channels} channels"),
            allowed: "1 to 1024 channels",
        });
    }
    let format = match (float, bits) {
        (false, 8) => SampleFormat::Pcm8,
        (false, 16) => SampleFormat::Pcm16,
        (false, 24) => SampleFormat::Pcm24,
        (false, 32) => SampleFormat::Pcm32,
        (true, 32) => SampleFormat::F32,
        (true, 64) => SampleFormat::F64,
        (f, bits) => {
            return Err(IoError::Unsupported {
                path: path.to_path_buf(),
                what: format!(
                    "{bits}-bit {} samples",
                    if f { "floating-point" } else { "integer" }
                ),
                allowed: "8, 16, 24 or 32-bit integer; 32 or 64-bit float",
            });
        }
    };
    let expected = channels * format.bytes();
    if block_align != expected {
        return Err(corrupt(format!(
            "block align is {block_align} bytes, expected {channels} channels × {} bytes = {expected}",
            format.bytes()
        )));
    }
    Ok(Fmt {
        channels,
        sample_rate,
        format,
        block_align,
        channel_mask,
    })
}

/// Streamed WAV reader: holds one fixed-size byte buffer, whatever the file length.
pub struct WavReader {
    path: PathBuf,
    file: File,
    info: WavInfo,
    block_align: usize,
    data_start: u64,
    /// Next frame `read` returns.
    pos: u64,
    raw: Vec<u8>,
    raw_pos: usize,
    raw_len: usize,
    chunks: Vec<ChunkInfo>,
    file_len: u64,
}

/// Where a chunk's body lies in a RIFF/RF64 file (sizes resolved through `ds64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    pub id: [u8; 4],
    /// Byte offset of the body (after the 8-byte chunk header).
    pub offset: u64,
    /// Declared body size in bytes (without the pad byte).
    pub size: u64,
}

/// Most chunks a WAV file may have before it is taken as corrupt.
const MAX_CHUNKS: usize = 4096;

impl std::fmt::Debug for WavReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavReader")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("pos", &self.pos)
            .finish()
    }
}

impl WavReader {
    /// Opens a RIFF/WAVE, RF64 or BW64 file and reads its header. Unknown chunks are
    /// skipped (with their pad byte); `fmt ` may come before or after `data`.
    pub fn open(path: &Path) -> Result<WavReader, IoError> {
        let mut file = open_input(path)?;
        let unreadable = |e: io::Error| IoError::Unreadable {
            path: path.to_path_buf(),
            source: e,
        };
        let not_wav = |reason: String| IoError::NotWav {
            path: path.to_path_buf(),
            reason,
        };
        let corrupt = |reason: String| IoError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file_len = file.metadata().map_err(unreadable)?.len();
        if file_len == 0 {
            return Err(not_wav("the file is empty".into()));
        }
        let mut head = [0u8; 12];
        let got = read_full(&mut file, &mut head).map_err(unreadable)?;
        if got < 12 {
            return Err(not_wav(format!(
                "the file is {got} bytes, shorter than the 12-byte RIFF header"
            )));
        }
        let riff_id = [head[0], head[1], head[2], head[3]];
        let large = match &riff_id {
            b"RIFF" => false,
            b"RF64" | b"BW64" => true,
            b"RIFX" => {
                return Err(IoError::Unsupported {
                    path: path.to_path_buf(),
                    what: "big-endian RIFX file".into(),
                    allowed: "little-endian RIFF, RF64 or BW64",
                });
            }
            _ => {
                return Err(not_wav(format!(
                    "starts with \"{}\", not RIFF, RF64 or BW64",
                    fourcc(riff_id)
                )));
            }
        };
        if &head[8..12] != b"WAVE" {
            return Err(not_wav(format!(
                "{} form type is \"{}\", not WAVE",
                fourcc(riff_id),
                fourcc([head[8], head[9], head[10], head[11]])
            )));
        }

        // ds64: 64-bit sizes of RIFF, data, sample count, then a table of other chunks.
        let mut ds64_data: Option<u64> = None;
        let mut ds64_table: Vec<([u8; 4], u64)> = Vec::new();
        let mut fmt: Option<Fmt> = None;
        let mut data: Option<(u64, u64)> = None; // (start, size)
        let mut chunks: Vec<ChunkInfo> = Vec::new();
        let mut offset: u64 = 12;
        loop {
            if chunks.len() >= MAX_CHUNKS {
                return Err(corrupt(format!(
                    "more than {MAX_CHUNKS} chunks; a WAV file has a handful"
                )));
            }
            if offset.saturating_add(8) > file_len {
                break;
            }
            file.seek(SeekFrom::Start(offset)).map_err(unreadable)?;
            let mut ch = [0u8; 8];
            if read_full(&mut file, &mut ch).map_err(unreadable)? < 8 {
                break;
            }
            let id = [ch[0], ch[1], ch[2], ch[3]];
            let size32 = u32_at(&ch, 4);
            let body = offset + 8;
            let size: u64 = if large && size32 == u32::MAX {
                if &id == b"data" {
                    ds64_data.ok_or_else(|| {
                        corrupt(format!(
                            "{} data chunk has size 0xFFFFFFFF but no ds64 chunk precedes it",
                            fourcc(riff_id)
                        ))
                    })?
                } else {
                    ds64_table
                        .iter()
                        .find(|(t, _)| *t == id)
                        .map(|(_, s)| *s)
                        .ok_or_else(|| {
                            corrupt(format!(
                                "chunk \"{}\" has size 0xFFFFFFFF but is not in the ds64 table",
                                fourcc(id)
                            ))
                        })?
                }
            } else {
                u64::from(size32)
            };
            chunks.push(ChunkInfo {
                id,
                offset: body,
                size,
            });
            match &id {
                b"ds64" if large => {
                    if !(28..=MAX_DS64_BYTES).contains(&size) {
                        return Err(corrupt(format!(
                            "ds64 chunk is {size} bytes, 28 to {MAX_DS64_BYTES} accepted"
                        )));
                    }
                    let mut b = vec![0u8; size as usize];
                    if read_full(&mut file, &mut b).map_err(unreadable)? < b.len() {
                        return Err(corrupt("ds64 chunk is cut short".into()));
                    }
                    ds64_data = Some(u64_at(&b, 8));
                    let entries = u32_at(&b, 24) as usize;
                    for k in 0..entries {
                        let at = 28 + k * 12;
                        if at + 12 > b.len() {
                            return Err(corrupt(format!(
                                "ds64 table declares {entries} entries but holds {}",
                                k
                            )));
                        }
                        ds64_table
                            .push(([b[at], b[at + 1], b[at + 2], b[at + 3]], u64_at(&b, at + 4)));
                    }
                }
                b"fmt " => {
                    if size > MAX_FMT_BYTES {
                        return Err(corrupt(format!(
                            "fmt chunk is {size} bytes, at most {MAX_FMT_BYTES} accepted"
                        )));
                    }
                    let mut b = vec![0u8; size as usize];
                    if read_full(&mut file, &mut b).map_err(unreadable)? < b.len() {
                        return Err(corrupt(format!(
                            "fmt chunk declares {size} bytes but the file ends first"
                        )));
                    }
                    fmt = Some(parse_fmt(path, &b)?);
                }
                b"data" if data.is_none() => data = Some((body, size)),
                _ => {}
            }
            // Chunks are padded to an even length.
            offset = body.saturating_add(size).saturating_add(size & 1);
        }
        let fmt = fmt.ok_or_else(|| not_wav("no fmt chunk".into()))?;
        let (data_start, data_size) = data.ok_or_else(|| not_wav("no data chunk".into()))?;
        let frames = data_size / fmt.block_align as u64;
        let raw_cap = (READ_BUFFER_BYTES / fmt.block_align).max(1) * fmt.block_align;
        let info = WavInfo {
            channels: fmt.channels,
            sample_rate: fmt.sample_rate,
            frames,
            format: fmt.format,
            channel_mask: fmt.channel_mask,
        };
        file.seek(SeekFrom::Start(data_start)).map_err(unreadable)?;
        Ok(WavReader {
            path: path.to_path_buf(),
            file,
            info,
            block_align: fmt.block_align,
            data_start,
            pos: 0,
            raw: vec![0u8; raw_cap],
            raw_pos: 0,
            raw_len: 0,
            chunks,
            file_len,
        })
    }

    /// Format, length and metadata chunks of the open file.
    pub fn info(&self) -> &WavInfo {
        &self.info
    }

    /// Frames the file really holds: fewer than `info().frames` when it is cut short.
    pub fn frames_present(&self) -> u64 {
        let bytes = self.file_len.saturating_sub(self.data_start);
        (bytes / self.block_align as u64).min(self.info.frames)
    }

    /// Every chunk of the file, in file order (`fmt `, `data`, `chna`, `axml`, …).
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }

    /// The body of the first chunk with this id (e.g. `*b"axml"`), or `None` if the file
    /// has none. A chunk larger than `max_bytes`, or one the file ends inside, is an error
    /// naming the chunk. The read position for audio is kept.
    pub fn read_chunk(&mut self, id: [u8; 4], max_bytes: u64) -> Result<Option<Vec<u8>>, IoError> {
        let Some(chunk) = self.chunks.iter().find(|c| c.id == id).cloned() else {
            return Ok(None);
        };
        let corrupt = |reason: String| IoError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        if chunk.size > max_bytes {
            return Err(corrupt(format!(
                "\"{}\" chunk is {} bytes, at most {max_bytes} accepted",
                fourcc(id),
                chunk.size
            )));
        }
        if chunk.offset.saturating_add(chunk.size) > self.file_len {
            return Err(corrupt(format!(
                "\"{}\" chunk declares {} bytes but the file ends after {}",
                fourcc(id),
                chunk.size,
                self.file_len.saturating_sub(chunk.offset)
            )));
        }
        let unreadable = |e: io::Error| IoError::Unreadable {
            path: self.path.clone(),
            source: e,
        };
        self.file
            .seek(SeekFrom::Start(chunk.offset))
            .map_err(unreadable)?;
        let mut body = vec![0u8; chunk.size as usize];
        let got = read_full(&mut self.file, &mut body).map_err(unreadable)?;
        // Put the file back where buffered reading expects it.
        let resume = self.data_start
            + (self.pos + ((self.raw_len - self.raw_pos) / self.block_align) as u64)
                * self.block_align as u64;
        self.file
            .seek(SeekFrom::Start(resume))
            .map_err(unreadable)?;
        if got < body.len() {
            return Err(corrupt(format!("\"{}\" chunk is cut short", fourcc(id))));
        }
        Ok(Some(body))
    }

    /// Path of the file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The frame the next `read` starts at.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads up to `interleaved.len() / channels` frames as f32 in [-1, 1) (integer
    /// formats scaled by 2^(bits-1)); returns the number of frames read, 0 at the end.
    /// A file shorter than its header declares gives [`IoError::Truncated`].
    pub fn read(&mut self, interleaved: &mut [f32]) -> Result<usize, IoError> {
        let ch = self.info.channels;
        let want = ((interleaved.len() / ch) as u64).min(self.info.frames - self.pos) as usize;
        let mut done = 0usize;
        while done < want {
            if self.raw_pos == self.raw_len {
                self.refill()?;
            }
            let avail = (self.raw_len - self.raw_pos) / self.block_align;
            let n = avail.min(want - done);
            let bytes = &self.raw[self.raw_pos..self.raw_pos + n * self.block_align];
            let out = &mut interleaved[done * ch..(done + n) * ch];
            decode(self.info.format, bytes, out);
            if matches!(self.info.format, SampleFormat::F32 | SampleFormat::F64)
                && let Some(i) = out
                    .iter()
                    .position(|x| !x.is_finite() || x.abs() > MAX_FLOAT_SAMPLE)
            {
                let (value, channel, frame) = (out[i], i % ch + 1, self.pos + (i / ch) as u64);
                let path = self.path.clone();
                return Err(if value.is_finite() {
                    IoError::Overrange {
                        path,
                        value,
                        level_db: 20.0 * f64::from(value.abs()).log10(),
                        channel,
                        frame,
                    }
                } else {
                    IoError::NonFinite {
                        path,
                        value,
                        channel,
                        frame,
                    }
                });
            }
            self.raw_pos += n * self.block_align;
            done += n;
            self.pos += n as u64;
        }
        Ok(done)
    }

    fn refill(&mut self) -> Result<(), IoError> {
        let buffered_end = self.pos; // raw buffer is empty: file position is at `pos`
        let remaining = (self.info.frames - buffered_end) * self.block_align as u64;
        let len = (self.raw.len() as u64).min(remaining) as usize;
        let got =
            read_full(&mut self.file, &mut self.raw[..len]).map_err(|e| IoError::Unreadable {
                path: self.path.clone(),
                source: e,
            })?;
        if got < len {
            return Err(IoError::Truncated {
                path: self.path.clone(),
                expected_frames: self.info.frames,
                got_frames: buffered_end + (got / self.block_align) as u64,
            });
        }
        self.raw_pos = 0;
        self.raw_len = len;
        Ok(())
    }

    /// Moves the read position to `frame` (0 ..= frames).
    pub fn seek(&mut self, frame: u64) -> Result<(), IoError> {
        if frame > self.info.frames {
            return Err(IoError::SeekOutOfRange {
                path: self.path.clone(),
                frame,
                frames: self.info.frames,
            });
        }
        let byte = self.data_start + frame * self.block_align as u64;
        self.file
            .seek(SeekFrom::Start(byte))
            .map_err(|e| IoError::Unreadable {
                path: self.path.clone(),
                source: e,
            })?;
        self.pos = frame;
        self.raw_pos = 0;
        self.raw_len = 0;
        Ok(())
    }
}

/// Converts whole frames of file bytes to f32 samples (`out.len()` samples).
/// 24-bit samples four at a time by one byte shuffle (each sample to the top three bytes
/// of an i32, then shifted down with its sign), while 16 bytes remain readable; returns
/// the samples done. The same values as the portable loop in [`decode`]: the integers
/// are exact in f32 and the scale is a power of two. The portable loop took a tenth of
/// an ADM render's time; no crate we use decodes packed 24-bit PCM.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn decode_pcm24_ssse3(bytes: &[u8], out: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let n = out.len().min(bytes.len() / 3);
    let steps = if bytes.len() >= 16 {
        ((bytes.len() - 16) / 12 + 1).min(n / 4)
    } else {
        0
    };
    let shuffle = _mm_setr_epi8(-1, 0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11);
    let scale = _mm_set1_ps(1.0 / 8_388_608.0);
    let (src, dst) = (bytes.as_ptr(), out.as_mut_ptr());
    for k in 0..steps {
        // SAFETY: step k reads bytes 12k…12k + 15 (< `bytes.len()` by `steps`) and writes
        // floats 4k…4k + 3 (< `n` ≤ `out.len()`); unaligned access.
        let v = unsafe { _mm_loadu_si128(src.add(k * 12).cast()) };
        let x = _mm_srai_epi32::<8>(_mm_shuffle_epi8(v, shuffle));
        let f = _mm_mul_ps(_mm_cvtepi32_ps(x), scale);
        unsafe { _mm_storeu_ps(dst.add(k * 4), f) };
    }
    steps * 4
}

fn decode(format: SampleFormat, bytes: &[u8], out: &mut [f32]) {
    match format {
        SampleFormat::Pcm8 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = (f32::from(b) - 128.0) * (1.0 / 128.0);
            }
        }
        SampleFormat::Pcm16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32_768.0);
            }
        }
        SampleFormat::Pcm24 => {
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("ssse3") {
                // SAFETY: the CPU reported SSSE3.
                done = unsafe { decode_pcm24_ssse3(bytes, out) };
            }
            let (bytes, out) = (&bytes[done * 3..], &mut out[done..]);
            // Four samples (12 bytes, three 32-bit words) at a time: each sample is moved
            // to the top of an i32 and shifted back down, sign-extended.
            let scale = 1.0 / 8_388_608.0;
            let mut outs = out.chunks_exact_mut(4);
            let mut ins = bytes.chunks_exact(12);
            for (o, b) in (&mut outs).zip(&mut ins) {
                let w0 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let w1 = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                let w2 = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
                o[0] = ((w0 << 8) as i32 >> 8) as f32 * scale;
                o[1] = ((((w0 >> 24) | (w1 << 8)) << 8) as i32 >> 8) as f32 * scale;
                o[2] = ((((w1 >> 16) | (w2 << 16)) << 8) as i32 >> 8) as f32 * scale;
                o[3] = (w2 as i32 >> 8) as f32 * scale;
            }
            for (o, b) in outs
                .into_remainder()
                .iter_mut()
                .zip(ins.remainder().chunks_exact(3))
            {
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                *o = v as f32 * scale;
            }
        }
        SampleFormat::Pcm32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                *o = (f64::from(v) * (1.0 / 2_147_483_648.0)) as f32;
            }
        }
        SampleFormat::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        SampleFormat::F64 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                *o = f64::from_le_bytes(a) as f32;
            }
        }
    }
}

/// Sample encoding of a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFormat {
    /// 16-bit integer PCM.
    Pcm16,
    /// 24-bit integer PCM.
    Pcm24,
    /// 32-bit IEEE float.
    F32,
}

impl WriteFormat {
    /// Bytes per sample in this format (2, 3 or 4).
    pub fn bytes(self) -> usize {
        match self {
            WriteFormat::Pcm16 => 2,
            WriteFormat::Pcm24 => 3,
            WriteFormat::F32 => 4,
        }
    }
    fn tag(self) -> u16 {
        match self {
            WriteFormat::Pcm16 | WriteFormat::Pcm24 => WAVE_FORMAT_PCM,
            WriteFormat::F32 => WAVE_FORMAT_IEEE_FLOAT,
        }
    }
}

/// What to write.
#[derive(Debug, Clone, PartialEq)]
pub struct WavSpec {
    /// Channels per frame.
    pub channels: usize,
    /// Sample rate, in Hz.
    pub sample_rate: u32,
    /// Sample format written.
    pub format: WriteFormat,
    /// `dwChannelMask`; `None` writes 0 (no speaker assignment).
    pub channel_mask: Option<u32>,
}

/// An extra RIFF chunk written between `fmt ` and `data` (e.g. BW64 `chna`, `axml`).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub id: [u8; 4],
    pub data: Vec<u8>,
}

/// Size of the `JUNK`/`ds64` body reserved after `WAVE`: riff size, data size and sample
/// count (3 × u64) and a zero table length (u32).
const DS64_BODY: u32 = 28;

/// The exact header [`WavWriter`] writes for `data_bytes` bytes of audio: RIFF with a
/// `JUNK` reservation while every size fits in 32 bits, RF64 with `ds64` beyond.
/// Test support (halo's tests check the RIFF/RF64 switch with it).
#[cfg(feature = "internals")]
pub fn header_bytes(spec: &WavSpec, data_bytes: u64) -> Vec<u8> {
    header_bytes_with_chunks(spec, &[], data_bytes)
}

/// [`header_bytes`] with extra chunks before `data`.
pub fn header_bytes_with_chunks(spec: &WavSpec, extra: &[Chunk], data_bytes: u64) -> Vec<u8> {
    let extra_len: u64 = extra
        .iter()
        .map(|c| 8 + c.data.len() as u64 + (c.data.len() as u64 & 1))
        .sum();
    let header_len = 12 + 8 + u64::from(DS64_BODY) + 8 + 40 + extra_len + 8;
    let riff_size = header_len - 8 + data_bytes + (data_bytes & 1);
    let large = riff_size > u64::from(u32::MAX) || data_bytes > u64::from(u32::MAX);
    let block_align = (spec.channels * spec.format.bytes()) as u64;
    let mut h = Vec::with_capacity(header_len as usize);
    if large {
        h.extend_from_slice(b"RF64");
        h.extend_from_slice(&u32::MAX.to_le_bytes());
    } else {
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&(riff_size as u32).to_le_bytes());
    }
    h.extend_from_slice(b"WAVE");
    if large {
        h.extend_from_slice(b"ds64");
        h.extend_from_slice(&DS64_BODY.to_le_bytes());
        h.extend_from_slice(&riff_size.to_le_bytes());
        h.extend_from_slice(&data_bytes.to_le_bytes());
        let frames = data_bytes.checked_div(block_align).unwrap_or(0);
        h.extend_from_slice(&frames.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
    } else {
        h.extend_from_slice(b"JUNK");
        h.extend_from_slice(&DS64_BODY.to_le_bytes());
        h.extend_from_slice(&[0u8; DS64_BODY as usize]);
    }
    let bits = (spec.format.bytes() * 8) as u16;
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&40u32.to_le_bytes());
    h.extend_from_slice(&WAVE_FORMAT_EXTENSIBLE.to_le_bytes());
    h.extend_from_slice(&(spec.channels as u16).to_le_bytes());
    h.extend_from_slice(&spec.sample_rate.to_le_bytes());
    let byte_rate = u64::from(spec.sample_rate) * block_align;
    h.extend_from_slice(&(byte_rate.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    h.extend_from_slice(&(block_align.min(0xFFFF) as u16).to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(&22u16.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(&spec.channel_mask.unwrap_or(0).to_le_bytes());
    h.extend_from_slice(&spec.format.tag().to_le_bytes());
    h.extend_from_slice(&GUID_TAIL);
    for c in extra {
        h.extend_from_slice(&c.id);
        h.extend_from_slice(&(c.data.len().min(u32::MAX as usize) as u32).to_le_bytes());
        h.extend_from_slice(&c.data);
        if c.data.len() & 1 == 1 {
            h.push(0);
        }
    }
    h.extend_from_slice(b"data");
    let data32 = if large { u32::MAX } else { data_bytes as u32 };
    h.extend_from_slice(&data32.to_le_bytes());
    h
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const TEMP_MARK: &str = ".halo-tmp.";

/// The directory a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates a new hidden temp file beside `path`: `.NAME.halo-tmp.PID.N`.
fn create_temp(path: &Path) -> Result<(File, PathBuf), IoError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| IoError::InvalidSpec {
            path: path.to_path_buf(),
            what: "the output path has no file name".into(),
            allowed: "a path to a file",
        })?;
    if path.is_dir() {
        return Err(IoError::Write {
            path: path.to_path_buf(),
            source: io::Error::other("the output path is a directory"),
        });
    }
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}{TEMP_MARK}{}.{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(f) => {
                commit::note_temp(&temp);
                return Ok((f, temp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(IoError::NotWritable {
                    path: dir,
                    source: e,
                });
            }
        }
    }
}

/// Streaming WAV writer to a temp file; see the module docs for the layout.
pub struct WavWriter {
    path: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    spec: WavSpec,
    extra: Vec<Chunk>,
    buf: Vec<u8>,
    data_bytes: u64,
    frames: u64,
}

impl std::fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavWriter")
            .field("path", &self.path)
            .field("temp", &self.temp)
            .field("spec", &self.spec)
            .field("frames", &self.frames)
            .finish()
    }
}

impl WavWriter {
    /// Starts writing `path` (through a hidden temp file in the same directory).
    pub fn create(path: &Path, spec: WavSpec) -> Result<WavWriter, IoError> {
        Self::create_with_chunks(path, spec, Vec::new())
    }

    /// [`WavWriter::create`] with extra chunks written between `fmt ` and `data`.
    pub fn create_with_chunks(
        path: &Path,
        spec: WavSpec,
        extra: Vec<Chunk>,
    ) -> Result<WavWriter, IoError> {
        let invalid = |what: String, allowed: &'static str| IoError::InvalidSpec {
            path: path.to_path_buf(),
            what,
            allowed,
        };
        let max_channels = 0xFFFF / spec.format.bytes();
        if spec.channels == 0 || spec.channels > max_channels {
            return Err(invalid(
                format!("{} channels", spec.channels),
                "1 to 16383 channels (block align must fit 16 bits)",
            ));
        }
        let block_align = (spec.channels * spec.format.bytes()) as u64;
        if spec.sample_rate == 0 || u64::from(spec.sample_rate) * block_align > u64::from(u32::MAX)
        {
            return Err(invalid(
                format!("sample rate {} Hz", spec.sample_rate),
                "a positive rate whose byte rate fits 32 bits",
            ));
        }
        if let Some(mask) = spec.channel_mask
            && mask.count_ones() as usize > spec.channels
        {
            return Err(invalid(
                format!(
                    "channel mask 0x{mask:X} names {} speakers for {} channels",
                    mask.count_ones(),
                    spec.channels
                ),
                "at most one mask bit per channel",
            ));
        }
        for c in &extra {
            if &c.id == b"data" || &c.id == b"fmt " || &c.id == b"ds64" || c.data.len() > 1 << 30 {
                return Err(invalid(
                    format!("extra chunk \"{}\" of {} bytes", fourcc(c.id), c.data.len()),
                    "chunks other than data/fmt/ds64, up to 1 GiB",
                ));
            }
        }
        let (file, temp) = create_temp(path)?;
        let mut w = WavWriter {
            path: path.to_path_buf(),
            temp,
            file: Some(file),
            spec,
            extra,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES + 64 * 1024),
            data_bytes: 0,
            frames: 0,
        };
        let header = header_bytes_with_chunks(&w.spec, &w.extra, 0);
        w.buf.extend_from_slice(&header);
        Ok(w)
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Channels, rate and format being written.
    pub fn spec(&self) -> &WavSpec {
        &self.spec
    }

    /// Appends interleaved frames. PCM is clamped to full scale and rounded to nearest;
    /// NaN is written as 0.
    pub fn write(&mut self, interleaved: &[f32]) -> Result<(), IoError> {
        let ch = self.spec.channels;
        if !interleaved.len().is_multiple_of(ch) {
            return Err(IoError::BufferShape {
                path: self.path.clone(),
                len: interleaved.len(),
                channels: ch,
            });
        }
        let bps = self.spec.format.bytes();
        // Convert in slices that fit the buffer, flushing when it is full.
        let max_samples = (WRITE_BUFFER_BYTES / (bps * ch)).max(1) * ch;
        for part in interleaved.chunks(max_samples) {
            if self.buf.len() + part.len() * bps > WRITE_BUFFER_BYTES {
                self.flush_buf()?;
            }
            let start = self.buf.len();
            self.buf.resize(start + part.len() * bps, 0);
            encode(self.spec.format, part, &mut self.buf[start..]);
            self.data_bytes += (part.len() * bps) as u64;
            self.frames += (part.len() / ch) as u64;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), IoError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = self.file.as_mut().ok_or_else(|| IoError::Write {
            path: self.path.clone(),
            source: io::Error::other("writer already finished"),
        })?;
        file.write_all(&self.buf).map_err(|e| IoError::Write {
            path: self.temp.clone(),
            source: e,
        })?;
        self.buf.clear();
        Ok(())
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Writes the pad byte and the final header, syncs the file, and hands back the
    /// still-uncommitted file.
    pub fn finish(mut self) -> Result<PendingFile, IoError> {
        if self.data_bytes & 1 == 1 {
            self.buf.push(0);
        }
        self.flush_buf()?;
        let header = header_bytes_with_chunks(&self.spec, &self.extra, self.data_bytes);
        let write_err = |p: &Path, e: io::Error| IoError::Write {
            path: p.to_path_buf(),
            source: e,
        };
        let mut file = self.file.take().ok_or_else(|| IoError::Write {
            path: self.path.clone(),
            source: io::Error::other("writer already finished"),
        })?;
        let result = (|| {
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header)?;
            file.sync_all()
        })();
        drop(file);
        if let Err(e) = result {
            // Drop of `self` removes the temp file.
            return Err(write_err(&self.temp, e));
        }
        let pending = PendingFile {
            temp: std::mem::take(&mut self.temp),
            path: std::mem::take(&mut self.path),
            done: false,
        };
        Ok(pending)
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        // Not finished (or finish failed): remove the partial file.
        self.file.take();
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
            commit::forget_temp(&self.temp);
        }
    }
}

/// Rounds half away from zero and clamps to [lo, hi]; NaN → 0. Exact: `x · scale` has at
/// most 24 significant bits, so the f64 sum with 0.5 is exact (unlike in f32), and the
/// saturating cast truncates toward zero.
#[inline]
fn quantize(x: f32, scale: f64, lo: i32, hi: i32) -> i32 {
    let y = f64::from(x) * scale;
    ((y + 0.5f64.copysign(y)) as i32).clamp(lo, hi)
}

/// [`quantize`] to 24 bits, four samples at a time in SSE2 (part of every x86-64 CPU):
/// NaN to 0, clamped to the 24-bit range in f64, then truncated, which is what the
/// scalar conversion and clamp give (unit test: equal for every kind of value). Returns
/// the samples done (whole groups of four). Rounding one sample at a time was 5 % of an
/// ADM render.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn encode_pcm24_sse2(samples: &[f32], out: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    let groups = samples.len().min(out.len() / 3) / 4;
    let scale = _mm_set1_pd(8_388_608.0);
    let half = _mm_set1_pd(0.5);
    let sign = _mm_set1_pd(-0.0);
    let (lo, hi) = (_mm_set1_pd(-8_388_608.0), _mm_set1_pd(8_388_607.0));
    let round = |x: __m128d| {
        let y = _mm_mul_pd(x, scale);
        let r = _mm_add_pd(y, _mm_or_pd(_mm_and_pd(y, sign), half));
        let r = _mm_and_pd(r, _mm_cmpord_pd(r, r));
        _mm_cvttpd_epi32(_mm_min_pd(_mm_max_pd(r, lo), hi))
    };
    for (x, o) in samples
        .chunks_exact(4)
        .zip(out.chunks_exact_mut(12))
        .take(groups)
    {
        let x: [f32; 4] = x.try_into().expect("four samples");
        // SAFETY: SSE2 is part of x86-64; `x` is four floats, read unaligned.
        let v = unsafe { _mm_loadu_ps(x.as_ptr()) };
        let low = round(_mm_cvtps_pd(v));
        let high = round(_mm_cvtps_pd(_mm_movehl_ps(v, v)));
        let mut ints = [0i32; 4];
        // SAFETY: `ints` holds four i32, written unaligned.
        unsafe { _mm_storeu_si128(ints.as_mut_ptr().cast(), _mm_unpacklo_epi64(low, high)) };
        for (o, v) in o.chunks_exact_mut(3).zip(ints) {
            o.copy_from_slice(&v.to_le_bytes()[..3]);
        }
    }
    groups * 4
}

/// Converts samples to little-endian file bytes (`out.len() == samples × bytes`).
fn encode(format: WriteFormat, samples: &[f32], out: &mut [u8]) {
    match format {
        WriteFormat::Pcm16 => {
            for (o, &s) in out.chunks_exact_mut(2).zip(samples) {
                let v = quantize(s, 32_768.0, -32_768, 32_767) as i16;
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        WriteFormat::Pcm24 => {
            #[cfg(target_arch = "x86_64")]
            let (out, samples) = {
                // SAFETY: SSE2 is part of every x86-64 CPU.
                let done = unsafe { encode_pcm24_sse2(samples, out) };
                (&mut out[done * 3..], &samples[done..])
            };
            for (o, &s) in out.chunks_exact_mut(3).zip(samples) {
                let v = quantize(s, 8_388_608.0, -8_388_608, 8_388_607).to_le_bytes();
                o.copy_from_slice(&v[..3]);
            }
        }
        WriteFormat::F32 => {
            for (o, &s) in out.chunks_exact_mut(4).zip(samples) {
                o.copy_from_slice(&s.to_le_bytes());
            }
        }
    }
}

/// A finished file waiting under its temp name; [`PendingFile::commit`] renames it into
/// place, dropping it removes it.
#[derive(Debug)]
pub struct PendingFile {
    temp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl PendingFile {
    /// Renames the temp file to the final path (replacing an existing file).
    pub fn commit(self) -> Result<PathBuf, IoError> {
        let mut paths = commit_all(vec![self])?;
        Ok(paths.pop().unwrap_or_default())
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the file currently is.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
            commit::forget_temp(&self.temp);
        }
    }
}

/// Reads a whole SOFA HRTF set (a regular file of at most [`MAX_SOFA_BYTES`]).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, IoError> {
    read_capped(path, MAX_SOFA_BYTES)
}

/// Reads a UTF-8 text file (a regular file of at most `MAX_TEXT_BYTES`).
pub fn read_text(path: &Path) -> Result<String, IoError> {
    let bytes = read_capped(path, MAX_TEXT_BYTES)?;
    String::from_utf8(bytes).map_err(|e| IoError::Unreadable {
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "byte {} is not UTF-8 text; allowed: a UTF-8 text file",
                e.utf8_error().valid_up_to()
            ),
        ),
    })
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, sync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    pending_bytes(path, bytes)?.commit().map(|_| ())
}

/// Writes `bytes` under a temp name beside `path` and returns it uncommitted, so that it
/// can be moved into place together with other files (or vanish with them on error).
pub fn pending_bytes(path: &Path, bytes: &[u8]) -> Result<PendingFile, IoError> {
    let (mut file, temp) = create_temp(path)?;
    let pending = PendingFile {
        temp,
        path: path.to_path_buf(),
        done: false,
    };
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| IoError::Write {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok(pending)
}

/// Creates a directory and its parents; returns whether `path` itself was created (false
/// when it existed), so that a failed operation can take it away again.
pub fn create_dir_all(path: &Path) -> Result<bool, IoError> {
    let existed = path.is_dir();
    fs::create_dir_all(path).map_err(|source| IoError::NotWritable {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(!existed)
}

/// Removes a directory if it is empty (best effort: errors are ignored).
pub fn remove_empty_dir(path: &Path) {
    let _ = fs::remove_dir(path);
}

/// Removes temp files left in `dir` by earlier halo processes that were killed before
/// they could clean up (names `.NAME.halo-tmp.PID.N` whose PID is not this process and,
/// on Linux, no longer running). Returns how many were removed.
pub fn remove_stale_temp(dir: &Path) -> Result<usize, IoError> {
    let entries = fs::read_dir(dir).map_err(|e| open_error(dir, e))?;
    let me = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(at) = name.find(TEMP_MARK) else {
            continue;
        };
        if !name.starts_with('.') {
            continue;
        }
        let rest = &name[at + TEMP_MARK.len()..];
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let alive = if cfg!(target_os = "linux") {
            Path::new(&format!("/proc/{pid}")).exists()
        } else {
            true // cannot tell: keep it
        };
        if !alive && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// State of the resampling path of a [`SourceStream`].
struct Resampling {
    resampler: Fft<f32>,
    chunk_in: usize,
    chunk_out: usize,
    /// Interleaved input chunk (chunk_in frames).
    input: Vec<f32>,
    /// Interleaved output chunk (chunk_out frames).
    output: Vec<f32>,
    out_pos: usize,
    out_len: usize,
    /// Output frames still to drop to compensate the resampler delay.
    skip: usize,
}

/// A WAV file delivered at a target sample rate: passthrough when the rates match,
/// otherwise converted by `rubato`'s FFT resampler (fixed ratio, high quality), with its
/// delay removed so that output frame 0 is input frame 0.
pub struct SourceStream {
    reader: WavReader,
    target_rate: u32,
    frames: u64,
    emitted: u64,
    rs: Option<Resampling>,
}

impl std::fmt::Debug for SourceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceStream")
            .field("reader", &self.reader)
            .field("target_rate", &self.target_rate)
            .field("frames", &self.frames)
            .field("emitted", &self.emitted)
            .finish()
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Most samples (frames × channels) in one resampler block.
const MAX_RESAMPLE_BLOCK_SAMPLES: usize = 8 << 20;
/// Largest input block of the smallest whole-number ratio of a source's rate to the
/// session's: the synchronous resampler's FFT is a few times this long. Every rate in use
/// is far below (44.1 kHz → 48 kHz: 147; 44.056 kHz: 5507; 47.952 kHz: 999); a rate such as
/// 131 249 Hz (prime) would need a 262 498-point FFT per block (seconds per block).
const MAX_RESAMPLE_RATIO_FRAMES: u64 = 8192;

/// Target resampler chunk, in input frames (rounded up to a valid FFT block size).
const RESAMPLE_CHUNK_FRAMES: usize = 1024;

impl SourceStream {
    pub fn open(path: &Path, target_rate: u32) -> Result<SourceStream, IoError> {
        let reader = WavReader::open(path)?;
        if target_rate == 0 {
            return Err(IoError::InvalidSpec {
                path: path.to_path_buf(),
                what: "target sample rate 0 Hz".into(),
                allowed: "a positive sample rate",
            });
        }
        let info = reader.info().clone();
        let from = u64::from(info.sample_rate);
        let to = u64::from(target_rate);
        // Exact: ceil(frames · to / from) in 128-bit arithmetic.
        let frames = ((u128::from(info.frames) * u128::from(to)).div_ceil(u128::from(from)))
            .min(u128::from(u64::MAX)) as u64;
        let rs = if from == to {
            None
        } else {
            let min_in = from / gcd(from, to);
            if min_in > MAX_RESAMPLE_RATIO_FRAMES {
                return Err(IoError::Unsupported {
                    path: path.to_path_buf(),
                    what: format!(
                        "resampling from {from} Hz to {to} Hz (their ratio {min_in}:{} is too \
                         fine for the synchronous resampler)",
                        to / gcd(from, to)
                    ),
                    allowed: "rates whose ratio to the session's rate reduces to at most \
                              8192:N (every rate in use: the 44.1k and 48k families, 32k, \
                              44.056k, 47.952k, …)",
                });
            }
            let min_in = min_in as usize;
            // An even number of minimal blocks makes the FFT block even on both sides, so
            // the filter centre (half a block) is a whole number of output frames.
            let chunk = RESAMPLE_CHUNK_FRAMES.div_ceil(2 * min_in) * 2 * min_in;
            // Rates with a tiny common divisor (767 999 Hz to 48 kHz) need huge blocks:
            // refuse before allocating them.
            if chunk.saturating_mul(info.channels) > MAX_RESAMPLE_BLOCK_SAMPLES {
                return Err(IoError::Unsupported {
                    path: path.to_path_buf(),
                    what: format!(
                        "resampling {} channels from {from} Hz to {to} Hz (blocks of {chunk} frames)",
                        info.channels
                    ),
                    allowed: "rates whose ratio needs at most 8 M samples per block (any common rate)",
                });
            }
            let resample_err = |reason: String| IoError::Resample {
                path: path.to_path_buf(),
                from_hz: info.sample_rate,
                to_hz: target_rate,
                reason,
            };
            let resampler = Fft::<f32>::new(
                from as usize,
                to as usize,
                chunk,
                info.channels,
                FixedSync::Both,
            )
            .map_err(|e| resample_err(e.to_string()))?;
            let chunk_in = resampler.input_frames_max();
            let chunk_out = resampler.output_frames_max();
            let skip = resampler.output_delay();
            Some(Resampling {
                resampler,
                chunk_in,
                chunk_out,
                input: vec![0.0; chunk_in * info.channels],
                output: vec![0.0; chunk_out * info.channels],
                out_pos: 0,
                out_len: 0,
                skip,
            })
        };
        Ok(SourceStream {
            reader,
            target_rate,
            frames,
            emitted: 0,
            rs,
        })
    }

    /// Header of the source file (its own rate and length).
    pub fn info(&self) -> &WavInfo {
        self.reader.info()
    }

    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    pub fn resampled(&self) -> bool {
        self.rs.is_some()
    }

    /// Length at the target rate: ceil(file frames × target / source).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Moves the stream to `frame` at the target rate (clamped to [`SourceStream::frames`]:
    /// past the end, reads return 0). Passthrough streams land exactly. Resampled
    /// streams restart the resampler (delay compensated) at the latest source frame
    /// whose time is a whole number of target frames (a multiple of
    /// `source_rate / gcd(rates)` source frames) and drop the output frames up to
    /// `frame`, so the first frame read is the one at `frame`; only the resampler's
    /// start-up differs from a stream read from the beginning (its filter sees silence
    /// before the restart point instead of the source).
    pub fn seek(&mut self, frame: u64) -> Result<(), IoError> {
        let frame = frame.min(self.frames);
        let info = self.reader.info();
        let file_frames = info.frames;
        let from = u64::from(info.sample_rate);
        let to = u64::from(self.target_rate);
        match self.rs.as_mut() {
            None => {
                self.reader.seek(frame.min(file_frames))?;
            }
            Some(rs) => {
                let step_in = from / gcd(from, to);
                let step_out = to / gcd(from, to);
                let steps = frame / step_out;
                let source_frame = (steps * step_in).min(file_frames);
                let out_frame = source_frame / step_in * step_out;
                self.reader.seek(source_frame)?;
                rs.resampler.reset();
                rs.out_pos = 0;
                rs.out_len = 0;
                rs.skip = rs.resampler.output_delay() + (frame - out_frame) as usize;
            }
        }
        self.emitted = frame;
        Ok(())
    }

    /// Reads up to `interleaved.len() / channels` frames at the target rate; exactly
    /// [`SourceStream::frames`] frames in total, then 0.
    pub fn read(&mut self, interleaved: &mut [f32]) -> Result<usize, IoError> {
        let ch = self.reader.info().channels;
        let want = ((interleaved.len() / ch) as u64).min(self.frames - self.emitted) as usize;
        let Some(rs) = self.rs.as_mut() else {
            let n = self.reader.read(&mut interleaved[..want * ch])?;
            self.emitted += n as u64;
            return Ok(n);
        };
        let mut done = 0;
        while done < want {
            if rs.out_pos == rs.out_len {
                // Next chunk of input; short (or empty) at the end: rubato pads with zeros.
                let mut got = 0;
                while got < rs.chunk_in {
                    let n = self.reader.read(&mut rs.input[got * ch..])?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                let indexing = Indexing::new().partial_len(got);
                let resample_err = |reason: String| IoError::Resample {
                    path: self.reader.path().to_path_buf(),
                    from_hz: self.reader.info().sample_rate,
                    to_hz: self.target_rate,
                    reason,
                };
                let input = InterleavedSlice::new(&rs.input[..], ch, rs.chunk_in)
                    .map_err(|e| resample_err(e.to_string()))?;
                let mut output = InterleavedSlice::new_mut(&mut rs.output[..], ch, rs.chunk_out)
                    .map_err(|e| resample_err(e.to_string()))?;
                let (_, produced) = rs
                    .resampler
                    .process_into_buffer(&input, &mut output, Some(&indexing))
                    .map_err(|e| resample_err(e.to_string()))?;
                let skip = rs.skip.min(produced);
                rs.skip -= skip;
                rs.out_pos = skip;
                rs.out_len = produced;
                continue;
            }
            let n = (rs.out_len - rs.out_pos).min(want - done);
            interleaved[done * ch..(done + n) * ch]
                .copy_from_slice(&rs.output[rs.out_pos * ch..(rs.out_pos + n) * ch]);
            rs.out_pos += n;
            done += n;
        }
        self.emitted += done as u64;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-shuffle and portable 24-bit decoders against the definition, sample by
    /// sample, for every length up to 41 samples (whole and partial shuffle steps) and
    /// bytes that cover both signs and the extremes.
    #[test]
    fn pcm24_decode_equals_the_definition() {
        let mut bytes: Vec<u8> = (0..41 * 3).map(|k| (k * 89 + 7) as u8).collect();
        bytes[..6].copy_from_slice(&[0x00, 0x00, 0x80, 0xff, 0xff, 0x7f]);
        for n in 0..=41 {
            let mut out = vec![f32::NAN; n];
            decode(SampleFormat::Pcm24, &bytes[..n * 3], &mut out);
            for (k, &x) in out.iter().enumerate() {
                let b = &bytes[k * 3..k * 3 + 3];
                let v = (i32::from(b[2] as i8) << 16) | (i32::from(b[1]) << 8) | i32::from(b[0]);
                assert_eq!(x, v as f32 / 8_388_608.0, "{n} samples, sample {k}");
            }
        }
        let mut extremes = [0.0f32; 2];
        decode(SampleFormat::Pcm24, &bytes[..6], &mut extremes);
        assert_eq!(extremes, [-1.0, 8_388_607.0 / 8_388_608.0]);
    }

    /// Values for the 24-bit rounding tests: zeros, the limits and just past them,
    /// halves of a step either side of 0, infinities, NaN, the largest floats, and
    /// 20 000 values spread over ±1 and ±1e-5; 20 020 in all (whole groups of four).
    fn rounding_test_values() -> Vec<f32> {
        let mut values = vec![
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            1.5,
            -7.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            0.5 / 8_388_608.0,
            -0.5 / 8_388_608.0,
            1.5 / 8_388_608.0,
            -2.5 / 8_388_608.0,
            0.499_999_97 / 8_388_608.0,
            8_388_607.5 / 8_388_608.0,
            -8_388_608.5 / 8_388_608.0,
        ];
        let mut x = 0.123_456_7f32;
        for _ in 0..10_001 {
            x = (x * 3.7 + 0.311).fract() * 2.0 - 1.0;
            values.push(x);
            values.push(x * 1e-5);
        }
        values
    }

    #[test]
    fn pcm24_encode_four_at_a_time_equals_quantize() {
        let mut values = rounding_test_values();
        values.push(-0.75); // one past the groups of four: the scalar loop's
        let mut bytes = vec![0u8; values.len() * 3];
        encode(WriteFormat::Pcm24, &values, &mut bytes);
        for (k, (&v, b)) in values.iter().zip(bytes.chunks_exact(3)).enumerate() {
            let want = quantize(v, 8_388_608.0, -8_388_608, 8_388_607).to_le_bytes();
            assert_eq!(b, &want[..3], "sample {k}: {v}");
        }
    }

    #[test]
    fn quantize_matches_naive_rounding() {
        // Reference: f64 round (half away from zero) then clamp.
        let naive = |x: f32| -> i32 {
            if x.is_nan() {
                return 0;
            }
            (f64::from(x) * 8_388_608.0)
                .round()
                .clamp(-8_388_608.0, 8_388_607.0) as i32
        };
        for v in rounding_test_values() {
            assert_eq!(
                quantize(v, 8_388_608.0, -8_388_608, 8_388_607),
                naive(v),
                "{v}"
            );
        }
    }

    #[test]
    fn pcm24_encode_decode_round_trip_is_exact_for_grid_values() {
        let samples: Vec<f32> = (-100..100)
            .map(|k| (k * 41_943) as f32 / 8_388_608.0)
            .collect();
        let mut bytes = vec![0u8; samples.len() * 3];
        encode(WriteFormat::Pcm24, &samples, &mut bytes);
        let mut back = vec![0f32; samples.len()];
        decode(SampleFormat::Pcm24, &bytes, &mut back);
        assert_eq!(samples, back);
    }

    #[test]
    fn header_below_4gib_is_riff_with_junk() {
        let spec = WavSpec {
            channels: 2,
            sample_rate: 48_000,
            format: WriteFormat::Pcm24,
            channel_mask: Some(3),
        };
        let h = header_bytes(&spec, 600);
        assert_eq!(h.len(), 104);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32_at(&h, 4), 104 - 8 + 600);
        assert_eq!(&h[12..16], b"JUNK");
        assert_eq!(u32_at(&h, 16), 28);
        assert_eq!(&h[96..100], b"data");
        assert_eq!(u32_at(&h, 100), 600);
    }

    #[test]
    fn odd_data_is_padded_in_riff_size() {
        let spec = WavSpec {
            channels: 1,
            sample_rate: 48_000,
            format: WriteFormat::Pcm24,
            channel_mask: None,
        };
        let h = header_bytes(&spec, 3);
        assert_eq!(u32_at(&h, 4), 104 - 8 + 4);
        assert_eq!(u32_at(&h, 100), 3);
    }
}
