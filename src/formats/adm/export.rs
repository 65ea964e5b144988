//! halo scene → ADM document (ITU-R BS.2076-2) with the matching `chna` plan.

use super::*;

/// Which file channel (0-based) carries each object and each bed channel.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackPlan {
    /// One per scene object, in order.
    pub objects: Vec<usize>,
    /// One list per scene bed (one channel per layout channel, in layout order).
    pub beds: Vec<Vec<usize>>,
    /// The file's channel count.
    pub channels: usize,
    /// The file's length in frames (the last block ends there).
    pub frames: u64,
}

impl TrackPlan {
    /// Beds first (each in its layout's order), then one channel per object: the usual
    /// order of Atmos masters.
    pub fn beds_then_objects(scene: &Scene, frames: u64) -> TrackPlan {
        let mut next = 0;
        let beds = scene
            .beds
            .iter()
            .map(|b| {
                let v: Vec<usize> = (next..next + b.layout.num_channels()).collect();
                next += v.len();
                v
            })
            .collect();
        let objects = (0..scene.objects.len()).map(|i| next + i).collect();
        TrackPlan {
            objects,
            beds,
            channels: next + scene.objects.len(),
            frames,
        }
    }
}

pub(super) fn check_plan(scene: &Scene, plan: &TrackPlan) -> Result<(), AdmError> {
    let bad = |problem: String| {
        invalid(
            "track plan",
            problem,
            "one file channel per object and per bed channel, each below the channel count and used once",
        )
    };
    if plan.objects.len() != scene.objects.len() || plan.beds.len() != scene.beds.len() {
        return Err(bad(format!(
            "{} object and {} bed entries for {} objects and {} beds",
            plan.objects.len(),
            plan.beds.len(),
            scene.objects.len(),
            scene.beds.len()
        )));
    }
    let mut used = vec![false; plan.channels];
    for (b, chans) in scene.beds.iter().zip(&plan.beds) {
        if chans.len() != b.layout.num_channels() {
            return Err(bad(format!(
                "bed {:?} has {} channels in the plan, its layout {} has {}",
                b.name,
                chans.len(),
                b.layout.name,
                b.layout.num_channels()
            )));
        }
    }
    for &c in plan.objects.iter().chain(plan.beds.iter().flatten()) {
        match used.get_mut(c) {
            Some(u) if !*u => *u = true,
            Some(_) => return Err(bad(format!("channel {c} is used twice"))),
            None => return Err(bad(format!("channel {c} is not below {}", plan.channels))),
        }
    }
    if plan.channels > 65535 {
        return Err(bad(format!("{} channels", plan.channels)));
    }
    Ok(())
}

/// Builds the ADM document of a halo scene: one programme and content, every object as an
/// Objects channel with its automation as block formats (see the module documentation),
/// every bed as a DirectSpeakers pack with BS.2051 speaker labels. `loudness` goes on the
/// programme. The matching `chna` is [`chna_of`].
pub fn from_scene(
    scene: &Scene,
    plan: &TrackPlan,
    loudness: Option<AdmLoudness>,
) -> Result<AdmDocument, AdmError> {
    check_plan(scene, plan)?;
    let rate = scene.sample_rate;
    let mut doc = AdmDocument {
        // `write_axml` declares halo's namespace.
        halo_written: true,
        ..AdmDocument::default()
    };
    let mut object_ids = Vec::new();
    let total_end = scene
        .duration_frames
        .unwrap_or(plan.frames)
        .max(plan.frames);
    // Custom definitions number from 0x1001 (BS.2076: 0x0001…0x0FFF are common definitions).
    let mut pack_n = 0x1000u32;
    let mut channel_n = 0x1000u32;

    for bed in &scene.beds {
        pack_n += 1;
        let pack = format!("AP_0001{pack_n:04x}");
        let mut channel_refs = Vec::new();
        let mut uids = Vec::new();
        for ch in &bed.layout.channels {
            channel_n += 1;
            let cid = format!("AC_0001{channel_n:04x}");
            let mut block = BlockFormat::new(format!("AB_0001{channel_n:04x}_00000001"));
            block.position = Some(BlockPosition::Polar {
                azimuth: ch.azimuth_deg,
                elevation: ch.elevation_deg,
                distance: 1.0,
            });
            block.speaker_labels = vec![if ch.name.is_empty() {
                ch.label.clone()
            } else {
                ch.name.clone()
            }];
            doc.channel_formats.push(ChannelFormat {
                id: cid.clone(),
                name: ch.label.clone(),
                type_def: TypeDefinition::DirectSpeakers,
                blocks: vec![block],
                low_pass_hz: ch.lfe.then_some(120.0),
            });
            uids.push(add_track(&mut doc, &cid, &pack));
            channel_refs.push(cid);
        }
        doc.pack_formats.push(PackFormat {
            id: pack.clone(),
            name: format!("{} {}", bed.name, bed.layout.name),
            type_def: TypeDefinition::DirectSpeakers,
            channel_refs,
            pack_refs: Vec::new(),
            matrix_output_pack: None,
        });
        let oid = format!("AO_{:04x}", 0x1001 + object_ids.len());
        doc.objects.push(AudioObject {
            id: oid.clone(),
            name: bed.name.clone(),
            start: None,
            duration: None,
            pack_refs: vec![pack],
            object_refs: Vec::new(),
            track_uid_refs: uids,
            gain: 10f64.powf(bed.gain_db / 20.0),
            gain_db: (bed.gain_db != 0.0).then_some(bed.gain_db),
            mute: bed.mute,
            halo_binaural: None,
            importance: None,
        });
        object_ids.push(oid);
    }

    for obj in &scene.objects {
        pack_n += 1;
        channel_n += 1;
        let pack = format!("AP_0003{pack_n:04x}");
        let cid = format!("AC_0003{channel_n:04x}");
        let blocks = object_blocks(obj, &cid[3..], total_end, rate)?;
        doc.channel_formats.push(ChannelFormat {
            id: cid.clone(),
            name: obj.name.clone(),
            type_def: TypeDefinition::Objects,
            blocks,
            low_pass_hz: None,
        });
        doc.pack_formats.push(PackFormat {
            id: pack.clone(),
            name: obj.name.clone(),
            type_def: TypeDefinition::Objects,
            channel_refs: vec![cid.clone()],
            pack_refs: Vec::new(),
            matrix_output_pack: None,
        });
        let uid = add_track(&mut doc, &cid, &pack);
        let oid = format!("AO_{:04x}", 0x1001 + object_ids.len());
        doc.objects.push(AudioObject {
            id: oid.clone(),
            name: obj.name.clone(),
            start: None,
            duration: None,
            pack_refs: vec![pack],
            object_refs: Vec::new(),
            track_uid_refs: vec![uid],
            gain: 1.0,
            gain_db: None,
            mute: obj.mute,
            halo_binaural: Some(obj.binaural),
            importance: (obj.controls.importance < 10).then_some(obj.controls.importance),
        });
        object_ids.push(oid);
    }
    if object_ids.len() > 0xefff {
        return Err(AdmError::TooLarge {
            what: "the number of objects and beds".into(),
            value: object_ids.len() as u64,
            max: 0xefff,
        });
    }
    doc.contents.push(Content {
        id: "ACO_1001".into(),
        name: "halo mix".into(),
        object_refs: object_ids,
        loudness: None,
    });
    doc.programmes.push(Programme {
        id: "APR_1001".into(),
        name: "halo".into(),
        start: Some(AdmTime::from_frames(0, rate)),
        end: Some(AdmTime::from_frames(total_end, rate)),
        content_refs: vec!["ACO_1001".into()],
        loudness,
        // The default screen stays implicit.
        reference_screen: scene
            .reference_screen()
            .filter(|s| *s != crate::scene::mix::ReferenceScreen::DEFAULT),
    });
    Ok(doc)
}

/// Adds the stream format, track format and track UID of a channel; returns the UID.
pub(super) fn add_track(doc: &mut AdmDocument, channel_id: &str, pack: &str) -> String {
    let suffix = &channel_id[3..];
    let sf = format!("AS_{suffix}");
    let tf = format!("AT_{suffix}_01");
    let uid = format!("ATU_{:08x}", doc.track_uids.len() + 1);
    doc.stream_formats.push(StreamFormat {
        id: sf.clone(),
        channel_ref: Some(channel_id.to_string()),
        pack_ref: None,
        track_refs: vec![tf.clone()],
    });
    doc.track_formats.push(TrackFormat {
        id: tf.clone(),
        stream_ref: Some(sf),
    });
    doc.track_uids.push(TrackUid {
        id: uid.clone(),
        track_format_ref: Some(tf),
        channel_format_ref: None,
        pack_ref: Some(pack.to_string()),
    });
    uid
}

/// The `chna` of a document made by [`from_scene`] with the same plan (its track UIDs are
/// numbered in the plan's order: bed channels, then objects).
pub fn chna_of(doc: &AdmDocument, plan: &TrackPlan) -> Chna {
    let chans = plan
        .beds
        .iter()
        .flatten()
        .copied()
        .chain(plan.objects.iter().copied());
    let mut entries: Vec<ChnaEntry> = chans
        .zip(&doc.track_uids)
        .map(|(ch, u)| ChnaEntry {
            track_index: (ch + 1).min(65535) as u16,
            uid: u.id.clone(),
            track_ref: u.track_format_ref.clone().unwrap_or_default(),
            pack_ref: u.pack_ref.clone().unwrap_or_default(),
        })
        .collect();
    entries.sort_by_key(|e| e.track_index);
    Chna { entries }
}

/// How a parameter moves over a frame range: the interpolation of its keyframe at or
/// before `frame` (before the first keyframe it holds).
pub(super) fn segment_kind<T: crate::scene::automation::Interpolate>(
    a: &Automation<T>,
    frame: u64,
) -> Interpolation {
    let keys = a.keyframes();
    let i = keys.partition_point(|k| k.frame <= frame);
    if i == 0 || i == keys.len() {
        Interpolation::Step
    } else {
        keys[i - 1].interpolation
    }
}

/// A parameter's exact value at a frame: the keyframe's own value on a keyframe.
pub(super) fn value_at<T: crate::scene::automation::Interpolate>(
    a: &Automation<T>,
    frame: u64,
) -> T {
    let keys = a.keyframes();
    match keys.binary_search_by_key(&frame, |k| k.frame) {
        Ok(i) => keys[i].value,
        Err(_) => a.value_at(frame as f64),
    }
}

pub(super) fn keyed<T: crate::scene::automation::Interpolate>(
    a: &Automation<T>,
    frame: u64,
) -> Option<Interpolation> {
    let keys = a.keyframes();
    keys.binary_search_by_key(&frame, |k| k.frame)
        .ok()
        .map(|i| keys[i].interpolation)
}

pub(super) fn interp_name(i: Interpolation) -> &'static str {
    match i {
        Interpolation::Step => "step",
        Interpolation::Linear => "linear",
        Interpolation::Smooth => "smooth",
    }
}

pub(super) fn object_blocks(
    obj: &ObjectSpec,
    id_suffix: &str,
    total_end: u64,
    rate: u32,
) -> Result<Vec<BlockFormat>, AdmError> {
    let mut grid: Vec<u64> = obj
        .position
        .keyframes()
        .iter()
        .map(|k| k.frame)
        .chain(obj.gain_db.keyframes().iter().map(|k| k.frame))
        .chain(obj.size.keyframes().iter().map(|k| k.frame))
        .chain(obj.controls.keyframe_frames())
        .chain(std::iter::once(0))
        .collect();
    grid.sort_unstable();
    grid.dedup();
    let end = total_end.max(grid.last().copied().unwrap_or(0) + 1);
    let cartesian = matches!(obj.position.first_value(), Position::Cartesian { .. });
    let vals = |f: u64| {
        (
            value_at(&obj.position, f),
            value_at(&obj.gain_db, f),
            value_at(&obj.size, f),
        )
    };
    let mut blocks: Vec<BlockFormat> = Vec::new();
    let mut prev_targets: Option<(Position, f64, f64)> = None;
    let mut n = 0u32;
    let make = |n: &mut u32, s: u64, e: u64, t: (Position, f64, f64), ramp: bool, marks: String| {
        *n += 1;
        let mut b = BlockFormat::new(format!("AB_{id_suffix}_{:08x}", *n));
        b.rtime = Some(AdmTime::from_frames(s, rate));
        b.duration = Some(AdmTime::from_frames(e - s, rate));
        b.position = Some(match t.0 {
            Position::Cartesian { x, y, z } => BlockPosition::Cartesian { x, y, z },
            Position::Polar {
                azimuth_deg,
                elevation_deg,
                distance,
            } => BlockPosition::Polar {
                azimuth: if (-180.0..=180.0).contains(&azimuth_deg) {
                    azimuth_deg
                } else {
                    wrap_deg(azimuth_deg)
                },
                elevation: elevation_deg,
                distance,
            },
        });
        b.gain = 10f64.powf(t.1 / 20.0);
        b.gain_db = Some(t.1);
        if cartesian {
            (b.width, b.height, b.depth) = (t.2, t.2, t.2);
        } else {
            (b.width, b.height) = (t.2 * 360.0, t.2 * 360.0);
        }
        b.jump_position = !ramp;
        b.headphone_bypass = obj.binaural == BinauralMode::Off;
        b.halo_keys = Some(marks);
        b
    };
    for (gi, &f) in grid.iter().enumerate() {
        let next = grid.get(gi + 1).copied().unwrap_or(end);
        let kinds = [
            segment_kind(&obj.position, f),
            segment_kind(&obj.gain_db, f),
            segment_kind(&obj.size, f),
        ];
        let ramps = kinds.map(|k| k != Interpolation::Step);
        // A change of the switched controls that ramps (BS.2127 gain interpolation) is
        // written as a ramping block ending where the new set is in force.
        let control_ramp = obj.controls.ramping_at(f);
        let mut marks = Vec::new();
        for (tag, k) in [
            ("p", keyed(&obj.position, f)),
            ("g", keyed(&obj.gain_db, f)),
            ("s", keyed(&obj.size, f)),
        ] {
            if let Some(k) = k {
                marks.push(format!("{tag}={}", interp_name(k)));
            }
        }
        let marks = marks.join(" ");
        let at_f = vals(f);
        if ramps.iter().any(|&r| r) || control_ramp {
            let at_next = vals(next);
            let target = (
                if ramps[0] { at_next.0 } else { at_f.0 },
                if ramps[1] { at_next.1 } else { at_f.1 },
                if ramps[2] { at_next.2 } else { at_f.2 },
            );
            let mut s = f;
            let mut ramp_marks = marks;
            if prev_targets != Some(at_f) {
                // A one-sample lead block jumps to the values at `f`; the ramp follows.
                blocks.push(make(&mut n, f, f + 1, at_f, false, ramp_marks));
                ramp_marks = String::new();
                s = f + 1;
            }
            if next > s {
                blocks.push(make(&mut n, s, next, target, true, ramp_marks));
                prev_targets = Some(target);
            } else {
                prev_targets = Some(at_f);
            }
        } else {
            blocks.push(make(&mut n, f, next, at_f, false, marks));
            prev_targets = Some(at_f);
        }
    }
    block_controls(obj, &mut blocks, rate);
    if blocks.len() > MAX_BLOCKS_PER_CHANNEL {
        return Err(AdmError::TooLarge {
            what: format!("the number of block formats for object {:?}", obj.name),
            value: blocks.len() as u64,
            max: MAX_BLOCKS_PER_CHANNEL as u64,
        });
    }
    Ok(blocks)
}

// ---------------------------------------------------------------------------------------
// The Dolby Atmos Master ADM profile.

/// The form of an exported master's ADM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdmProfile {
    /// The Dolby Atmos Master ADM profile (BS.2076-1 metadata as Dolby's tools write and
    /// read it): five-decimal times, linear block gains, at most [`MAX_PROFILE_OBJECTS`]
    /// objects, `headphoneVirtualise` on every object block (see `to_dolby_profile`).
    #[default]
    DolbyAtmosMaster,
    /// BS.2076-2 as halo wrote it before the profile: sample-exact times
    /// (`hh:mm:ss.nnnnnSddddd` where five decimals are not exact), gains in dB.
    Bs2076_2,
}

/// Most objects in a Dolby Atmos master (128 tracks less a 7.1.2 bed).
pub const MAX_PROFILE_OBJECTS: usize = 118;
/// Most tracks in a Dolby Atmos master.
pub const MAX_PROFILE_TRACKS: usize = 128;
/// Highest sample rate whose every sample has its own five-decimal (10 µs) time.
pub const MAX_PROFILE_RATE: u32 = 100_000;
/// Bed layouts of the profile (the Dolby Atmos bed channel sets, up to 7.1.2).
pub const PROFILE_BEDS: [&str; 5] = ["2.0", "5.1", "7.1", "5.1.2", "7.1.2"];

/// [`from_scene`] in the given profile; also returns what the profile could not carry
/// exactly, in words.
pub fn from_scene_as(
    scene: &Scene,
    plan: &TrackPlan,
    loudness: Option<AdmLoudness>,
    profile: AdmProfile,
) -> Result<(AdmDocument, Vec<String>), AdmError> {
    if profile == AdmProfile::DolbyAtmosMaster {
        check_profile(scene, plan)?;
    }
    let mut doc = from_scene(scene, plan, loudness)?;
    let warnings = match profile {
        AdmProfile::DolbyAtmosMaster => to_dolby_profile(&mut doc, scene),
        AdmProfile::Bs2076_2 => Vec::new(),
    };
    Ok((doc, warnings))
}

/// The profile's limits: object and track counts, sample rate.
fn check_profile(scene: &Scene, plan: &TrackPlan) -> Result<(), AdmError> {
    let element = "Dolby Atmos Master ADM profile";
    if scene.objects.len() > MAX_PROFILE_OBJECTS {
        return Err(invalid(
            element,
            format!("the session has {} objects", scene.objects.len()),
            "at most 118 objects (128 tracks with a 7.1.2 bed); `--adm-version 2` writes \
             BS.2076-2 without this limit",
        ));
    }
    if plan.channels > MAX_PROFILE_TRACKS {
        return Err(invalid(
            element,
            format!(
                "the master has {} tracks (bed channels and objects)",
                plan.channels
            ),
            "at most 128 tracks; `--adm-version 2` writes BS.2076-2 without this limit",
        ));
    }
    if scene.sample_rate > MAX_PROFILE_RATE {
        return Err(invalid(
            element,
            format!(
                "the sample rate is {} Hz; its five-decimal times (10 µs) cannot place every sample",
                scene.sample_rate
            ),
            "48000 or 96000 Hz (any rate up to 100000 Hz); `--adm-version 2` writes \
             sample-exact BS.2076-2 times",
        ));
    }
    Ok(())
}

/// Turns a document made by [`from_scene`] into the Dolby Atmos Master ADM profile form:
///
/// - BS.2076-1 (`audioFormatExtended version="ITU-R_BS.2076-1"`), every time in
///   `hh:mm:ss.fffff`: each sample frame rounded to the nearest 10 µs, a block's duration
///   the difference of its rounded end and start, so it meets the next block's rtime. Read
///   back at rates up to [`MAX_PROFILE_RATE`] these give the same frames.
/// - Object block gains linear, with the object's mute folded in (gain 0); halo's exact
///   dB value rides in `halo:gainDb` so that re-import is exact.
/// - `headphoneVirtualise` on every object block: `bypass="1"` for `Off`, otherwise
///   `bypass="0"` with the mode's documented DRR (`Near` 16 dB, `Mid` 6 dB, `Far` 0 dB),
///   which halo reads back as the same mode.
/// - Objects keep the session's coordinates. Cartesian objects are written Cartesian as the
///   profile asks; a polar object stays polar (named in a warning), because converting it
///   would hand it to BS.2127's allocentric panner and change its loudspeaker gains.
///
/// The programme is named `Atmos_Master` (its content `Atmos_Master_Content`), the name by
/// which readers know the profile; IDs are already the profile's (`APR_1001`, `ACO_1001`,
/// `ATU_…`, beds first, one programme). Returns warnings for what the profile cannot carry as the session has it.
pub fn to_dolby_profile(doc: &mut AdmDocument, scene: &Scene) -> Vec<String> {
    use crate::spatial::binaural::Distance;
    let rate = scene.sample_rate;
    doc.version = 1;
    let decimal = |t: AdmTime| AdmTime::from_frames_decimal(t.to_frames(rate), rate);
    for p in &mut doc.programmes {
        // The name by which readers (MediaInfo among them) know a Dolby Atmos master.
        p.name = "Atmos_Master".into();
        p.start = p.start.map(decimal);
        p.end = p.end.map(decimal);
    }
    for c in &mut doc.contents {
        c.name = "Atmos_Master_Content".into();
    }
    for o in &mut doc.objects {
        o.start = o.start.map(decimal);
        o.duration = o.duration.map(decimal);
    }
    // Ramps first, in frames: subdivided so that gain interpolation follows halo's path.
    let mut objects = scene.objects.iter();
    for cf in &mut doc.channel_formats {
        if cf.type_def != TypeDefinition::Objects {
            continue;
        }
        let Some(obj) = objects.next() else { break };
        let blocks = std::mem::take(&mut cf.blocks);
        cf.blocks = subdivide_ramps(blocks, obj, &cf.id[3..], rate);
    }
    // Bed channels: halo plays a bed channel on the output speaker of the same label
    // (a 5.1 `Ls`, M+110, on the side surround M+090 of 7.1.4); BS.2127 renderers match
    // BS.2051 names, then take the closest speaker inside the position's bounds. So each
    // bed channel's azimuth and elevation are bounded by the built-in speakers that share
    // its label, and both find the same speaker.
    let mut bed_channels = scene.beds.iter().flat_map(|b| b.layout.channels.iter());
    for cf in &mut doc.channel_formats {
        if cf.type_def != TypeDefinition::DirectSpeakers {
            continue;
        }
        let Some(ch) = bed_channels.next() else { break };
        if ch.lfe {
            continue;
        }
        let (az, el) = label_ranges(&ch.label, ch.azimuth_deg, ch.elevation_deg);
        for b in &mut cf.blocks {
            b.azimuth_range_deg = az;
            b.elevation_range_deg = el;
        }
    }
    let mut objects = scene.objects.iter();
    for cf in &mut doc.channel_formats {
        for b in &mut cf.blocks {
            if let (Some(r), Some(d)) = (b.rtime, b.duration) {
                let s = AdmTime::ticks_of(r.to_frames(rate), rate);
                let e = AdmTime::ticks_of(r.add(d).to_frames(rate), rate);
                b.rtime = Some(AdmTime::from_ticks(s));
                b.duration = Some(AdmTime::from_ticks(e.saturating_sub(s)));
            }
        }
        if cf.type_def != TypeDefinition::Objects {
            continue;
        }
        let Some(obj) = objects.next() else { break };
        let drr = match obj.binaural {
            BinauralMode::Off => None,
            BinauralMode::Near => Some(Distance::Near.drr_db()),
            BinauralMode::Mid => Some(Distance::Mid.drr_db()),
            BinauralMode::Far => Some(Distance::Far.drr_db()),
        };
        for b in &mut cf.blocks {
            let db = b.gain_db.unwrap_or_else(|| lin_to_db(b.gain));
            b.halo_gain_db = Some(db);
            b.gain_db = None;
            b.gain = if obj.mute { 0.0 } else { 10f64.powf(db / 20.0) };
            b.headphone_bypass = drr.is_none();
            b.headphone_drr_db = drr;
        }
    }
    use_common_packs(doc, scene);
    let mut warnings = Vec::new();
    let polar: Vec<&str> = scene
        .objects
        .iter()
        .filter(|o| matches!(o.position.first_value(), Position::Polar { .. }))
        .map(|o| o.name.as_str())
        .collect();
    if !polar.is_empty() {
        warnings.push(format!(
            "Dolby Atmos profile: {} polar object(s) ({}) written in polar coordinates, not \
             the profile's Cartesian ones, so that every BS.2127 renderer pans them as the \
             session does (converted, they would take the allocentric panner's gains)",
            polar.len(),
            list_names(&polar)
        ));
    }
    for (i, bed) in scene.beds.iter().enumerate() {
        let in_profile = PROFILE_BEDS
            .iter()
            .any(|n| bed.layout.name == *n || bed.layout.aliases.iter().any(|a| a == n));
        if i > 0 || !in_profile {
            warnings.push(format!(
                "Dolby Atmos profile: bed {:?} ({}) is not the profile's one bed of {}; it is \
                 written as a DirectSpeakers bed with BS.2051 labels, which BS.2076 readers \
                 render but Dolby's tools may not take as the bed",
                bed.name,
                bed.layout.name,
                PROFILE_BEDS.join(", ")
            ));
        }
        if bed.gain_db != 0.0 || bed.mute {
            warnings.push(format!(
                "Dolby Atmos profile: bed {:?}: its {} on its audioObject, which halo \
                 reads but the profile and EAR 2.1 ignore (they play the bed at 0 dB); \
                 `--bake-bed-gains` writes it into the bed's tracks instead",
                bed.name,
                match (bed.gain_db != 0.0, bed.mute) {
                    (true, true) => format!("gain ({} dB) and mute are", bed.gain_db),
                    (true, false) => format!("gain ({} dB) is", bed.gain_db),
                    _ => "mute is".to_string(),
                }
            ));
        }
    }
    warnings
}

/// Largest move of one profile block, in room units (Cartesian, or the chord of the unit
/// sphere plus the change of distance for polar positions: 0.05 is about 3°).
pub const RAMP_STEP: f64 = 0.05;
/// Largest gain change of one profile block, dB.
pub const RAMP_STEP_DB: f64 = 0.5;
/// Fewest blocks a smoothstep ramp is cut into.
const SMOOTH_PIECES: u64 = 8;
/// Shortest piece of a cut ramp, frames (a quarter of the engine's 256-frame gain interval).
const MIN_PIECE_FRAMES: u64 = 64;

/// How far a position moves (see [`RAMP_STEP`]); 0 between kinds (they jump).
fn position_step(a: Position, b: Position) -> f64 {
    use crate::scene::geometry::Direction;
    match (a, b) {
        (
            Position::Cartesian { x, y, z },
            Position::Cartesian {
                x: x2,
                y: y2,
                z: z2,
            },
        ) => ((x2 - x).powi(2) + (y2 - y).powi(2) + (z2 - z).powi(2)).sqrt(),
        (
            Position::Polar {
                azimuth_deg: a1,
                elevation_deg: e1,
                distance: d1,
            },
            Position::Polar {
                azimuth_deg: a2,
                elevation_deg: e2,
                distance: d2,
            },
        ) => {
            let (u, v) = (
                Direction::new(a1, e1).to_unit(),
                Direction::new(a2, e2).to_unit(),
            );
            let chord =
                ((u[0] - v[0]).powi(2) + (u[1] - v[1]).powi(2) + (u[2] - v[2]).powi(2)).sqrt();
            chord + (d2 - d1).abs()
        }
        _ => 0.0,
    }
}

/// BS.2127 renderers interpolate loudspeaker *gains* across a block; halo interpolates the
/// position (and gain in dB, and size) and pans every 256 samples. Over a long ramp the two
/// part ways (a Cartesian move through the middle of the room, a polar sweep of 90°). So a
/// ramp block is cut into pieces, each ending on halo's own automation value, small enough
/// ([`RAMP_STEP`], [`RAMP_STEP_DB`], at least 8 for a smoothstep) that the gain
/// interpolation between them follows halo's path. The first piece keeps the block's
/// `halo:keys` mark, the others carry an empty one, so halo re-imports the same keyframes.
fn subdivide_ramps(
    blocks: Vec<BlockFormat>,
    obj: &ObjectSpec,
    id_suffix: &str,
    rate: u32,
) -> Vec<BlockFormat> {
    let cartesian = matches!(obj.position.first_value(), Position::Cartesian { .. });
    let mut out: Vec<BlockFormat> = Vec::with_capacity(blocks.len());
    let switched = |b: &BlockFormat| {
        let c = &b.controls;
        (
            c.channel_lock,
            c.divergence_range,
            c.zones.clone(),
            c.screen_ref,
            c.screen_edge_lock.clone(),
        )
    };
    let mut previous = None;
    for b in blocks {
        // A block that changes the switched controls (channelLock, zones, screen,
        // divergence range) over its length stays whole: the gains move from the old
        // set's to the new one's over the whole block, as the change says.
        let set = switched(&b);
        let changes_set = previous.as_ref().is_some_and(|p| p != &set);
        previous = Some(set);
        let (Some(r), Some(d)) = (b.rtime, b.duration) else {
            out.push(b);
            continue;
        };
        let s = r.to_frames(rate);
        let e = r.add(d).to_frames(rate);
        if b.jump_position || e <= s + MIN_PIECE_FRAMES || changes_set {
            out.push(b);
            continue;
        }
        let (p0, p1) = (value_at(&obj.position, s), value_at(&obj.position, e));
        let (g0, g1) = (value_at(&obj.gain_db, s), value_at(&obj.gain_db, e));
        let (s0, s1) = (value_at(&obj.size, s), value_at(&obj.size, e));
        let smooth = [
            segment_kind(&obj.position, s),
            segment_kind(&obj.gain_db, s),
            segment_kind(&obj.size, s),
        ]
        .contains(&Interpolation::Smooth);
        let want = (position_step(p0, p1) / RAMP_STEP)
            .max((g1 - g0).abs() / RAMP_STEP_DB)
            .max((s1 - s0).abs() / RAMP_STEP)
            .ceil();
        let want = if want.is_finite() { want as u64 } else { 1 };
        let pieces = want
            .max(if smooth { SMOOTH_PIECES } else { 1 })
            .min((e - s) / MIN_PIECE_FRAMES)
            .max(1);
        if pieces == 1 {
            out.push(b);
            continue;
        }
        let at = |k: u64| s + (e - s) * k / pieces;
        for k in 0..pieces {
            let (f0, f1) = (at(k), at(k + 1));
            let mut piece = b.clone();
            piece.rtime = Some(AdmTime::from_frames(f0, rate));
            piece.duration = Some(AdmTime::from_frames(f1 - f0, rate));
            if k > 0 {
                piece.halo_keys = Some(String::new());
            }
            if k + 1 < pieces {
                let db = value_at(&obj.gain_db, f1);
                let size = value_at(&obj.size, f1);
                piece.position = Some(block_position(value_at(&obj.position, f1)));
                piece.gain = 10f64.powf(db / 20.0);
                piece.gain_db = Some(db);
                if cartesian {
                    (piece.width, piece.height, piece.depth) = (size, size, size);
                } else {
                    (piece.width, piece.height) = (size * 360.0, size * 360.0);
                }
            }
            out.push(piece);
        }
    }
    for (n, b) in out.iter_mut().enumerate() {
        b.id = format!("AB_{id_suffix}_{:08x}", n + 1);
    }
    out
}

/// A halo position as an ADM block position (polar azimuth in −180…180).
fn block_position(p: Position) -> BlockPosition {
    match p {
        Position::Cartesian { x, y, z } => BlockPosition::Cartesian { x, y, z },
        Position::Polar {
            azimuth_deg,
            elevation_deg,
            distance,
        } => BlockPosition::Polar {
            azimuth: if (-180.0..=180.0).contains(&azimuth_deg) {
                azimuth_deg
            } else {
                wrap_deg(azimuth_deg)
            },
            elevation: elevation_deg,
            distance,
        },
    }
}

/// The BS.2094 common-definition ITU pack (`AP_000100xx`, one BS.2051 system) whose
/// speakers are exactly the bed's, with the common channel format (`AC_000100yy`) of each
/// bed channel in the bed's order.
fn common_itu_pack(layout: &Layout) -> Option<(String, Vec<String>)> {
    let labels: Vec<&str> = layout
        .channels
        .iter()
        .map(|c| if c.name.is_empty() { &c.label } else { &c.name }.as_str())
        .collect();
    (1u8..=0xff).find_map(|n| {
        let pack = format!("AP_000100{n:02x}");
        if !super::import::is_common_itu_pack(&pack) {
            return None;
        }
        let channels = common_pack(&pack)?;
        if channels.len() != labels.len() {
            return None;
        }
        let mut refs = Vec::with_capacity(labels.len());
        for l in &labels {
            let c = channels.iter().find(|c| common_channel(c) == Some(*l))?;
            if refs.contains(c) {
                return None;
            }
            refs.push(c.clone());
        }
        Some((pack, refs))
    })
}

/// Beds whose speakers are a BS.2051 system with a BS.2094 common-definition pack refer to
/// it instead of their own pack (BS.2076-1 form, as Dolby Atmos masters do: each track UID
/// names `AT_000100yy_01` and `AP_000100xx`, which the axml does not redefine). BS.2127
/// §8's mapping rules hold for these packs only, so EAR then maps a 5.1 bed's M±110 onto
/// the M±135 of 7.1.4 as halo's engine does; other beds keep their own pack with bounds.
fn use_common_packs(doc: &mut AdmDocument, scene: &Scene) {
    for (i, bed) in scene.beds.iter().enumerate() {
        let Some((pack, channels)) = common_itu_pack(&bed.layout) else {
            continue;
        };
        let Some(obj) = doc.objects.get_mut(i) else {
            break;
        };
        let Some(own) = obj.pack_refs.first().cloned() else {
            continue;
        };
        obj.pack_refs = vec![pack.clone()];
        let uids = obj.track_uid_refs.clone();
        let own_channels = doc
            .pack_formats
            .iter()
            .find(|p| p.id == own)
            .map(|p| p.channel_refs.clone())
            .unwrap_or_default();
        for (uid, common) in uids.iter().zip(&channels) {
            if let Some(u) = doc.track_uids.iter_mut().find(|u| u.id == *uid) {
                u.track_format_ref = Some(format!("AT_{}_01", &common[3..]));
                u.pack_ref = Some(pack.clone());
            }
        }
        doc.pack_formats.retain(|p| p.id != own);
        doc.channel_formats
            .retain(|c| !own_channels.contains(&c.id));
        let suffixes: Vec<&str> = own_channels.iter().map(|c| &c[3..]).collect();
        doc.stream_formats
            .retain(|s| !suffixes.contains(&&s.id[3..]));
        doc.track_formats
            .retain(|t| !suffixes.iter().any(|x| t.id[3..].starts_with(x)));
    }
}

/// The azimuth and elevation ranges of the built-in speakers labelled `label` (with the
/// channel's own position), when they differ from it; none across the rear (±180°).
#[allow(clippy::type_complexity)]
fn label_ranges(
    label: &str,
    azimuth_deg: f64,
    elevation_deg: f64,
) -> (Option<(f64, f64)>, Option<(f64, f64)>) {
    let (mut az, mut el) = ((azimuth_deg, azimuth_deg), (elevation_deg, elevation_deg));
    for l in Layout::builtins() {
        for c in l.channels {
            if c.label == label && !c.lfe {
                az = (az.0.min(c.azimuth_deg), az.1.max(c.azimuth_deg));
                el = (el.0.min(c.elevation_deg), el.1.max(c.elevation_deg));
            }
        }
    }
    let crosses_rear = az.0 < 0.0 && az.1 > 0.0 && az.1 - az.0 > 180.0;
    (
        (az.0 < az.1 && !crosses_rear).then_some(az),
        (el.0 < el.1).then_some(el),
    )
}

fn list_names(names: &[&str]) -> String {
    let mut s: Vec<String> = names.iter().take(8).map(|n| format!("{n:?}")).collect();
    if names.len() > 8 {
        s.push(format!("and {} more", names.len() - 8));
    }
    s.join(", ")
}
/// The object's BS.2127 controls on its blocks, each taken where the block's values are
/// reached: at the block's end when it ramps from the previous block, at its start
/// otherwise (the switched ones — snap, zones, screen, divergence range — from the set in
/// force there, so a change with a ramp is read back as the ramping block's own).
fn block_controls(obj: &ObjectSpec, blocks: &mut [BlockFormat], rate: u32) {
    let c = &obj.controls;
    for b in blocks {
        let start = b.rtime.map_or(0, |t| t.to_frames(rate));
        let end = start + b.duration.map_or(0, |d| d.to_frames(rate));
        let f = if b.jump_position { start } else { end } as f64;
        if let Some(e) = &c.extent {
            let e = e.value_at(f);
            (b.width, b.height, b.depth) = (e.width, e.height, e.depth);
        }
        let set = match c.set_index_at(f as u64) {
            0 => c.first_set(),
            k => c.changes[k - 1].set.clone(),
        };
        b.controls = BlockControls {
            diffuse: c.diffuse.value_at(f),
            channel_lock: set.snap.map(|s| s.max_distance),
            divergence: c.divergence.value_at(f),
            divergence_range: set.divergence_range,
            zones: set.zones,
            screen_ref: set.screen_ref,
            screen_edge_lock: set.screen_edge_lock,
            importance: None,
        };
    }
}
