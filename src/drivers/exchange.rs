//! ADM BWF masters in and out (ITU-R BS.2076-2 metadata in BS.2088-1 BW64 files): reads a
//! master as a scene, splits one into an editable session with stems, and writes a session
//! as a master whose `loudnessMetadata` comes from halo's BS.1770 meter.
//!
//! The files go through `io` and the metadata through `adm`; this module only decides what
//! goes where, and keeps the all-or-nothing rule: every file an operation writes appears
//! together at the end, or none does.

use crate::drivers::render::{self, RenderError, RenderOptions};
use crate::drivers::sources::Sources;
use crate::formats::adm::{self, AdmAudio, AdmError, AdmLoudness, TrackPlan};
use crate::formats::dbmd;
use crate::formats::io::{
    self, Chunk, IoError, PendingFile, WavReader, WavSpec, WavWriter, WriteFormat,
};
use crate::formats::session::{self, SessionError};
use crate::measure::loudness::LoudnessReport;
use crate::scene::layout::Layout;
use crate::scene::mix::{FoldSpec, OutputSpec, Scene, SourceSpec};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Frames read and written per step when splitting or writing a master.
const BLOCK_FRAMES: usize = 4096;

/// The layout whose render the exported loudness describes: the Atmos music reference.
pub const LOUDNESS_LAYOUT: &str = "7.1.4";

/// Errors of ADM BWF import, export and reading; each names the file.
#[derive(Debug, Error)]
pub enum ExchangeError {
    /// A file cannot be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The master's ADM metadata (`axml`, `chna`) is invalid or unsupported.
    #[error("{}: {source}", .path.display())]
    Adm {
        /// The master file.
        path: PathBuf,
        /// What is wrong in its ADM.
        #[source]
        source: AdmError,
    },
    /// The file lacks a chunk an ADM BWF master needs.
    #[error(
        "{}: not an ADM BWF master: it has no `{chunk}` chunk; allowed: a BW64/RF64/WAV file with `chna` and `axml` chunks (as DAWs export for Dolby Atmos), or a halo session (.ron)",
        .path.display()
    )]
    NotAdm {
        /// The file.
        path: PathBuf,
        /// The chunk it lacks (`chna` or `axml`).
        chunk: &'static str,
    },
    /// The master's Dolby metadata chunk (`dbmd`) is malformed.
    #[error("{}: {source}", .path.display())]
    Dbmd {
        /// The file.
        path: PathBuf,
        /// What is wrong in the chunk.
        #[source]
        source: dbmd::DbmdError,
    },
    /// Rendering the master (to measure or export it) failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The session is invalid.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl ExchangeError {
    /// True when the input is at fault (exit code 2), false for a failure of the machine.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ExchangeError::Render(r) => r.is_bad_input(),
            _ => !self.is_environment(),
        }
    }

    /// True when the machine failed (disk full, permission, device: exit code 4).
    pub fn is_environment(&self) -> bool {
        match self {
            ExchangeError::Io(e) => e.is_environment(),
            ExchangeError::Render(r) => r.is_environment(),
            _ => false,
        }
    }
}

/// True when `path` names an ADM BWF master rather than a session (by its extension).
pub fn is_master_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["wav", "bwf", "rf64", "bw64"].contains(&e.to_ascii_lowercase().as_str()))
}

/// What a master held besides its scene.
#[derive(Debug, Clone)]
pub struct Master {
    /// The master as a scene (objects and beds reading its tracks).
    pub scene: Scene,
    /// Parts of the ADM halo does not render (HOA, screen-related, divergence, …).
    pub warnings: Vec<String>,
    /// The rendered programme's `loudnessMetadata`, if the master carries one.
    pub loudness: Option<AdmLoudness>,
}

/// Reads an ADM BWF master: its objects and beds become a scene whose sources are the
/// master's own tracks. The scene has the default outputs (`default_outputs`).
/// `programme`: the `audioProgrammeID` or name to render (None: the first).
pub fn read_master(path: &Path, programme: Option<&str>) -> Result<Master, ExchangeError> {
    read_master_choosing(path, programme, &[])
}

/// [`read_master`] with complementary objects chosen (by `audioObjectID`; in each group the
/// leader renders unless another member is named).
pub fn read_master_choosing(
    path: &Path,
    programme: Option<&str>,
    complementary: &[String],
) -> Result<Master, ExchangeError> {
    let mut reader = WavReader::open(path)?;
    let info = reader.info().clone();
    let present = reader.frames_present();
    if present < info.frames {
        return Err(IoError::Truncated {
            path: path.to_path_buf(),
            expected_frames: info.frames,
            got_frames: present,
        }
        .into());
    }
    let adm_error = |source: AdmError| ExchangeError::Adm {
        path: path.to_path_buf(),
        source,
    };
    let axml = reader.read_chunk(*b"axml", adm::MAX_AXML_BYTES as u64)?;
    let chna = reader
        .read_chunk(*b"chna", adm::MAX_CHNA_BYTES as u64)?
        .ok_or_else(|| ExchangeError::NotAdm {
            path: path.to_path_buf(),
            chunk: if axml.is_some() { "chna" } else { "axml" },
        })?;
    // BS.2088: a file whose tracks are all BS.2094 common definitions may carry a chna
    // and no axml.
    let doc = match axml {
        Some(axml) => adm::parse_axml(&axml).map_err(adm_error)?,
        None => adm::AdmDocument::default(),
    };
    let chna = adm::parse_chna(&chna).map_err(adm_error)?;
    let audio = AdmAudio {
        path: path.to_path_buf(),
        channels: info.channels,
        sample_rate: info.sample_rate,
        frames: info.frames,
    };
    let (mut scene, mut warnings) =
        adm::to_scene_choosing(&doc, &chna, &audio, programme, complementary).map_err(adm_error)?;
    if scene.outputs.is_empty() {
        scene.outputs = default_outputs();
    }
    // Dolby metadata (binaural render modes, trims, downmix modes), when present.
    if let Some(bytes) = reader.read_chunk(*b"dbmd", dbmd::MAX_DBMD_BYTES)? {
        let chunk = dbmd::Dbmd::parse(&bytes).map_err(|source| ExchangeError::Dbmd {
            path: path.to_path_buf(),
            source,
        })?;
        warnings.extend(dbmd::apply_to_scene(&chunk, &mut scene));
    }
    let loudness = adm::select_programme(&doc, programme)
        .map_err(adm_error)?
        .and_then(|p| p.loudness);
    Ok(Master {
        scene,
        warnings,
        loudness,
    })
}

/// What a master or an imported session renders to when nothing else is asked for: the
/// 7.1.4 reference, the headphone version and the Lo/Ro stereo fold-down of the 7.1.4,
/// so that the translation report compares all three.
pub fn default_outputs() -> Vec<OutputSpec> {
    let reference = Layout::builtin(LOUDNESS_LAYOUT).expect("built-in 7.1.4");
    vec![
        OutputSpec::Speakers {
            layout: reference.clone(),
            chain: Vec::new(),
            target: None,
        },
        OutputSpec::Binaural {
            hrtf: None,
            lfe_db: None,
            chain: Vec::new(),
            target: None,
        },
        OutputSpec::Stereo {
            from: reference,
            fold: FoldSpec::default(),
            chain: Vec::new(),
            target: None,
        },
    ]
}

/// A file name made of `[A-Za-z0-9._-]` from an object or bed name.
fn file_part(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if s.is_empty() { "track".into() } else { s }
}

/// One stem file of [`import`].
struct Stem {
    name: String,
    channels: usize,
    channel_mask: Option<u32>,
    /// For beds: the layout channel of each file channel.
    order: Vec<usize>,
}

/// What [`import`] wrote.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The session file written.
    pub session: PathBuf,
    /// The stem files written.
    pub stems: Vec<PathBuf>,
    /// What was left out or changed on the way, in words.
    pub warnings: Vec<String>,
}

/// Splits an ADM master into a halo session (`session_path`) and stems beside it in
/// `<session name>-stems/`: one mono file per object, one file per bed (in WAV channel
/// order with its channel mask where the layout has one). The session renders the same
/// audio as the master.
pub fn import(
    master: &Path,
    programme: Option<&str>,
    session_path: &Path,
    format: WriteFormat,
) -> Result<ImportReport, ExchangeError> {
    let Master {
        scene,
        mut warnings,
        ..
    } = read_master(master, programme)?;
    for bed in scene
        .beds
        .iter()
        .filter(|b| b.speaker_bounds.iter().any(Option::is_some))
    {
        warnings.push(format!(
            "bed '{}': its DirectSpeakers position bounds are not kept in the session (a \
             channel the output lacks is panned at its position)",
            bed.name
        ));
    }
    let dir = session_path.parent().unwrap_or(Path::new(""));
    let stem_name = session_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    let stems_rel = PathBuf::from(format!("{}-stems", file_part(&stem_name)));
    let stems_dir = dir.join(&stems_rel);

    // The new scene points at one stem per object and per bed (relative paths, so the
    // session and its stems can move together). Its text is made before any file is.
    let mut out = scene.clone();
    out.origin = session_path.to_path_buf();
    let mut stems: Vec<Stem> = Vec::new();
    for (i, obj) in out.objects.iter_mut().enumerate() {
        let name = format!("{:03}-{}.wav", i + 1, file_part(&obj.name));
        obj.source = SourceSpec {
            path: stems_rel.join(&name),
            channel: None,
        };
        stems.push(Stem {
            name,
            channels: 1,
            channel_mask: None,
            order: Vec::new(),
        });
    }
    for (b, bed) in out.beds.iter_mut().enumerate() {
        let name = format!("bed-{:02}-{}.wav", b + 1, file_part(&bed.name));
        let mask = bed.layout.wav_channel_mask();
        // WAV order for a layout with a channel mask, layout order otherwise (as render reads).
        let order = if mask.is_some() {
            bed.layout.wav_order()
        } else {
            (0..bed.layout.num_channels()).collect()
        };
        bed.source = stems_rel.join(&name);
        bed.channels = None;
        stems.push(Stem {
            name,
            channels: bed.layout.num_channels(),
            channel_mask: mask,
            order,
        });
    }
    let text = session::write(&out)?;

    // Never write over the master (or a file the master's scene reads).
    let mut outputs = vec![session_path.to_path_buf()];
    outputs.extend(stems.iter().map(|s| stems_dir.join(&s.name)));
    io::check_outputs(
        &render::input_paths(&scene, &RenderOptions::new(dir)),
        &outputs,
    )?;
    let created = io::create_dir_all(&stems_dir)?;
    if created {
        io::note_dir(&stems_dir);
    } else {
        let _ = io::remove_stale_temp(&stems_dir);
    }
    let result = write_stems(&scene, &stems_dir, stems, format, session_path, &text);
    if result.is_err() && created {
        // Every stem was a temp file and is gone: leave no empty folder behind either.
        io::remove_empty_dir(&stems_dir);
    }
    io::forget_dir(&stems_dir);
    let (session, stems) = result?;
    Ok(ImportReport {
        session,
        stems,
        warnings,
    })
}

/// The stems of [`import`], streamed from the master, then moved into place with the
/// session text; returns the session's and the stems' paths.
fn write_stems(
    scene: &Scene,
    stems_dir: &Path,
    stems: Vec<Stem>,
    format: WriteFormat,
    session_path: &Path,
    text: &str,
) -> Result<(PathBuf, Vec<PathBuf>), ExchangeError> {
    let rate = scene.sample_rate;
    let mut sources = Sources::open(scene, rate, BLOCK_FRAMES)?;
    let frames = match scene.duration_frames {
        Some(f) if f > 0 => f,
        _ => sources.frames(),
    };
    let mut writers: Vec<(WavWriter, Vec<usize>)> = Vec::with_capacity(stems.len());
    for stem in stems {
        let spec = WavSpec {
            channels: stem.channels,
            sample_rate: rate,
            format,
            channel_mask: stem.channel_mask,
        };
        writers.push((
            WavWriter::create(&stems_dir.join(&stem.name), spec)?,
            stem.order,
        ));
    }
    let n_objects = scene.objects.len();
    let mut mono = vec![0.0f32; BLOCK_FRAMES];
    let mut interleaved: Vec<f32> = Vec::new();
    let mut done = 0u64;
    while done < frames {
        let n = (frames - done).min(BLOCK_FRAMES as u64) as usize;
        sources.read_block(n)?;
        for (w, (writer, order)) in writers.iter_mut().enumerate() {
            if w < n_objects {
                sources.object(w, &mut mono[..n]);
                writer.write(&mono[..n])?;
            } else {
                let b = w - n_objects;
                let nch = order.len();
                interleaved.resize(n * nch, 0.0);
                for (file_ch, &layout_ch) in order.iter().enumerate() {
                    sources.bed_channel(b, layout_ch, &mut mono[..n]);
                    // An ADM Matrix coefficient (BedSpec::channel_gains) goes into the stem:
                    // the session has no per-channel gain.
                    let gain = scene.beds[b]
                        .channel_gains
                        .get(layout_ch)
                        .map_or(1.0, |&g| g as f32);
                    for (f, &x) in mono[..n].iter().enumerate() {
                        interleaved[f * nch + file_ch] = x * gain;
                    }
                }
                writer.write(&interleaved)?;
            }
        }
        done += n as u64;
    }
    let mut pending: Vec<PendingFile> = Vec::with_capacity(writers.len() + 1);
    for (writer, _) in writers {
        pending.push(writer.finish()?);
    }
    pending.push(io::pending_bytes(session_path, text.as_bytes())?);
    let mut written = io::commit_all(pending)?;
    let session = written.pop().unwrap_or_default();
    Ok((session, written))
}

/// How to write a master.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Sample format of the tracks; delivery asks for 24-bit PCM.
    pub format: WriteFormat,
    /// Measure the 7.1.4 render and fill in the programme's `loudnessMetadata`.
    pub measure_loudness: bool,
    /// The ADM form: the Dolby Atmos Master profile (with a `dbmd` chunk) or BS.2076-2.
    pub profile: adm::AdmProfile,
    /// Write each bed's gain and mute into its tracks (the bed then plays at 0 dB in its
    /// metadata). Dolby Atmos beds have no gain, and EAR 2.1 ignores `audioObject` gain and
    /// mute; without this, they travel as `audioObject` metadata, which halo reads back
    /// exactly.
    pub bake_bed_gains: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            format: WriteFormat::Pcm24,
            measure_loudness: true,
            profile: adm::AdmProfile::DolbyAtmosMaster,
            bake_bed_gains: false,
        }
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The master file written.
    pub path: PathBuf,
    /// Number of audio tracks in it.
    pub tracks: usize,
    /// Length, frames.
    pub frames: u64,
    /// BS.1770 loudness of the 7.1.4 render of the master (what `loudnessMetadata` says).
    pub loudness: Option<LoudnessReport>,
    /// What was left out or changed on the way, in words.
    pub warnings: Vec<String>,
}

/// Writes `scene` as an ADM BWF master: beds (each in its layout's order) then one track
/// per object, `chna`, `axml` (and in the Dolby Atmos profile `dbmd`: binaural render
/// modes, trims, downmix modes) before the audio, BW64 (RF64 header past 4 GiB). Object
/// and bed gains travel as metadata; the tracks are the sources as they are.
pub fn export(
    scene: &Scene,
    out: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, ExchangeError> {
    // Never write over the session or one of its sources.
    io::check_outputs(
        &render::input_paths(scene, &RenderOptions::new("")),
        &[out.to_path_buf()],
    )?;
    let mut warnings = Vec::new();
    if options.profile == adm::AdmProfile::DolbyAtmosMaster {
        // The profile's limits, before the measuring render.
        let plan = TrackPlan::beds_then_objects(scene, 0);
        adm::from_scene_as(scene, &plan, None, options.profile).map_err(|source| {
            ExchangeError::Adm {
                path: out.to_path_buf(),
                source,
            }
        })?;
    }
    for o in &scene.outputs {
        if !o.chain().is_empty() {
            warnings.push(format!(
                "{}: its master chain is not exported; ADM carries no processing, so a \
                 renderer plays the mix without it",
                output_name(o)
            ));
        }
    }
    let rate = scene.sample_rate;
    // Loudness of what the master renders to: the 7.1.4 reference, no master chain.
    let (frames, loudness) = if options.measure_loudness {
        let mut plain = scene.clone();
        plain.outputs = vec![OutputSpec::Speakers {
            layout: Layout::builtin(LOUDNESS_LAYOUT).expect("built-in 7.1.4"),
            chain: Vec::new(),
            target: None,
        }];
        let mut ropts = RenderOptions::new(out.parent().unwrap_or(Path::new("")));
        ropts.write_files = false;
        let report = render::render(&plain, &mut ropts)?;
        let o = &report.outputs[0];
        (o.frames, Some(o.loudness.clone()))
    } else {
        let sources = Sources::open(scene, rate, BLOCK_FRAMES)?;
        (
            scene.duration_frames.unwrap_or_else(|| sources.frames()),
            None,
        )
    };
    let adm_loudness = loudness.as_ref().map(|l| AdmLoudness {
        integrated_lufs: finite(l.integrated_lufs),
        max_true_peak_dbtp: finite(l.true_peak_dbtp),
        loudness_range_lu: finite(l.range_lu),
    });
    let plan = TrackPlan::beds_then_objects(scene, frames);
    // With baked bed gains the metadata says 0 dB and unmuted; the tracks carry the rest.
    let bed_factor: Vec<f32> = scene
        .beds
        .iter()
        .map(|b| match (options.bake_bed_gains, b.mute) {
            (false, _) => 1.0,
            (true, true) => 0.0,
            (true, false) => 10f64.powf(b.gain_db / 20.0) as f32,
        })
        .collect();
    let baked;
    let meta = if options.bake_bed_gains {
        let mut s = scene.clone();
        for b in &mut s.beds {
            b.gain_db = 0.0;
            b.mute = false;
        }
        baked = s;
        &baked
    } else {
        scene
    };
    let adm_error = |source: AdmError| ExchangeError::Adm {
        path: out.to_path_buf(),
        source,
    };
    let (doc, profile_warnings) =
        adm::from_scene_as(meta, &plan, adm_loudness, options.profile).map_err(adm_error)?;
    warnings.extend(profile_warnings);
    let chna = adm::write_chna(&adm::chna_of(&doc, &plan));
    let axml = adm::write_axml(&doc).into_bytes();
    // Which (object | bed channel) feeds each track.
    let mut feeds: Vec<dbmd::Track> = vec![dbmd::Track::Silent; plan.channels];
    for (i, &t) in plan.objects.iter().enumerate() {
        feeds[t] = dbmd::Track::Object(i);
    }
    for (b, chans) in plan.beds.iter().enumerate() {
        for (layout_ch, &t) in chans.iter().enumerate() {
            feeds[t] = dbmd::Track::BedChannel(b, layout_ch);
        }
    }
    let mut chunks = vec![
        Chunk {
            id: *b"chna",
            data: chna,
        },
        Chunk {
            id: *b"axml",
            data: axml,
        },
    ];
    if options.profile == adm::AdmProfile::DolbyAtmosMaster {
        let modes = dbmd::track_modes(meta, &feeds);
        chunks.push(Chunk {
            id: *b"dbmd",
            data: dbmd::for_master(meta, &modes).to_bytes(),
        });
    }
    let spec = WavSpec {
        channels: plan.channels,
        sample_rate: rate,
        format: options.format,
        channel_mask: None,
    };
    if let Some(dir) = out.parent() {
        let _ = io::remove_stale_temp(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        });
    }
    let mut writer = WavWriter::create_with_chunks(out, spec, chunks)?;
    let mut sources = Sources::open(scene, rate, BLOCK_FRAMES)?;
    let nch = plan.channels;
    let mut mono = vec![0.0f32; BLOCK_FRAMES];
    let mut interleaved = vec![0.0f32; BLOCK_FRAMES * nch];
    let mut done = 0u64;
    while done < frames {
        let n = (frames - done).min(BLOCK_FRAMES as u64) as usize;
        sources.read_block(n)?;
        for (t, feed) in feeds.iter().enumerate() {
            match *feed {
                dbmd::Track::Object(i) => sources.object(i, &mut mono[..n]),
                dbmd::Track::BedChannel(b, c) => {
                    sources.bed_channel(b, c, &mut mono[..n]);
                    if bed_factor[b] != 1.0 {
                        for x in &mut mono[..n] {
                            *x *= bed_factor[b];
                        }
                    }
                }
                dbmd::Track::Silent => mono[..n].fill(0.0),
            }
            for (f, &x) in mono[..n].iter().enumerate() {
                interleaved[f * nch + t] = x;
            }
        }
        writer.write(&interleaved[..n * nch])?;
        done += n as u64;
    }
    let path = writer.finish()?.commit()?;
    Ok(ExportReport {
        path,
        tracks: nch,
        frames,
        loudness,
        warnings,
    })
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn output_name(o: &OutputSpec) -> String {
    match o {
        OutputSpec::Speakers { layout, .. } => format!("output {}", layout.name),
        OutputSpec::Binaural { .. } => "binaural output".into(),
        OutputSpec::Stereo { .. } => "stereo output".into(),
    }
}
