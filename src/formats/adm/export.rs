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
        if ramps.iter().any(|&r| r) {
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

/// The object's BS.2127 controls on its blocks: the static ones on every block, the
/// keyframed ones (extent, diffuse, divergence) at the block's end when it ramps from the
/// previous block, at its start otherwise.
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
        b.controls = BlockControls {
            diffuse: c.diffuse.value_at(f),
            channel_lock: c.snap.map(|s| s.max_distance),
            divergence: c.divergence.value_at(f),
            divergence_range: c.divergence_range,
            zones: c.zones.clone(),
            screen_ref: c.screen_ref,
            screen_edge_lock: c.screen_edge_lock.clone(),
            importance: None,
        };
    }
}
