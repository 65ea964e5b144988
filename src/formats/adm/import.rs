//! ADM → halo scene: objects, beds and their automation under the ITU-R BS.2127 timing rules.

use super::*;
use crate::scene::layout::Channel;
use crate::scene::mix::{
    ControlChange, Extent, ImportanceGain, ObjectControls, Snap, SwitchedControls,
};
use crate::spatial::direct_speakers::SpeakerBounds;
use crate::spatial::hoa::{HoaFormat, HoaNormalization};

pub(super) struct Finder<'d> {
    doc: &'d AdmDocument,
    /// Complementary objects not chosen: they and their children do not render.
    left_out: Vec<String>,
}

impl<'d> Finder<'d> {
    fn object(&self, id: &str) -> Option<&'d AudioObject> {
        self.doc.objects.iter().find(|o| o.id == id)
    }
    fn channel(&self, id: &str) -> Option<&'d ChannelFormat> {
        self.doc.channel_formats.iter().find(|c| c.id == id)
    }
    fn uid(&self, id: &str) -> Option<&'d TrackUid> {
        self.doc.track_uids.iter().find(|u| u.id == id)
    }

    /// A track of a Matrix channel that names its output channel (a decode or direct
    /// matrix whose result the track already carries, BS.2127 §7.1's "pre-applied" use)
    /// is that output channel: a DirectSpeakers channel of the output pack.
    fn through_matrix(&self, t: Track<'d>) -> Track<'d> {
        let output = t
            .channel
            .filter(|c| c.type_def == TypeDefinition::Matrix)
            .and_then(|c| c.blocks.first().and_then(|b| b.matrix_output_ref.clone()));
        match output {
            Some(out) => Track {
                file_channel: t.file_channel,
                channel: self.channel(&out),
                channel_id: out,
                pack_id: t.pack_id,
            },
            None => t,
        }
    }

    /// A group whose object refers to a decode or direct Matrix pack (BS.2076-2 §5.3.3)
    /// while its tracks carry the matrix's inputs (the encode pack's channels, the direct
    /// pack's input channels, or the input channels of the encode pack a decode pack
    /// follows): for each track, the output channels of the matrix it feeds, as
    /// DirectSpeakers tracks of the output pack on the same file channel, with the
    /// product of the coefficients on the way (BS.2127 §7.1). `None`: not such a group
    /// (rendered as usual; a pre-applied matrix is already its output channels). An
    /// empty list: the matrix uses what halo does not apply (warned).
    fn matrix_inputs(
        &self,
        group: &Group<'d>,
        warnings: &mut Vec<String>,
    ) -> Option<Vec<Vec<(Track<'d>, f64)>>> {
        let object = group.object?;
        let pack = object.pack_refs.iter().find_map(|r| {
            self.doc.pack_formats.iter().find(|p| {
                &p.id == r && p.type_def == TypeDefinition::Matrix && p.matrix_output_pack.is_some()
            })
        })?;
        let outputs: Vec<(String, &ChannelFormat)> = pack
            .channel_refs
            .iter()
            .filter_map(|m| self.channel(m))
            .filter_map(|cf| {
                let out = cf.blocks.first()?.matrix_output_ref.clone()?;
                Some((out, cf))
            })
            .collect();
        // Pre-applied: the tracks already carry the output channels.
        let pre_applied = group.tracks.iter().any(|t| {
            outputs.iter().any(|(o, _)| *o == t.channel_id)
                || pack.channel_refs.contains(&t.channel_id)
        });
        if pre_applied || outputs.is_empty() {
            return None;
        }
        let element = format!(
            "audioObject {} {:?}: Matrix audioPackFormat {}",
            group.id, group.name, pack.id
        );
        let mut unsupported: Vec<&'static str> = Vec::new();
        let mut steps = 0;
        let mut inputs = Vec::new();
        for t in &group.tracks {
            let mut feeds = Vec::new();
            for (out, cf) in &outputs {
                let g = self.matrix_gain(cf, &t.channel_id, 0, &mut steps, &mut unsupported);
                if g != 0.0 {
                    feeds.push((
                        Track {
                            file_channel: t.file_channel,
                            channel_id: out.clone(),
                            channel: self.channel(out),
                            pack_id: pack.matrix_output_pack.clone(),
                        },
                        g,
                    ));
                }
            }
            inputs.push(feeds);
        }
        if !unsupported.is_empty() {
            warnings.push(format!(
                "{element} uses {}, which halo does not apply: not rendered",
                unsupported.join(", ")
            ));
            return Some(Vec::new());
        }
        if inputs.iter().all(Vec::is_empty) {
            warnings.push(format!(
                "{element}: no coefficient of the matrix takes the object's tracks ({}): not \
                 rendered",
                group
                    .tracks
                    .iter()
                    .map(|t| t.channel_id.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        Some(inputs)
    }

    /// The gain from the channel `input` to the matrix channel `cf`: the sum over its
    /// coefficients of the coefficient's gain times the gain from `input` to the
    /// coefficient's input channel (itself, or a matrix channel followed further).
    fn matrix_gain(
        &self,
        cf: &ChannelFormat,
        input: &str,
        depth: usize,
        steps: &mut usize,
        unsupported: &mut Vec<&'static str>,
    ) -> f64 {
        if depth > MAX_MATRIX_DEPTH || *steps > MAX_MATRIX_STEPS {
            if !unsupported.contains(&"more coefficients than halo follows") {
                unsupported.push("more coefficients than halo follows");
            }
            return 0.0;
        }
        let Some(block) = cf.blocks.first() else {
            return 0.0;
        };
        let mut sum = 0.0;
        for c in &block.matrix {
            *steps += 1;
            let g = if c.input_ref == input {
                1.0
            } else {
                match self.channel(&c.input_ref) {
                    Some(next) if next.type_def == TypeDefinition::Matrix => {
                        self.matrix_gain(next, input, depth + 1, steps, unsupported)
                    }
                    _ => 0.0,
                }
            };
            if g == 0.0 {
                continue;
            }
            let mut flag = |what: &'static str| {
                if !unsupported.contains(&what) {
                    unsupported.push(what);
                }
            };
            if c.phase_deg.is_some_and(|p| p != 0.0) {
                flag("a coefficient phase");
            }
            if c.delay_ms.is_some_and(|d| d != 0.0) {
                flag("a coefficient delay");
            }
            if c.variable {
                flag("gainVar/phaseVar/delayVar");
            }
            sum += c.gain * g;
        }
        sum
    }

    /// The channel format a track UID (with its chna entry) refers to.
    fn channel_of(&self, uid: &str, entry: Option<&ChnaEntry>) -> Result<String, AdmError> {
        let element = format!("audioTrackUID {uid}");
        let via_track = |track: &str| -> Result<String, AdmError> {
            if track.starts_with("AC_") {
                return Ok(track.get(..11).unwrap_or(track).to_string());
            }
            let in_doc = self.doc.track_formats.iter().any(|t| t.id == track);
            if !in_doc {
                if let Some(c) = common_channel_of_track(track) {
                    return Ok(c);
                }
                if is_common_hoa(track) {
                    return Ok(format!("AC_{}", track.get(3..11).unwrap_or_default()));
                }
            }
            let tf = self
                .doc
                .track_formats
                .iter()
                .find(|t| t.id == track)
                .ok_or_else(|| AdmError::UnknownRef {
                    element: element.clone(),
                    reference: track.to_string(),
                    where_: " in the axml chunk".into(),
                })?;
            let sf_id = tf.stream_ref.as_deref().unwrap_or_default();
            if !self.doc.stream_formats.iter().any(|s| s.id == sf_id)
                && let Some(c) = common_channel_of_track(sf_id)
            {
                return Ok(c);
            }
            let sf = self
                .doc
                .stream_formats
                .iter()
                .find(|s| s.id == sf_id)
                .ok_or_else(|| AdmError::UnknownRef {
                    element: format!("audioTrackFormat {}", tf.id),
                    reference: sf_id.to_string(),
                    where_: " in the axml chunk".into(),
                })?;
            sf.channel_ref.clone().ok_or_else(|| {
                invalid(
                    format!("audioStreamFormat {}", sf.id),
                    "it names no audioChannelFormat",
                    "an audioChannelFormatIDRef (PCM streams)",
                )
            })
        };
        if let Some(u) = self.uid(uid) {
            if let Some(c) = &u.channel_format_ref {
                return Ok(c.clone());
            }
            if let Some(t) = &u.track_format_ref {
                return via_track(t);
            }
        }
        match entry {
            Some(e) => via_track(&e.track_ref),
            None => Err(invalid(
                element,
                "it names neither a track format nor a channel format",
                "audioTrackFormatIDRef or audioChannelFormatIDRef in the audioTrackUID, or a \
                 chna entry",
            )),
        }
    }
}

/// One halo source found in the ADM: a channel of the file with its channel format.
/// How many Matrix channels deep a coefficient chain is followed (encode then decode is 2).
const MAX_MATRIX_DEPTH: usize = 8;
/// How many coefficients one Matrix object may take in all (a bound on the work).
const MAX_MATRIX_STEPS: usize = 100_000;

pub(super) struct Track<'d> {
    file_channel: usize,
    channel_id: String,
    channel: Option<&'d ChannelFormat>,
    pack_id: Option<String>,
}

/// Converts an ADM document and its `chna` to a halo scene whose object and bed sources are
/// channels (0-based) of the ADM file itself. Returns the scene and the warnings (parts of
/// the ADM halo does not render, or renders differently).
/// Test, bench and fuzz support (halo's own reader goes through [`to_scene_choosing`]).
#[cfg(feature = "internals")]
pub fn to_scene(
    doc: &AdmDocument,
    chna: &Chna,
    audio: &AdmAudio,
) -> Result<(Scene, Vec<String>), AdmError> {
    to_scene_choosing(doc, chna, audio, None, &[])
}

/// The programme to render: the one whose `audioProgrammeID` or `audioProgrammeName` is
/// `wanted`, or the first (`None`; also `None` when the file has no programme at all).
pub fn select_programme<'a>(
    doc: &'a AdmDocument,
    wanted: Option<&str>,
) -> Result<Option<&'a Programme>, AdmError> {
    let Some(wanted) = wanted else {
        return Ok(doc.programmes.first());
    };
    doc.programmes
        .iter()
        .find(|p| p.id == wanted)
        .or_else(|| doc.programmes.iter().find(|p| p.name == wanted))
        .map(Some)
        .ok_or_else(|| AdmError::UnknownProgramme {
            asked: wanted.to_string(),
            available: if doc.programmes.is_empty() {
                "none: the file has no audioProgramme".into()
            } else {
                doc.programmes
                    .iter()
                    .map(|p| format!("{} {:?}", p.id, p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// Converts one programme (see [`select_programme`]) to a scene, as `to_scene` does, with
/// the complementary objects chosen: of each complementary group
/// (BS.2076-2), the object named in `complementary`, or the group's leader, renders; the
/// others do not.
pub fn to_scene_choosing(
    doc: &AdmDocument,
    chna: &Chna,
    audio: &AdmAudio,
    programme: Option<&str>,
    complementary: &[String],
) -> Result<(Scene, Vec<String>), AdmError> {
    let chosen = select_programme(doc, programme)?;
    let mut warnings = doc.warnings.clone();
    let f = Finder {
        doc,
        left_out: left_out_complementary(doc, complementary, &mut warnings)?,
    };
    check_audio(chna, audio)?;
    let (roots, duration_frames) = roots_of(doc, chosen, audio.sample_rate, &mut warnings);
    let leaves = leaves_of(&f, &roots)?;
    let groups = groups_of(&f, chna, &leaves)?;

    let mut out = Built {
        halo_written: doc.halo_written,
        ..Built::default()
    };
    for group in &groups {
        match f.matrix_inputs(group, &mut warnings) {
            Some(inputs) => out.add_matrix(group, &inputs, audio, &mut warnings)?,
            None => out.add_group(group, audio, &mut warnings)?,
        }
    }
    std::mem::take(&mut out.fixes).into_warnings(&mut warnings);
    if out.objects.is_empty() && out.beds.is_empty() {
        return Err(AdmError::Nothing(format!(
            "no Objects or DirectSpeakers channel to render (found {} objects, {} channel \
             formats, {} chna entries){}",
            doc.objects.len(),
            doc.channel_formats.len(),
            chna.entries.len(),
            if warnings.is_empty() {
                String::new()
            } else {
                format!("; {}", warnings.join("; "))
            }
        )));
    }
    let mut scene = Scene {
        sample_rate: audio.sample_rate,
        duration_frames,
        objects: out.objects,
        beds: out.beds,
        outputs: Vec::new(),
        origin: audio.path.clone(),
    };
    // The rendered programme's reference screen, for its screenRef objects.
    scene.set_reference_screen(chosen.and_then(|p| p.reference_screen));
    Ok((scene, warnings))
}

/// The complementary objects that do not render: in each group, all but the one asked for
/// (or the leader); one warning line per group. Asking for an object that is in no group is
/// an error.
fn left_out_complementary(
    doc: &AdmDocument,
    asked: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, AdmError> {
    let mut left_out = Vec::new();
    for a in asked {
        let known = doc
            .complementary
            .iter()
            .any(|(leader, alts)| leader == a || alts.contains(a));
        if !known {
            return Err(invalid(
                format!("--complementary {a}"),
                "it is not in a complementary object group of the file",
                &if doc.complementary.is_empty() {
                    "none: the file has no complementary objects".to_string()
                } else {
                    doc.complementary
                        .iter()
                        .map(|(l, alts)| format!("{l} {}", alts.join(" ")))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ));
        }
    }
    for (leader, alts) in &doc.complementary {
        let group: Vec<&String> = std::iter::once(leader).chain(alts).collect();
        let chosen = group
            .iter()
            .find(|g| asked.contains(g))
            .copied()
            .unwrap_or(leader);
        warnings.push(format!(
            "complementary objects {}: rendering {chosen} only (choose another with \
             --complementary ID)",
            group
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        left_out.extend(group.into_iter().filter(|g| *g != chosen).cloned());
    }
    Ok(left_out)
}

/// The audio description is usable and every chna entry names one of its tracks.
fn check_audio(chna: &Chna, audio: &AdmAudio) -> Result<(), AdmError> {
    if audio.sample_rate == 0 {
        return Err(invalid(
            "audio",
            "the sample rate is 0 Hz",
            "a sample rate above 0",
        ));
    }
    for e in &chna.entries {
        if usize::from(e.track_index) > audio.channels {
            return Err(AdmError::Chna {
                problem: format!(
                    "{} is on track {}, but the file has {} channels",
                    e.uid, e.track_index, audio.channels
                ),
                allowed: format!("track indices from 1 to {}", audio.channels),
            });
        }
    }
    Ok(())
}

/// Which objects to render: the chosen programme's, or all contents', or every top-level
/// object; with the programme's duration in frames when it has a start and an end.
fn roots_of<'d>(
    doc: &'d AdmDocument,
    chosen: Option<&'d Programme>,
    rate: u32,
    warnings: &mut Vec<String>,
) -> (Vec<&'d str>, Option<u64>) {
    let mut roots: Vec<&str> = Vec::new();
    let mut duration_frames = None;
    if let Some(p) = chosen {
        if doc.programmes.len() > 1 {
            warnings.push(format!(
                "{} audioProgrammes: rendering {} {:?}; not rendered: {} (choose one by its ID or name)",
                doc.programmes.len(),
                p.id,
                p.name,
                doc.programmes
                    .iter()
                    .filter(|q| q.id != p.id)
                    .map(|q| format!("{} {:?}", q.id, q.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let (Some(s), Some(e)) = (p.start, p.end) {
            let (s, e) = (s.to_frames(rate), e.to_frames(rate));
            if e > s {
                duration_frames = Some(e - s);
            }
        }
        for c in &p.content_refs {
            if let Some(content) = doc.contents.iter().find(|x| &x.id == c) {
                roots.extend(content.object_refs.iter().map(String::as_str));
            }
        }
    } else if !doc.contents.is_empty() {
        for content in &doc.contents {
            roots.extend(content.object_refs.iter().map(String::as_str));
        }
    } else {
        roots = doc
            .objects
            .iter()
            .filter(|o| !doc.objects.iter().any(|p| p.object_refs.contains(&o.id)))
            .map(|o| o.id.as_str())
            .collect();
    }
    (roots, duration_frames)
}

/// A leaf object (one with tracks) with the gain and mute accumulated down its nesting.
struct Leaf<'d> {
    object: &'d AudioObject,
    gain: f64,
    mute: bool,
}

/// The leaf objects under the roots, each root followed once.
fn leaves_of<'d>(f: &Finder<'d>, roots: &[&str]) -> Result<Vec<Leaf<'d>>, AdmError> {
    let mut leaves = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for &r in roots {
        if seen.contains(&r) {
            continue;
        }
        seen.push(r);
        walk(f, r, 0.0, false, 0, &mut Vec::new(), &mut leaves)?;
    }
    Ok(leaves)
}

fn walk<'d>(
    f: &Finder<'d>,
    id: &str,
    gain: f64,
    mute: bool,
    depth: usize,
    path: &mut Vec<String>,
    leaves: &mut Vec<Leaf<'d>>,
) -> Result<(), AdmError> {
    if depth > MAX_OBJECT_NESTING || path.iter().any(|p| p == id) {
        return Err(invalid(
            format!("audioObject {id}"),
            format!(
                "the audioObjectIDRef chain {} loops or nests too deep",
                path.join(" → ")
            ),
            &format!("nested objects without loops, at most {MAX_OBJECT_NESTING} deep"),
        ));
    }
    let Some(o) = f.object(id) else {
        return Err(AdmError::UnknownRef {
            element: path
                .last()
                .map_or("audioContent".into(), |p| format!("audioObject {p}")),
            reference: id.to_string(),
            where_: " in the axml chunk".into(),
        });
    };
    if f.left_out.iter().any(|l| l == id) {
        return Ok(());
    }
    let own_db = o.gain_db.unwrap_or_else(|| lin_to_db(o.gain));
    let (g, m) = (gain + own_db, mute || o.mute);
    if !o.track_uid_refs.is_empty() {
        leaves.push(Leaf {
            object: o,
            gain: g,
            mute: m,
        });
    }
    path.push(id.to_string());
    for child in &o.object_refs {
        walk(f, child, g, m, depth + 1, path, leaves)?;
    }
    path.pop();
    Ok(())
}

/// The tracks of one object (or, in a chna-only file, of one pack) with the object's
/// accumulated gain and mute.
struct Group<'d> {
    id: String,
    name: String,
    tracks: Vec<Track<'d>>,
    gain_db: f64,
    mute: bool,
    object: Option<&'d AudioObject>,
}

/// One group per leaf object; without objects, one per pack named in the chna.
fn groups_of<'d>(
    f: &Finder<'d>,
    chna: &Chna,
    leaves: &[Leaf<'d>],
) -> Result<Vec<Group<'d>>, AdmError> {
    let mut groups: Vec<Group> = Vec::new();
    if leaves.is_empty() && f.doc.objects.is_empty() {
        // No objects: the chna alone says which pack and channel each track carries.
        for e in &chna.entries {
            let channel_id = f.channel_of(&e.uid, Some(e))?;
            let track = Track {
                file_channel: usize::from(e.track_index) - 1,
                channel: f.channel(&channel_id),
                channel_id,
                pack_id: Some(e.pack_ref.clone()).filter(|p| !p.is_empty()),
            };
            let track = f.through_matrix(track);
            let key = track.pack_id.clone().unwrap_or_default();
            match groups.iter_mut().find(|g| g.id == key) {
                Some(g) => g.tracks.push(track),
                None => groups.push(Group {
                    id: key.clone(),
                    name: key,
                    tracks: vec![track],
                    gain_db: 0.0,
                    mute: false,
                    object: None,
                }),
            }
        }
    }
    for leaf in leaves {
        let o = leaf.object;
        let mut tracks = Vec::new();
        for uid in &o.track_uid_refs {
            let entry = chna.entries.iter().find(|e| &e.uid == uid).ok_or_else(|| {
                AdmError::UnknownRef {
                    element: format!("audioObject {}", o.id),
                    reference: uid.clone(),
                    where_: " in the chna chunk (the track that carries it is unknown)".into(),
                }
            })?;
            let channel_id = f.channel_of(uid, Some(entry))?;
            let pack_id = f
                .uid(uid)
                .and_then(|u| u.pack_ref.clone())
                .or_else(|| Some(entry.pack_ref.clone()).filter(|p| !p.is_empty()))
                .or_else(|| o.pack_refs.first().cloned());
            tracks.push(f.through_matrix(Track {
                file_channel: usize::from(entry.track_index) - 1,
                channel: f.channel(&channel_id),
                channel_id,
                pack_id,
            }));
        }
        groups.push(Group {
            id: o.id.clone(),
            name: o.name.clone(),
            tracks,
            gain_db: leaf.gain,
            mute: leaf.mute,
            object: Some(o),
        });
    }
    Ok(groups)
}

/// The scene's objects and beds as they are built, with unique names.
#[derive(Default)]
struct Built {
    /// The document is halo's own (see [`AdmDocument::halo_written`]).
    halo_written: bool,
    fixes: TimingFixes,
    objects: Vec<ObjectSpec>,
    beds: Vec<BedSpec>,
    names: Vec<String>,
}

impl Built {
    /// `base` (or `id` when blank), with " (2)", " (3)", … added until no other source has
    /// the name.
    fn unique(&mut self, base: &str, id: &str) -> String {
        let base = if base.trim().is_empty() { id } else { base };
        let mut name = base.to_string();
        let mut k = 2;
        while self.names.contains(&name) {
            name = format!("{base} ({k})");
            k += 1;
        }
        self.names.push(name.clone());
        name
    }

    /// A Matrix group (see [`Finder::matrix_inputs`]): each input track becomes a bed of the
    /// output channels it feeds, each channel with its matrix gain, rendered as
    /// DirectSpeakers (BS.2127 §8).
    fn add_matrix(
        &mut self,
        group: &Group,
        inputs: &[Vec<(Track, f64)>],
        audio: &AdmAudio,
        warnings: &mut Vec<String>,
    ) -> Result<(), AdmError> {
        for (t, feeds) in group.tracks.iter().zip(inputs) {
            if feeds.is_empty() {
                continue;
            }
            let name = format!("{} {}", group.name, t.channel_id);
            let g = Group {
                id: group.id.clone(),
                name,
                tracks: Vec::new(),
                gain_db: group.gain_db,
                mute: group.mute,
                object: group.object,
            };
            let tracks: Vec<&Track> = feeds.iter().map(|f| &f.0).collect();
            let gains: Vec<f64> = feeds.iter().map(|f| f.1).collect();
            self.add_speakers(&g, &tracks, Some(&gains), audio, warnings)?;
        }
        Ok(())
    }

    /// Adds a group's Objects channels as objects and its DirectSpeakers channels as a bed.
    fn add_group(
        &mut self,
        group: &Group,
        audio: &AdmAudio,
        warnings: &mut Vec<String>,
    ) -> Result<(), AdmError> {
        let (speakers, others): (Vec<&Track>, Vec<&Track>) = group.tracks.iter().partition(|t| {
            t.channel.map_or_else(
                || common_channel(&t.channel_id).is_some(),
                |c| c.type_def == TypeDefinition::DirectSpeakers,
            )
        });
        let (hoa, others): (Vec<&Track>, Vec<&Track>) = others.into_iter().partition(|t| {
            t.channel.map_or_else(
                || is_common_hoa(&t.channel_id),
                |c| c.type_def == TypeDefinition::Hoa,
            )
        });
        if !hoa.is_empty() {
            self.add_hoa(group, &hoa, audio)?;
        }
        for t in others {
            self.add_object(group, t, audio, warnings)?;
        }
        // A DirectSpeakers channel whose blocks leave part of the file silent (BS.2127
        // timing) becomes an object at its speaker's position, which can fall silent.
        let span = object_span(group.object, audio.sample_rate);
        let mut speakers = speakers;
        let mut timed = Vec::new();
        speakers.retain(|t| {
            let active = t.channel.map_or_else(Vec::new, |cf| {
                active_intervals(&block_spans(
                    cf,
                    span.0,
                    span.1,
                    audio.sample_rate,
                    &mut TimingFixes::default(),
                ))
            });
            let keep = t.channel.is_none() || !silences_any(&active, audio.frames);
            if !keep {
                timed.push((*t, active));
            }
            keep
        });
        for (t, active) in timed {
            if !self.add_timed_speaker(group, t, &active, audio, warnings)? {
                speakers.push(t);
            }
        }
        if !speakers.is_empty() {
            self.add_speakers(group, &speakers, None, audio, warnings)?;
        }
        Ok(())
    }

    /// An Objects channel becomes a halo object; other types are reported.
    fn add_object(
        &mut self,
        group: &Group,
        t: &Track,
        audio: &AdmAudio,
        warnings: &mut Vec<String>,
    ) -> Result<(), AdmError> {
        let (id, name) = (&group.id, &group.name);
        let Some(cf) = t.channel else {
            if is_common_hoa(&t.channel_id) {
                warnings.push(format!(
                    "audioObject {id} {name:?}: track {} ({}, a BS.2094 HOA common definition) \
                     is HOA content, not rendered",
                    t.file_channel + 1,
                    t.channel_id
                ));
                return Ok(());
            }
            return Err(AdmError::UnknownRef {
                element: format!("audioObject {id}"),
                reference: t.channel_id.clone(),
                where_: " in the axml chunk".into(),
            });
        };
        if cf.type_def != TypeDefinition::Objects {
            warnings.push(format!(
                "audioObject {id} {name:?}: track {} ({} {}) is {} content, not rendered",
                t.file_channel + 1,
                cf.id,
                cf.name,
                cf.type_def.name()
            ));
            return Ok(());
        }
        let base = if group.tracks.len() > 1 {
            format!(
                "{name} {}",
                if cf.name.is_empty() { &cf.id } else { &cf.name }
            )
        } else {
            name.clone()
        };
        let obj = object_from_channel(
            cf,
            object_span(group.object, audio.sample_rate),
            group.gain_db,
            audio,
            t.file_channel,
            &mut self.fixes,
        )?;
        let binaural = group.object.and_then(|o| o.halo_binaural).unwrap_or(
            if cf.blocks.iter().any(|b| b.headphone_bypass) {
                BinauralMode::Off
            } else if let Some(drr) = cf.blocks.iter().find_map(|b| b.headphone_drr_db) {
                match crate::spatial::binaural::Distance::nearest_to_drr(drr) {
                    crate::spatial::binaural::Distance::Near => BinauralMode::Near,
                    crate::spatial::binaural::Distance::Far => BinauralMode::Far,
                    _ => BinauralMode::Mid,
                }
            } else {
                BinauralMode::Mid
            },
        );
        let name = self.unique(&base, id);
        let mut controls = obj.controls.clone();
        controls.importance = group.object.and_then(|o| o.importance).unwrap_or(10);
        self.objects.push(ObjectSpec {
            name,
            binaural,
            mute: group.mute,
            controls,
            ..obj
        });
        Ok(())
    }

    /// HOA channels (BS.2127 §9): one bed carrying the HOA signal, decoded to each output.
    fn add_hoa(
        &mut self,
        group: &Group,
        tracks: &[&Track],
        audio: &AdmAudio,
    ) -> Result<(), AdmError> {
        let (id, name) = (&group.id, &group.name);
        let element = format!("audioObject {id} {name:?}");
        let mut channels = Vec::with_capacity(tracks.len());
        let mut normalization: Option<HoaNormalization> = None;
        for t in tracks {
            let (n, m, norm) = hoa_component(t)?;
            match normalization {
                Some(first) if first != norm => {
                    return Err(invalid(
                        &element,
                        format!(
                            "HOA channel {} is {norm:?}, the others {first:?}",
                            t.channel_id
                        ),
                        "one normalization (N3D, SN3D or FuMa) for all channels of an HOA pack",
                    ));
                }
                _ => normalization = Some(norm),
            }
            channels.push((n, m));
        }
        let format = HoaFormat {
            channels,
            normalization: normalization.unwrap_or(HoaNormalization::SN3D),
        };
        crate::spatial::hoa::check(&format)
            .map_err(|e| invalid(&element, e.to_string(), "HOA orders 0…10"))?;
        // BS.2127: silent outside the audioObject's start and duration.
        let span = object_span(group.object, audio.sample_rate);
        let active_frames = (span != (0, u64::MAX)).then_some(span);
        let order = format.channels.iter().map(|c| c.0).max().unwrap_or(0);
        let layout = Layout {
            name: format!("HOA order {order} {:?}", format.normalization),
            aliases: Vec::new(),
            channels: format
                .channels
                .iter()
                .map(|&(n, m)| {
                    let acn = crate::spatial::hoa::acn(n, m);
                    Channel {
                        label: format!("ACN{acn}"),
                        name: format!("ACN{acn}"),
                        azimuth_deg: 0.0,
                        elevation_deg: 0.0,
                        lfe: false,
                        distance_m: None,
                        wav_bit: None,
                    }
                })
                .collect(),
        };
        let name = self.unique(name, id);
        self.beds.push(BedSpec {
            binaural: None,
            hoa: Some(format),
            active_frames,
            name,
            source: audio.path.clone(),
            layout,
            gain_db: group.gain_db,
            mute: group.mute,
            channels: Some(tracks.iter().map(|t| t.file_channel).collect()),
            speaker_bounds: Vec::new(),
            channel_gains: Vec::new(),
        });
        Ok(())
    }

    /// A DirectSpeakers channel active only part of the time: an object at the speaker's
    /// position, silent outside the `active` intervals. An LFE is left to the bed
    /// (`false`): it is rendered for the whole file, with a warning.
    fn add_timed_speaker(
        &mut self,
        group: &Group,
        t: &Track,
        active: &[(u64, u64)],
        audio: &AdmAudio,
        warnings: &mut Vec<String>,
    ) -> Result<bool, AdmError> {
        let (id, name) = (&group.id, &group.name);
        let element = format!("audioObject {id} {name:?}");
        let label = speaker_label(t, &element)?;
        if is_lfe(t, &label) {
            warnings.push(format!(
                "{element}: the LFE channel {} has block timing; halo renders it for the whole \
                 file",
                t.channel_id
            ));
            return Ok(false);
        }
        let bs2051 = short_name_alias(&label).unwrap_or(&label).to_string();
        let keys = silence_outside(
            vec![Keyframe {
                frame: 0,
                value: group.gain_db,
                interpolation: Interpolation::Step,
            }],
            active,
        );
        let gain_db = Automation::new(keys).map_err(|e| {
            invalid(
                &element,
                format!("block timing: {e}"),
                "blocks in time order",
            )
        })?;
        let base = if group.tracks.len() > 1 {
            format!("{name} {label}")
        } else {
            name.clone()
        };
        let name = self.unique(&base, id);
        self.objects.push(ObjectSpec {
            name,
            source: SourceSpec {
                path: audio.path.clone(),
                channel: Some(t.file_channel),
            },
            gain_db,
            mute: group.mute,
            position: Automation::constant(speaker_position(t, &bs2051)),
            size: Automation::constant(0.0),
            binaural: BinauralMode::Mid,
            controls: Default::default(),
        });
        Ok(true)
    }

    /// DirectSpeakers channels: a bed when their labels make a built-in layout, point
    /// objects at the speakers' positions otherwise.
    fn add_speakers(
        &mut self,
        group: &Group,
        speakers: &[&Track],
        gains: Option<&[f64]>,
        audio: &AdmAudio,
        warnings: &mut Vec<String>,
    ) -> Result<(), AdmError> {
        let (id, name) = (&group.id, &group.name);
        let element = format!("audioObject {id} {name:?}");
        let mut labels = Vec::new();
        for t in speakers {
            labels.push(speaker_label(t, &element)?);
        }
        if let Some((mut layout, order)) = match_layout(&labels) {
            let channels = order.iter().map(|&i| speakers[i].file_channel).collect();
            // BS.2127 §8's mapping rules hold for the ITU packs of the common
            // definitions only: another pack's speakers go by label, or are panned.
            let common_pack = speakers[0]
                .pack_id
                .as_deref()
                .is_some_and(is_common_itu_pack);
            if !common_pack && !self.halo_written {
                layout.name = format!("ADM {}", speakers[0].pack_id.as_deref().unwrap_or(id));
                layout.aliases.clear();
            }
            let name = self.unique(name, id);
            self.beds.push(BedSpec {
                binaural: None,
                hoa: None,
                active_frames: None,
                name,
                source: audio.path.clone(),
                layout,
                gain_db: group.gain_db,
                mute: group.mute,
                channels: Some(channels),
                speaker_bounds: order.iter().map(|&i| speaker_bounds(speakers[i])).collect(),
                channel_gains: gains
                    .map_or_else(Vec::new, |g| order.iter().map(|&i| g[i]).collect()),
            });
            return Ok(());
        }
        // Not a built-in layout: a bed of the pack's own speakers. The engine routes each
        // channel to the output speaker of the same name, pans one the output lacks at its
        // position, and sends LFE channels to the LFE (BS.2127 §8).
        warnings.push(format!(
            "{element}: the speakers {} are not a built-in layout; each channel goes to the \
             output speaker of its name, or is panned at its position; LFE to LFE",
            labels.join(" ")
        ));
        let channels = speakers
            .iter()
            .zip(&labels)
            .map(|(t, label)| speaker_channel(t, label))
            .collect();
        let name = self.unique(name, id);
        self.beds.push(BedSpec {
            binaural: None,
            hoa: None,
            active_frames: None,
            name,
            source: audio.path.clone(),
            layout: Layout {
                name: format!("ADM {id}"),
                aliases: Vec::new(),
                channels,
            },
            gain_db: group.gain_db,
            mute: group.mute,
            channels: Some(speakers.iter().map(|t| t.file_channel).collect()),
            speaker_bounds: speakers.iter().map(|t| speaker_bounds(t)).collect(),
            channel_gains: gains.map_or_else(Vec::new, <[f64]>::to_vec),
        });
        Ok(())
    }
}

/// The order, degree and normalization of an HOA track: from its channel format's block,
/// or from a BS.2094 common definition `AC_0004ggcc` (group `gg`: 00 SN3D, 01 N3D,
/// 02 FuMa; `cc` − 1 is the ACN), the rule of BS.2094-1's HOA table.
pub(super) fn hoa_component(t: &Track) -> Result<(u32, i32, HoaNormalization), AdmError> {
    let element = format!("audioChannelFormat {}", t.channel_id);
    if let Some(cf) = t.channel {
        let b = cf.blocks.first();
        let (Some(n), Some(m)) = (b.and_then(|b| b.hoa_order), b.and_then(|b| b.hoa_degree)) else {
            return Err(invalid(
                element,
                "the HOA channel has no order or degree",
                "<order> and <degree> in its audioBlockFormat",
            ));
        };
        let norm = match b.and_then(|b| b.hoa_normalization.as_deref()) {
            None => HoaNormalization::SN3D,
            Some(s) => HoaNormalization::parse(s).ok_or_else(|| {
                invalid(
                    &element,
                    format!("normalization {s:?} is not known"),
                    "N3D, SN3D or FuMa",
                )
            })?,
        };
        return Ok((n, m, norm));
    }
    let id = &t.channel_id;
    let hex = |r: std::ops::Range<usize>| id.get(r).and_then(|h| u32::from_str_radix(h, 16).ok());
    let (Some(group), Some(index)) = (hex(7..9), hex(9..11)) else {
        return Err(invalid(element, "not a BS.2094 HOA channel", "AC_0004ggcc"));
    };
    let norm = match group {
        0 => HoaNormalization::SN3D,
        1 => HoaNormalization::N3D,
        2 => HoaNormalization::FuMa,
        _ => {
            return Err(invalid(
                element,
                "not a BS.2094 HOA channel",
                "AC_000400cc (SN3D), AC_000401cc (N3D), AC_000402cc (FuMa)",
            ));
        }
    };
    let max_acn = if norm == HoaNormalization::FuMa {
        16
    } else {
        121
    };
    if index == 0 || index > max_acn {
        return Err(invalid(
            element,
            "not a BS.2094 HOA channel",
            "channel numbers 01…79 (hex; 01…10 for FuMa)",
        ));
    }
    let (n, m) = crate::spatial::hoa::from_acn(index as usize - 1);
    Ok((n, m, norm))
}

/// Whether a pack is one of the ITU-R BS.2051 system packs of the BS.2094 common
/// definitions (`AP_000100xx`), whose channels BS.2127 §8 maps by its rules.
pub(super) fn is_common_itu_pack(id: &str) -> bool {
    const ITU_PACKS: [&str; 12] = [
        "01", "02", "0c", "03", "04", "05", "10", "07", "08", "09", "0f", "17",
    ];
    id.len() == 11
        && id.to_ascii_lowercase().starts_with("ap_000100")
        && ITU_PACKS.contains(&id[9..11].to_ascii_lowercase().as_str())
}

/// Whether a DirectSpeakers channel is an LFE (BS.2127 §8.2): its label names one (`LFE`,
/// `LFE1`, `LFE2`, `LFEL`, `LFER`, `LFE+045`, `LFE-045`, Dolby `RC_LFE`, …) or its
/// `frequency lowPass` is at most 200 Hz.
pub(super) fn is_lfe(t: &Track, label: &str) -> bool {
    label.to_ascii_uppercase().starts_with("LFE")
        || t.channel
            .and_then(|c| c.low_pass_hz)
            .is_some_and(|hz| hz <= 200.0)
}

/// A layout channel for a DirectSpeakers track: labelled as the built-in speaker of the
/// same BS.2051 name (so the engine routes it there), at its block's or name's position.
pub(super) fn speaker_channel(t: &Track, label: &str) -> Channel {
    let bs2051 = short_name_alias(label).unwrap_or(label).to_string();
    let known = Layout::builtins()
        .into_iter()
        .flat_map(|l| l.channels)
        .find(|c| c.name == bs2051 || c.label == bs2051);
    let (azimuth_deg, elevation_deg) = match speaker_position(t, &bs2051) {
        Position::Polar {
            azimuth_deg,
            elevation_deg,
            ..
        } => (azimuth_deg, elevation_deg),
        Position::Cartesian { x, y, z } => {
            ((-x).atan2(y).to_degrees(), z.atan2(x.hypot(y)).to_degrees())
        }
    };
    Channel {
        label: known
            .as_ref()
            .map_or_else(|| bs2051.clone(), |c| c.label.clone()),
        name: known.map_or(bs2051, |c| c.name),
        azimuth_deg,
        elevation_deg,
        lfe: is_lfe(t, label),
        distance_m: None,
        wav_bit: None,
    }
}

pub(super) fn lin_to_db(g: f64) -> f64 {
    if g <= 0.0 {
        SILENT_GAIN_DB
    } else {
        (20.0 * g.log10()).max(SILENT_GAIN_DB)
    }
}

pub(super) fn block_gain_db(b: &BlockFormat) -> f64 {
    b.gain_db.unwrap_or_else(|| lin_to_db(b.gain))
}

pub(super) fn block_size(b: &BlockFormat) -> f64 {
    let s = match b.position {
        Some(BlockPosition::Cartesian { .. }) => b.width.max(b.height).max(b.depth),
        _ => b.width.max(b.height) / 360.0,
    };
    s.clamp(0.0, 1.0)
}

pub(super) fn block_position(b: &BlockFormat) -> Option<Position> {
    b.position.map(|p| match p {
        BlockPosition::Polar {
            azimuth,
            elevation,
            distance,
        } => Position::Polar {
            azimuth_deg: azimuth,
            elevation_deg: elevation,
            distance,
        },
        BlockPosition::Cartesian { x, y, z } => Position::Cartesian { x, y, z },
    })
}

/// The three parameters of a block, as halo values.
#[derive(Clone, Copy)]
pub(super) struct Values {
    position: Position,
    gain_db: f64,
    size: f64,
    extent: Extent,
    diffuse: f64,
    divergence: f64,
}

pub(super) fn object_from_channel(
    cf: &ChannelFormat,
    (start, object_end): (u64, u64),
    object_gain_db: f64,
    audio: &AdmAudio,
    file_channel: usize,
    fixes: &mut TimingFixes,
) -> Result<ObjectSpec, AdmError> {
    let rate = audio.sample_rate;
    let element = format!("audioChannelFormat {}", cf.id);
    if cf.blocks.is_empty() {
        return Err(invalid(
            &element,
            "the Objects channel has no audioBlockFormat",
            "at least one audioBlockFormat with a position",
        ));
    }
    let mut cartesian = None;
    let mut values = Vec::with_capacity(cf.blocks.len());
    for b in &cf.blocks {
        let Some(p) = block_position(b) else {
            return Err(invalid(
                format!("audioBlockFormat {}", b.id),
                "the block has no position",
                "a position on every Objects block",
            ));
        };
        let is_cart = matches!(p, Position::Cartesian { .. });
        if *cartesian.get_or_insert(is_cart) != is_cart {
            return Err(invalid(
                format!("audioBlockFormat {}", b.id),
                "the block's coordinates (polar or Cartesian) differ from the first block's",
                "the same kind of coordinates in every block of a channel",
            ));
        }
        values.push(Values {
            position: p,
            gain_db: block_gain_db(b) + object_gain_db,
            size: block_size(b),
            extent: Extent {
                width: b.width,
                height: b.height,
                depth: b.depth,
            },
            diffuse: b.controls.diffuse,
            divergence: b.controls.divergence,
        });
    }

    let spans = block_spans(cf, start, object_end, rate, fixes);

    let marked = cf.blocks.iter().all(|b| b.halo_keys.is_some());
    // Block importance (BS.2127 / EAR `MetadataSourceImportanceFilter`): with a threshold
    // above a block's importance the block's gain is 0. One gain lane per importance
    // level below 10, each built from the blocks with those gains by the very steps the
    // object's own lane takes below, so it is the lane of a document with gain 0 written
    // in those blocks.
    let mut levels: Vec<u8> = cf
        .blocks
        .iter()
        .filter_map(|b| b.controls.importance)
        .filter(|&i| i < 10)
        .collect();
    levels.sort_unstable();
    levels.dedup();
    let muted_values: Vec<(u8, Vec<Values>)> = levels
        .iter()
        .map(|&level| {
            let muted = values
                .iter()
                .zip(&cf.blocks)
                .map(|(v, b)| {
                    if b.controls.importance.is_some_and(|i| i <= level) {
                        Values {
                            gain_db: lin_to_db(0.0) + object_gain_db,
                            ..*v
                        }
                    } else {
                        *v
                    }
                })
                .collect();
            (level + 1, muted)
        })
        .collect();
    let mut importance_gains = Vec::with_capacity(muted_values.len());
    for (from, muted) in &muted_values {
        let mut gain = if marked {
            marked_keys(cf, muted, &spans)?.1
        } else {
            standard_keys(muted, &spans, |v| v.gain_db)
        };
        let active = active_intervals(&spans);
        if silences_any(&active, audio.frames) {
            gain = silence_outside(gain, &active);
        }
        importance_gains.push(ImportanceGain {
            from: *from,
            gain_db: simplify(build(gain, &element, "gain")?),
        });
    }
    let (pos, mut gain, size) = if marked {
        marked_keys(cf, &values, &spans)?
    } else {
        (
            standard_keys(&values, &spans, |v| v.position),
            standard_keys(&values, &spans, |v| v.gain_db),
            standard_keys(&values, &spans, |v| v.size),
        )
    };
    // BS.2127: the object is silent where none of its blocks is active (before the first,
    // after the last, in gaps, outside the audioObject's start and duration).
    let active = active_intervals(&spans);
    let (mut pos, mut size) = (pos, size);
    if silences_any(&active, audio.frames) {
        gain = silence_outside(gain, &active);
        let ends: Vec<u64> = active.iter().map(|a| a.1).collect();
        end_ramps_before(&mut pos, &ends);
        end_ramps_before(&mut size, &ends);
    }
    fn build<T: crate::scene::automation::Interpolate>(
        keys: Vec<Keyframe<T>>,
        element: &str,
        what: &str,
    ) -> Result<Automation<T>, AdmError> {
        Automation::new(keys)
            .map_err(|e| invalid(element, format!("{what}: {e}"), "blocks in time order"))
    }
    // The BS.2127 controls: keyframed ones under the same timing rules; the switched ones
    // (snap, zones, screen, divergence range) a step lane of the blocks' own.
    let (first, changes) = switched_lane(cf, &spans, &element)?;
    // An extent that `size` already says (Cartesian width = height = depth = size; polar
    // width = height = 360° × size, depth 0) stays implicit.
    let has_extent = values.iter().any(|v| {
        let s = v.size;
        let implied = if matches!(v.position, Position::Cartesian { .. }) {
            Extent {
                width: s,
                height: s,
                depth: s,
            }
        } else {
            Extent {
                width: 360.0 * s,
                height: 360.0 * s,
                depth: 0.0,
            }
        };
        let e = v.extent;
        (e.width - implied.width).abs() > 1e-9
            || (e.height - implied.height).abs() > 1e-9
            || (e.depth - implied.depth).abs() > 1e-9
    });
    let controls = ObjectControls {
        extent: if has_extent {
            Some(simplify(build(
                standard_keys(&values, &spans, |v| v.extent),
                &element,
                "extent",
            )?))
        } else {
            None
        },
        diffuse: simplify(build(
            standard_keys(&values, &spans, |v| v.diffuse),
            &element,
            "diffuse",
        )?),
        divergence: simplify(build(
            standard_keys(&values, &spans, |v| v.divergence),
            &element,
            "objectDivergence",
        )?),
        divergence_range: first.divergence_range,
        snap: first.snap,
        zones: first.zones,
        screen_ref: first.screen_ref,
        screen_edge_lock: first.screen_edge_lock,
        changes,
        importance: 10,
        block_importance: importance_gains,
        reference_screen: None,
        // Masters halo wrote (halo:keys) keep halo's position interpolation.
        interpolate_gains: !marked,
    };
    Ok(ObjectSpec {
        name: String::new(),
        source: SourceSpec {
            path: audio.path.clone(),
            channel: Some(file_channel),
        },
        gain_db: simplify(build(gain, &element, "gain")?),
        mute: false,
        position: simplify(build(pos, &element, "position")?),
        size: simplify(build(size, &element, "size")?),
        binaural: BinauralMode::Mid,
        controls,
    })
}

/// The switched controls of a block (those BS.2127 never interpolates).
fn switched_of(b: &BlockFormat) -> SwitchedControls {
    let c = &b.controls;
    SwitchedControls {
        divergence_range: c.divergence_range,
        snap: c.channel_lock.map(|max_distance| Snap { max_distance }),
        zones: c.zones.clone(),
        screen_ref: c.screen_ref,
        screen_edge_lock: c.screen_edge_lock.clone(),
    }
}

/// The blocks' switched controls as a step lane: the first block's set, then a change
/// wherever a block's set differs from the one in force. A block that interpolates from
/// the previous one moves the gains from the old set's to its own over its interpolation
/// length (`ramp_from` its start, `frame` where the interpolation ends); any other block
/// jumps at its start. A change at the first block's start (after zero-length blocks)
/// replaces the first set; two at one frame keep the later block's.
fn switched_lane(
    cf: &ChannelFormat,
    spans: &[BlockSpan],
    element: &str,
) -> Result<(SwitchedControls, Vec<ControlChange>), AdmError> {
    let mut first = switched_of(&cf.blocks[0]);
    let first_frame = spans.first().map_or(0, |s| s.start);
    let mut changes: Vec<ControlChange> = Vec::new();
    for (b, sp) in cf.blocks.iter().zip(spans).skip(1) {
        let set = switched_of(b);
        // A one-frame interpolation is a jump (the gains of the frame before are the old
        // set's either way); halo writes jumps inside a ramp that way.
        let (ramp_from, frame) = if sp.interpolates && sp.target > sp.start + 1 {
            (sp.start, sp.target)
        } else if sp.interpolates {
            (sp.target, sp.target)
        } else {
            (sp.start, sp.start)
        };
        if changes.last().map_or(&first, |c| &c.set) == &set {
            continue;
        }
        if changes.is_empty() && frame <= first_frame {
            first = set;
            continue;
        }
        let previous = changes.last().map_or(first_frame, |c| c.frame);
        if frame < previous {
            return Err(invalid(
                element,
                format!(
                    "audioBlockFormat {}'s channelLock, zoneExclusion, screen or divergence \
                     range takes effect before the previous block's",
                    b.id
                ),
                "blocks in time order",
            ));
        }
        if frame == previous {
            changes.pop();
        }
        let before = changes.last().map_or(&first, |c| &c.set);
        if before != &set {
            let floor = changes.last().map_or(first_frame, |c| c.frame);
            changes.push(ControlChange {
                ramp_from: ramp_from.clamp(floor, frame),
                frame,
                set,
            });
        }
    }
    Ok((first, changes))
}

/// The frames an audioObject covers: from its `start` (0 without) to `start + duration`
/// (`u64::MAX` without a duration).
pub(super) fn object_span(object: Option<&AudioObject>, rate: u32) -> (u64, u64) {
    let start = object.and_then(|o| o.start);
    let s = start.map_or(0, |t| t.to_frames(rate));
    let e = object.and_then(|o| o.duration).map_or(u64::MAX, |d| {
        start.unwrap_or(AdmTime::ZERO).add(d).to_frames(rate)
    });
    (s, e.max(s))
}

/// The engine's gain interval (`engine::GAIN_INTERVAL_FRAMES`): a ramp no longer than
/// this has gain points only at its ends, so the engine interpolates its gains as BS.2127
/// does.
const SHORT_RAMP_FRAMES: u64 = 256; // `formats` may not use `engine` (layers)

/// Short ramps that end where the object falls silent end one frame earlier. The gain lane
/// has a gain point one frame before each silence (see [`silence_outside`]); a position
/// interpolated there would be panned on its own (BS.2127 interpolates gains between the
/// blocks' gains), so the ramp reaches its target there instead. Longer ramps have gain
/// points inside anyway and are left alone.
pub(super) fn end_ramps_before<T: Copy>(keys: &mut [Keyframe<T>], ends: &[u64]) {
    for i in 1..keys.len() {
        let (a, b) = (keys[i - 1].frame, keys[i].frame);
        if ends.contains(&b)
            && keys[i - 1].interpolation != Interpolation::Step
            && a + 1 < b
            && b - a <= SHORT_RAMP_FRAMES
        {
            keys[i].frame = b - 1;
        }
    }
}

/// The timing fixes made while reading a document, one entry per kind: how many and the
/// first example. They become one warning line per kind, never one per block.
#[derive(Debug, Default)]
pub(super) struct TimingFixes {
    kinds: Vec<(&'static str, usize, String)>,
}

impl TimingFixes {
    pub(super) fn note(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        match self.kinds.iter_mut().find(|k| k.0 == kind) {
            Some(k) => k.1 += 1,
            None => self.kinds.push((kind, 1, example())),
        }
    }

    pub(super) fn into_warnings(self, warnings: &mut Vec<String>) {
        for (kind, count, first) in self.kinds {
            warnings.push(format!("timing: {count} × {kind} (first: {first})"));
        }
    }
}

pub(super) const FIX_SNAP: &str = "block time not on a sample, snapped to the nearest sample";
pub(super) const FIX_OVERLAP: &str =
    "block overlapping the next one (by DAW rounding), now ending at the next block's rtime";
pub(super) const FIX_GAP: &str =
    "block ending less than a sample before the next one, now running to its rtime";
pub(super) const FIX_INTERPOLATION: &str =
    "interpolationLength longer than its block, clamped to the block";
pub(super) const FIX_NO_RTIME: &str = "first block with a duration but no rtime, starting at 0";

/// One block's timing in frames (see [`block_spans`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BlockSpan {
    /// First frame of the block (the object's start + rtime).
    pub(super) start: u64,
    /// Whether it interpolates from the previous block (it starts where that one ended).
    pub(super) interpolates: bool,
    /// Where the interpolation ends (= `start` when it does not interpolate).
    pub(super) target: u64,
    /// The frame after the block's last (`u64::MAX`: open-ended).
    pub(super) end: u64,
}

/// Block timing in frames (BS.2127 §7.3 with the EBU ADM toolbox's fixes). A block runs to
/// the next block's rtime when they overlap or leave less than a sample; times are snapped
/// to the sample; an interpolationLength is clamped to its block. Blocks are offset by the
/// object's `start` (frames) and end at the latest at the object's end (`object_end`,
/// frames; `u64::MAX` without a duration); a block without rtime and duration lasts the
/// whole object.
pub(super) fn block_spans(
    cf: &ChannelFormat,
    start: u64,
    object_end: u64,
    rate: u32,
    fixes: &mut TimingFixes,
) -> Vec<BlockSpan> {
    let secs = |t: AdmTime| t.seconds_f64();
    let sample_s = 1.0 / f64::from(rate);
    let mut spans = Vec::with_capacity(cf.blocks.len());
    let mut prev_end: Option<u64> = None;
    for (i, b) in cf.blocks.iter().enumerate() {
        let id = || format!("audioBlockFormat {}", b.id);
        // A block's end, not its duration, falls on a sample in five-decimal times.
        let end = b.duration.map(|d| b.rtime.unwrap_or(AdmTime::ZERO).add(d));
        for t in [b.rtime, end, b.interpolation_length].into_iter().flatten() {
            if !t.is_on_sample(rate) && !t.is_rounded_sample(rate) {
                fixes.note(FIX_SNAP, || format!("{} time {t} at {rate} Hz", b.id));
                break;
            }
        }
        if b.rtime.is_none() && b.duration.is_some() && cf.blocks.len() > 1 {
            fixes.note(FIX_NO_RTIME, id);
        }
        let rtime = b.rtime.unwrap_or(AdmTime::ZERO);
        let s = start.saturating_add(rtime.to_frames(rate)).min(object_end);
        let mut e = b
            .duration
            .map(|d| start.saturating_add(rtime.add(d).to_frames(rate)));
        if let (Some(d), Some(next)) = (b.duration, cf.blocks.get(i + 1).and_then(|n| n.rtime)) {
            let end = rtime.add(d);
            let next_f = start.saturating_add(next.to_frames(rate));
            let order = end.cmp_time(next);
            if order == std::cmp::Ordering::Greater {
                fixes.note(FIX_OVERLAP, id);
                e = Some(next_f);
            } else if order == std::cmp::Ordering::Less && secs(next) - secs(end) < sample_s {
                fixes.note(FIX_GAP, id);
                e = Some(next_f);
            }
        }
        // Without a duration, a block runs to the next block's start, or to the object's end.
        let e = e
            .or_else(|| {
                cf.blocks
                    .get(i + 1)
                    .and_then(|n| n.rtime)
                    .map(|n| start.saturating_add(n.to_frames(rate)))
            })
            .unwrap_or(u64::MAX)
            .clamp(s, object_end.max(s));
        let block_frames = e - s;
        let len = if b.jump_position {
            let l = b.interpolation_length.map_or(0, |l| l.to_frames(rate));
            if l > block_frames {
                fixes.note(FIX_INTERPOLATION, id);
            }
            l.min(block_frames)
        } else if e == u64::MAX {
            0
        } else {
            block_frames
        };
        let contiguous = prev_end == Some(s);
        spans.push(BlockSpan {
            start: s,
            interpolates: contiguous && len > 0,
            target: s.saturating_add(if contiguous { len } else { 0 }),
            end: e,
        });
        prev_end = Some(e);
    }
    spans
}

/// The frames where an object sounds (BS.2127: only while one of its blocks is active):
/// the blocks' spans merged, as sorted disjoint `[start, end)` intervals.
pub(super) fn active_intervals(spans: &[BlockSpan]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for sp in spans.iter().filter(|sp| sp.end > sp.start) {
        match out.last_mut() {
            Some(last) if sp.start <= last.1 => last.1 = last.1.max(sp.end),
            _ => out.push((sp.start, sp.end)),
        }
    }
    out
}

/// Whether the intervals leave any of the file's `frames` silent.
pub(super) fn silences_any(active: &[(u64, u64)], frames: u64) -> bool {
    !matches!(active, [(0, end)] if *end >= frames)
}

/// The gain keyframes with the object silenced ([`SILENT_GAIN_DB`]) outside the `active`
/// intervals, each edge exact to the sample: the engine ramps between gain points, so a
/// keyframe one frame before each edge holds the value up to it.
pub(super) fn silence_outside(
    keys: Vec<Keyframe<f64>>,
    active: &[(u64, u64)],
) -> Vec<Keyframe<f64>> {
    let Ok(auto) = Automation::new(keys.clone()) else {
        return keys;
    };
    let interpolation_at = |frame: u64| {
        let k = keys.partition_point(|k| k.frame <= frame);
        keys.get(k.wrapping_sub(1))
            .map_or(Interpolation::Step, |k| k.interpolation)
    };
    let step = |frame, value| Keyframe {
        frame,
        value,
        interpolation: Interpolation::Step,
    };
    let mut out: Vec<Keyframe<f64>> = Vec::new();
    for &(a, b) in active {
        if a > 0 {
            if out.is_empty() {
                out.push(step(0, SILENT_GAIN_DB));
            }
            if out.last().is_some_and(|k| k.frame + 1 < a) {
                out.push(step(a - 1, SILENT_GAIN_DB));
            }
        }
        out.push(Keyframe {
            frame: a,
            value: auto.value_at(a as f64),
            interpolation: interpolation_at(a),
        });
        out.extend(keys.iter().filter(|k| k.frame > a && k.frame < b).cloned());
        if b != u64::MAX {
            if out.last().is_some_and(|k| k.frame + 1 < b) {
                out.push(step(b - 1, auto.value_at((b - 1) as f64)));
            }
            out.push(step(b, SILENT_GAIN_DB));
        }
    }
    if out.is_empty() {
        out.push(step(0, SILENT_GAIN_DB));
    }
    out
}

/// An automation whose values never change becomes a constant.
pub(super) fn simplify<T: crate::scene::automation::Interpolate>(
    a: Automation<T>,
) -> Automation<T> {
    if a.is_constant() && a.keyframes().len() > 1 {
        Automation::constant(a.first_value())
    } else {
        a
    }
}

/// Adds a keyframe, keeping every step exact to the sample: the engine ramps between gain
/// points, so a jump at `frame` gets a keyframe at `frame - 1` holding the value reached
/// there. A keyframe at the same frame is replaced (a zero-length block), after the value
/// the ramp into it reaches one frame before has been kept.
fn push_key<T: crate::scene::automation::Interpolate>(
    keys: &mut Vec<Keyframe<T>>,
    frame: u64,
    value: T,
    interpolation: Interpolation,
) {
    let n = keys.len();
    match keys.last() {
        Some(k) if k.frame == frame => {
            if k.value != value
                && n >= 2
                && keys[n - 2].interpolation != Interpolation::Step
                && keys[n - 2].frame + 1 < frame
            {
                let (a, b) = (&keys[n - 2], &keys[n - 1]);
                let t = (frame - 1 - a.frame) as f64 / (frame - a.frame) as f64;
                let held = Keyframe {
                    frame: frame - 1,
                    value: T::interpolate(a.value, b.value, a.interpolation.shape(t)),
                    interpolation: Interpolation::Step,
                };
                keys.insert(n - 1, held);
            }
            let k = keys.last_mut().expect("a keyframe");
            k.value = value;
            k.interpolation = interpolation;
        }
        Some(k) if k.frame > frame => {}
        Some(k) => {
            if k.interpolation == Interpolation::Step && k.value != value && k.frame + 1 < frame {
                let held = Keyframe {
                    frame: frame - 1,
                    value: k.value,
                    interpolation: Interpolation::Step,
                };
                keys.push(held);
            }
            keys.push(Keyframe {
                frame,
                value,
                interpolation,
            });
        }
        None => keys.push(Keyframe {
            frame,
            value,
            interpolation,
        }),
    }
}

/// Keyframes under the BS.2127 timing rules (see the module documentation).
pub(super) fn standard_keys<T: crate::scene::automation::Interpolate>(
    values: &[Values],
    spans: &[BlockSpan],
    get: impl Fn(&Values) -> T,
) -> Vec<Keyframe<T>> {
    let mut keys: Vec<Keyframe<T>> = Vec::new();
    for (i, (v, sp)) in values.iter().zip(spans).enumerate() {
        let to = get(v);
        if sp.interpolates && i > 0 {
            let from = get(&values[i - 1]);
            match keys.last_mut() {
                Some(k) if k.frame == sp.start && k.value == from => {
                    k.interpolation = Interpolation::Linear;
                }
                _ => push_key(&mut keys, sp.start, from, Interpolation::Linear),
            }
            push_key(&mut keys, sp.target, to, Interpolation::Step);
        } else {
            push_key(&mut keys, sp.start, to, Interpolation::Step);
        }
    }
    keys
}

pub(super) type KeySets = (
    Vec<Keyframe<Position>>,
    Vec<Keyframe<f64>>,
    Vec<Keyframe<f64>>,
);

/// Keyframes from halo's `halo:keys` marks: a keyframe at every marked block's start with
/// the value the block starts from.
pub(super) fn marked_keys(
    cf: &ChannelFormat,
    values: &[Values],
    spans: &[BlockSpan],
) -> Result<KeySets, AdmError> {
    let (mut pos, mut gain, mut size) = (Vec::new(), Vec::new(), Vec::new());
    for (i, b) in cf.blocks.iter().enumerate() {
        let marks = b.halo_keys.as_deref().unwrap_or_default();
        let (frame, interpolates) = (spans[i].start, spans[i].interpolates);
        let at = if interpolates && i > 0 {
            values[i - 1]
        } else {
            values[i]
        };
        for mark in marks.split_whitespace() {
            let bad = || {
                invalid(
                    format!("audioBlockFormat {}", b.id),
                    format!("halo:keys item {mark:?} is not understood"),
                    "items p=…, g=…, s=… with step, linear or smooth",
                )
            };
            let (param, interp) = mark.split_once('=').ok_or_else(bad)?;
            let interpolation = match interp {
                "step" => Interpolation::Step,
                "linear" => Interpolation::Linear,
                "smooth" => Interpolation::Smooth,
                _ => return Err(bad()),
            };
            match param {
                "p" => pos.push(Keyframe {
                    frame,
                    value: at.position,
                    interpolation,
                }),
                "g" => gain.push(Keyframe {
                    frame,
                    value: at.gain_db,
                    interpolation,
                }),
                "s" => size.push(Keyframe {
                    frame,
                    value: at.size,
                    interpolation,
                }),
                _ => return Err(bad()),
            }
        }
    }
    if pos.is_empty() || gain.is_empty() || size.is_empty() {
        return Err(invalid(
            format!("audioChannelFormat {}", cf.id),
            "the halo:keys marks give no keyframe for one of position, gain, size",
            "p=, g= and s= each on at least one block",
        ));
    }
    Ok((pos, gain, size))
}

/// The speaker label of a DirectSpeakers track, normalised: the BS.2051 name when the
/// label is a URN, the short name otherwise.
pub(super) fn speaker_label(t: &Track, element: &str) -> Result<String, AdmError> {
    let raw = match t.channel {
        Some(cf) => cf
            .blocks
            .first()
            .and_then(|b| b.speaker_labels.first().cloned())
            .or_else(|| {
                cf.low_pass_hz
                    .filter(|&hz| hz <= 200.0)
                    .map(|_| "LFE1".to_string())
            }),
        None => common_channel(&t.channel_id).map(str::to_string),
    };
    let Some(raw) = raw else {
        // No label (BS.2127 §8 allows it): the channel is placed by its block's position,
        // under its channel format ID.
        let positioned = t
            .channel
            .and_then(|c| c.blocks.first())
            .and_then(block_position)
            .is_some();
        if positioned {
            return Ok(t.channel_id.clone());
        }
        return Err(invalid(
            element,
            format!(
                "DirectSpeakers channel {} has neither a speakerLabel nor a position",
                t.channel_id
            ),
            "a <speakerLabel> in the first block (M+030, urn:itu:bs:2051:0:speaker:M+030, L …) \
             or a position",
        ));
    };
    let mut l = raw.trim();
    if let Some(i) = l.rfind(":speaker:") {
        l = &l[i + 9..];
    }
    let l = l.strip_prefix("RC_").unwrap_or(l);
    Ok(l.to_string())
}

/// Short names used by DAWs for the BS.2051 speakers (beside halo's own labels).
pub(super) fn short_name_alias(label: &str) -> Option<&'static str> {
    Some(match label {
        "Lss" => "M+090",
        "Rss" => "M-090",
        "Lsr" | "Lrs" | "Lb" => "M+135",
        "Rsr" | "Rrs" | "Rb" => "M-135",
        "LFE" | "LFE1" => "LFE1",
        "Vhl" | "Ltfh" => "U+045",
        "Lts" | "Ltm" => "U+090",
        "Rts" | "Rtm" => "U-090",
        "Vhr" | "Rtfh" => "U-045",
        _ => return None,
    })
}

/// The built-in layout whose speakers are exactly the given labels, and for each layout
/// channel the index of the label that feeds it.
pub(super) fn match_layout(labels: &[String]) -> Option<(Layout, Vec<usize>)> {
    for layout in Layout::builtins() {
        if layout.num_channels() != labels.len() {
            continue;
        }
        let mut order = vec![usize::MAX; labels.len()];
        let mut ok = true;
        for (i, l) in labels.iter().enumerate() {
            let alias = short_name_alias(l);
            let hit = layout
                .channels
                .iter()
                .position(|c| c.name == *l || c.label == *l || alias.is_some_and(|a| c.name == a));
            match hit {
                Some(c) if order[c] == usize::MAX => order[c] = i,
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Some((layout, order));
        }
    }
    None
}

/// A DirectSpeakers channel's position: its block's, or its BS.2051 name's
/// (`M+030` = elevation 0, azimuth +30; `U` 30°, `T` 90°, `B` −30°).
/// The position bounds of a DirectSpeakers track (its first block's polar `bound="min"`
/// and `"max"` values, each defaulting to the position's value), when it has any.
pub(super) fn speaker_bounds(t: &Track) -> Option<SpeakerBounds> {
    let b = t.channel.and_then(|c| c.blocks.first())?;
    let Some(BlockPosition::Polar {
        azimuth,
        elevation,
        distance,
    }) = b.position
    else {
        return None;
    };
    if b.polar_bounds
        .iter()
        .all(|r| r.0.is_none() && r.1.is_none())
    {
        return None;
    }
    let range = |k: usize, v: f64| {
        let r: PolarBound = b.polar_bounds[k];
        (r.0.unwrap_or(v), r.1.unwrap_or(v))
    };
    Some(SpeakerBounds {
        azimuth_deg: azimuth,
        elevation_deg: elevation,
        distance,
        azimuth_range_deg: range(0, azimuth),
        elevation_range_deg: range(1, elevation),
        distance_range: range(2, distance),
    })
}

pub(super) fn speaker_position(t: &Track, label: &str) -> Position {
    if let Some(p) = t
        .channel
        .and_then(|c| c.blocks.first())
        .and_then(block_position)
    {
        return p;
    }
    let el = match label.chars().next() {
        Some('U') => 30.0,
        Some('T') => 90.0,
        Some('B') => -30.0,
        _ => 0.0,
    };
    let az = label
        .get(1..)
        .and_then(|a| a.parse::<f64>().ok())
        .unwrap_or(0.0);
    Position::Polar {
        azimuth_deg: az,
        elevation_deg: el,
        distance: 1.0,
    }
}
