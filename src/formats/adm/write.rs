//! Writing an [`AdmDocument`] as a BS.2076-2 `axml` chunk (UTF-8 XML in the EBU Core wrapper).

use super::*;

pub(super) fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Writes the document as a BS.2076-2 `axml` chunk (UTF-8 XML in the EBU Core wrapper).
pub fn write_axml(doc: &AdmDocument) -> String {
    let mut x = String::with_capacity(4096 + doc.channel_formats.len() * 512);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<ebuCoreMain xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns=\"urn:ebu:metadata-schema:ebuCore_2016\" xmlns:halo=\"{HALO_NAMESPACE}\" \
         schema=\"EBU_CORE_20161222.xsd\" version=\"1.7\">"
    );
    let _ = writeln!(
        x,
        "  <coreMetadata>\n    <format>\n      <audioFormatExtended version=\"ITU-R_BS.2076-{}\">",
        if doc.version == 1 { 1 } else { 2 }
    );
    let ind = "        ";
    write_programmes(&mut x, doc, ind);
    write_objects(&mut x, doc, ind);
    write_pack_channel_formats(&mut x, doc, ind);
    write_stream_track_formats(&mut x, doc, ind);
    x.push_str("      </audioFormatExtended>\n    </format>\n  </coreMetadata>\n</ebuCoreMain>\n");
    x
}

/// An `audioProgrammeReferenceScreen` (numbers in Rust's shortest exact form, so they
/// read back to the same values).
fn write_reference_screen(
    x: &mut String,
    screen: Option<&crate::scene::mix::ReferenceScreen>,
    ind: &str,
) {
    use crate::scene::mix::ReferenceScreen as R;
    let Some(s) = screen else { return };
    let (aspect_ratio, centre, width) = match *s {
        R::Polar {
            aspect_ratio,
            azimuth_deg,
            elevation_deg,
            distance,
            width_deg,
        } => (
            aspect_ratio,
            format!(
                "azimuth=\"{azimuth_deg}\" elevation=\"{elevation_deg}\" distance=\"{distance}\""
            ),
            format!("azimuth=\"{width_deg}\""),
        ),
        R::Cartesian {
            aspect_ratio,
            x: cx,
            y,
            z,
            width,
        } => (
            aspect_ratio,
            format!("X=\"{cx}\" Y=\"{y}\" Z=\"{z}\""),
            format!("X=\"{width}\""),
        ),
    };
    let _ = writeln!(
        x,
        "{ind}  <audioProgrammeReferenceScreen aspectRatio=\"{aspect_ratio}\">"
    );
    let _ = writeln!(x, "{ind}    <screenCentrePosition {centre}/>");
    let _ = writeln!(x, "{ind}    <screenWidth {width}/>");
    let _ = writeln!(x, "{ind}  </audioProgrammeReferenceScreen>");
}

/// The `audioProgramme`s and `audioContent`s.
fn write_programmes(x: &mut String, doc: &AdmDocument, ind: &str) {
    for p in &doc.programmes {
        let _ = write!(
            x,
            "{ind}<audioProgramme audioProgrammeID=\"{}\" audioProgrammeName=\"{}\"",
            esc(&p.id),
            esc(&p.name)
        );
        if let Some(s) = p.start {
            let _ = write!(x, " start=\"{s}\"");
        }
        if let Some(e) = p.end {
            let _ = write!(x, " end=\"{e}\"");
        }
        x.push_str(">\n");
        for c in &p.content_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioContentIDRef>{}</audioContentIDRef>",
                esc(c)
            );
        }
        write_loudness(x, p.loudness.as_ref(), ind);
        write_reference_screen(x, p.reference_screen.as_ref(), ind);
        let _ = writeln!(x, "{ind}</audioProgramme>");
    }
    for c in &doc.contents {
        let _ = writeln!(
            x,
            "{ind}<audioContent audioContentID=\"{}\" audioContentName=\"{}\">",
            esc(&c.id),
            esc(&c.name)
        );
        for o in &c.object_refs {
            let _ = writeln!(x, "{ind}  <audioObjectIDRef>{}</audioObjectIDRef>", esc(o));
        }
        write_loudness(x, c.loudness.as_ref(), ind);
        let _ = writeln!(x, "{ind}</audioContent>");
    }
}

/// The `audioObject`s.
fn write_objects(x: &mut String, doc: &AdmDocument, ind: &str) {
    for o in &doc.objects {
        let _ = write!(
            x,
            "{ind}<audioObject audioObjectID=\"{}\" audioObjectName=\"{}\"",
            esc(&o.id),
            esc(&o.name)
        );
        if let Some(s) = o.start {
            let _ = write!(x, " start=\"{s}\"");
        }
        if let Some(d) = o.duration {
            let _ = write!(x, " duration=\"{d}\"");
        }
        if let Some(b) = o.halo_binaural {
            let m = match b {
                BinauralMode::Off => "off",
                BinauralMode::Near => "near",
                BinauralMode::Mid => "mid",
                BinauralMode::Far => "far",
            };
            let _ = write!(x, " halo:binaural=\"{m}\"");
        }
        if let Some(i) = o.importance {
            let _ = write!(x, " importance=\"{i}\"");
        }
        x.push_str(">\n");
        for r in &o.pack_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(r)
            );
        }
        for r in &o.object_refs {
            let _ = writeln!(x, "{ind}  <audioObjectIDRef>{}</audioObjectIDRef>", esc(r));
        }
        match o.gain_db {
            Some(db) if db != 0.0 && doc.version == 1 => {
                // BS.2076-1 readers take linear gains; halo keeps its exact dB value.
                let _ = writeln!(
                    x,
                    "{ind}  <gain halo:gainDb=\"{db:?}\">{:?}</gain>",
                    10f64.powf(db / 20.0)
                );
            }
            Some(db) if db != 0.0 => {
                let _ = writeln!(x, "{ind}  <gain gainUnit=\"dB\">{db:?}</gain>");
            }
            Some(_) => {}
            None if o.gain != 1.0 => {
                let _ = writeln!(x, "{ind}  <gain>{:?}</gain>", o.gain);
            }
            None => {}
        }
        if o.mute {
            let _ = writeln!(x, "{ind}  <mute>1</mute>");
        }
        for r in &o.track_uid_refs {
            let _ = writeln!(x, "{ind}  <audioTrackUIDRef>{}</audioTrackUIDRef>", esc(r));
        }
        let _ = writeln!(x, "{ind}</audioObject>");
    }
}

/// The `audioPackFormat`s and `audioChannelFormat`s with their blocks.
fn write_pack_channel_formats(x: &mut String, doc: &AdmDocument, ind: &str) {
    for p in &doc.pack_formats {
        let _ = writeln!(
            x,
            "{ind}<audioPackFormat audioPackFormatID=\"{}\" audioPackFormatName=\"{}\" \
             typeLabel=\"{}\" typeDefinition=\"{}\">",
            esc(&p.id),
            esc(&p.name),
            p.type_def.label(),
            p.type_def.name()
        );
        for c in &p.channel_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioChannelFormatIDRef>{}</audioChannelFormatIDRef>",
                esc(c)
            );
        }
        for c in &p.pack_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(c)
            );
        }
        let _ = writeln!(x, "{ind}</audioPackFormat>");
    }
    for c in &doc.channel_formats {
        let _ = writeln!(
            x,
            "{ind}<audioChannelFormat audioChannelFormatID=\"{}\" audioChannelFormatName=\"{}\" \
             typeLabel=\"{}\" typeDefinition=\"{}\">",
            esc(&c.id),
            esc(&c.name),
            c.type_def.label(),
            c.type_def.name()
        );
        if let Some(hz) = c.low_pass_hz {
            let _ = writeln!(
                x,
                "{ind}  <frequency typeDefinition=\"lowPass\">{hz:?}</frequency>"
            );
        }
        for b in &c.blocks {
            write_block(x, b, c.type_def, ind);
        }
        let _ = writeln!(x, "{ind}</audioChannelFormat>");
    }
}

/// The `audioStreamFormat`s, `audioTrackFormat`s and `audioTrackUID`s.
fn write_stream_track_formats(x: &mut String, doc: &AdmDocument, ind: &str) {
    for s in &doc.stream_formats {
        let _ = writeln!(
            x,
            "{ind}<audioStreamFormat audioStreamFormatID=\"{}\" audioStreamFormatName=\"PCM_{}\" \
             formatLabel=\"0001\" formatDefinition=\"PCM\">",
            esc(&s.id),
            esc(&s.id)
        );
        if let Some(c) = &s.channel_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioChannelFormatIDRef>{}</audioChannelFormatIDRef>",
                esc(c)
            );
        }
        if let Some(p) = &s.pack_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(p)
            );
        }
        for t in &s.track_refs {
            let _ = writeln!(
                x,
                "{ind}  <audioTrackFormatIDRef>{}</audioTrackFormatIDRef>",
                esc(t)
            );
        }
        let _ = writeln!(x, "{ind}</audioStreamFormat>");
    }
    for t in &doc.track_formats {
        let _ = writeln!(
            x,
            "{ind}<audioTrackFormat audioTrackFormatID=\"{}\" audioTrackFormatName=\"PCM_{}\" \
             formatLabel=\"0001\" formatDefinition=\"PCM\">",
            esc(&t.id),
            esc(&t.id)
        );
        if let Some(s) = &t.stream_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioStreamFormatIDRef>{}</audioStreamFormatIDRef>",
                esc(s)
            );
        }
        let _ = writeln!(x, "{ind}</audioTrackFormat>");
    }
    for u in &doc.track_uids {
        let _ = writeln!(x, "{ind}<audioTrackUID UID=\"{}\">", esc(&u.id));
        if let Some(t) = &u.track_format_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioTrackFormatIDRef>{}</audioTrackFormatIDRef>",
                esc(t)
            );
        }
        if let Some(c) = &u.channel_format_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioChannelFormatIDRef>{}</audioChannelFormatIDRef>",
                esc(c)
            );
        }
        if let Some(p) = &u.pack_ref {
            let _ = writeln!(
                x,
                "{ind}  <audioPackFormatIDRef>{}</audioPackFormatIDRef>",
                esc(p)
            );
        }
        let _ = writeln!(x, "{ind}</audioTrackUID>");
    }
}

pub(super) fn write_loudness(x: &mut String, l: Option<&AdmLoudness>, ind: &str) {
    let Some(l) = l else { return };
    let _ = writeln!(
        x,
        "{ind}  <loudnessMetadata loudnessMethod=\"ITU-R BS.1770\">"
    );
    if let Some(v) = l.integrated_lufs {
        let _ = writeln!(x, "{ind}    <integratedLoudness>{v:?}</integratedLoudness>");
    }
    if let Some(v) = l.loudness_range_lu {
        let _ = writeln!(x, "{ind}    <loudnessRange>{v:?}</loudnessRange>");
    }
    if let Some(v) = l.max_true_peak_dbtp {
        let _ = writeln!(x, "{ind}    <maxTruePeak>{v:?}</maxTruePeak>");
    }
    let _ = writeln!(x, "{ind}  </loudnessMetadata>");
}

pub(super) fn write_block(x: &mut String, b: &BlockFormat, t: TypeDefinition, ind: &str) {
    let _ = write!(
        x,
        "{ind}  <audioBlockFormat audioBlockFormatID=\"{}\"",
        esc(&b.id)
    );
    if let Some(r) = b.rtime {
        let _ = write!(x, " rtime=\"{r}\"");
    }
    if let Some(d) = b.duration {
        let _ = write!(x, " duration=\"{d}\"");
    }
    if let Some(k) = &b.halo_keys {
        let _ = write!(x, " halo:keys=\"{}\"", esc(k));
    }
    if let Some(db) = b.halo_gain_db {
        let _ = write!(x, " halo:gainDb=\"{db:?}\"");
    }
    x.push_str(">\n");
    let i2 = format!("{ind}    ");
    for l in &b.speaker_labels {
        let _ = writeln!(x, "{i2}<speakerLabel>{}</speakerLabel>", esc(l));
    }
    match b.position {
        Some(BlockPosition::Polar {
            azimuth,
            elevation,
            distance,
        }) => {
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"azimuth\"{}>{azimuth:?}</position>",
                edge_lock(&b.controls, true)
            );
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"elevation\"{}>{elevation:?}</position>",
                edge_lock(&b.controls, false)
            );
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"distance\">{distance:?}</position>"
            );
            for (coordinate, range) in [
                ("azimuth", b.azimuth_range_deg),
                ("elevation", b.elevation_range_deg),
            ] {
                if let Some((lo, hi)) = range {
                    let _ = writeln!(
                        x,
                        "{i2}<position coordinate=\"{coordinate}\" bound=\"min\">{lo:?}</position>"
                    );
                    let _ = writeln!(
                        x,
                        "{i2}<position coordinate=\"{coordinate}\" bound=\"max\">{hi:?}</position>"
                    );
                }
            }
        }
        Some(BlockPosition::Cartesian { x: px, y, z }) => {
            let _ = writeln!(x, "{i2}<cartesian>1</cartesian>");
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"X\"{}>{px:?}</position>",
                edge_lock(&b.controls, true)
            );
            let _ = writeln!(x, "{i2}<position coordinate=\"Y\">{y:?}</position>");
            let _ = writeln!(
                x,
                "{i2}<position coordinate=\"Z\"{}>{z:?}</position>",
                edge_lock(&b.controls, false)
            );
        }
        None => {}
    }
    if t == TypeDefinition::Objects {
        match b.gain_db {
            Some(db) => {
                let _ = writeln!(x, "{i2}<gain gainUnit=\"dB\">{db:?}</gain>");
            }
            None => {
                let _ = writeln!(x, "{i2}<gain>{:?}</gain>", b.gain);
            }
        }
        let _ = writeln!(x, "{i2}<width>{:?}</width>", b.width);
        let _ = writeln!(x, "{i2}<height>{:?}</height>", b.height);
        let _ = writeln!(x, "{i2}<depth>{:?}</depth>", b.depth);
        if b.jump_position {
            match b.interpolation_length {
                Some(l) => {
                    let _ = writeln!(
                        x,
                        "{i2}<jumpPosition interpolationLength=\"{:?}\">1</jumpPosition>",
                        l.seconds_f64()
                    );
                }
                None => {
                    let _ = writeln!(x, "{i2}<jumpPosition>1</jumpPosition>");
                }
            }
        } else {
            let _ = writeln!(x, "{i2}<jumpPosition>0</jumpPosition>");
        }
        match (b.headphone_bypass, b.headphone_drr_db) {
            (true, _) => {
                let _ = writeln!(x, "{i2}<headphoneVirtualise bypass=\"1\"/>");
            }
            (false, Some(drr)) => {
                let _ = writeln!(x, "{i2}<headphoneVirtualise bypass=\"0\" DRR=\"{drr:?}\"/>");
            }
            (false, None) => {}
        }
        let cartesian = matches!(b.position, Some(BlockPosition::Cartesian { .. }));
        write_block_controls(x, &b.controls, cartesian, &i2);
    }
    let _ = writeln!(x, "{ind}  </audioBlockFormat>");
}

/// The ` screenEdgeLock="…"` attribute of a horizontal (azimuth, X) or vertical
/// (elevation, Z) position coordinate, or nothing.
fn edge_lock(c: &BlockControls, horizontal: bool) -> &'static str {
    use crate::scene::mix::ScreenEdge;
    c.screen_edge_lock
        .iter()
        .find_map(|e| match (e, horizontal) {
            (ScreenEdge::Left, true) => Some(" screenEdgeLock=\"left\""),
            (ScreenEdge::Right, true) => Some(" screenEdgeLock=\"right\""),
            (ScreenEdge::Top, false) => Some(" screenEdgeLock=\"top\""),
            (ScreenEdge::Bottom, false) => Some(" screenEdgeLock=\"bottom\""),
            _ => None,
        })
        .unwrap_or("")
}

/// The BS.2076 object elements of an Objects block beyond position, gain and extent:
/// diffuse, channelLock, objectDivergence, zoneExclusion, screenRef (defaults left out).
fn write_block_controls(x: &mut String, c: &BlockControls, cartesian: bool, i2: &str) {
    use crate::scene::mix::ExclusionZone;
    if c.diffuse != 0.0 {
        let _ = writeln!(x, "{i2}<diffuse>{:?}</diffuse>", c.diffuse);
    }
    match c.channel_lock {
        None => {}
        Some(None) => {
            let _ = writeln!(x, "{i2}<channelLock>1</channelLock>");
        }
        Some(Some(m)) => {
            let _ = writeln!(x, "{i2}<channelLock maxDistance=\"{m:?}\">1</channelLock>");
        }
    }
    if c.divergence != 0.0 || c.divergence_range.is_some() {
        // The range attribute of the block's coordinates (BS.2076: azimuthRange for polar
        // blocks, positionRange for Cartesian ones; EAR warns about the other kind).
        let range = c.divergence_range.map_or(String::new(), |r| {
            if cartesian {
                format!(" positionRange=\"{:?}\"", r.min(1.0))
            } else {
                format!(" azimuthRange=\"{r:?}\"")
            }
        });
        let _ = writeln!(
            x,
            "{i2}<objectDivergence{range}>{:?}</objectDivergence>",
            c.divergence
        );
    }
    if !c.zones.is_empty() {
        let _ = writeln!(x, "{i2}<zoneExclusion>");
        for z in &c.zones {
            match z {
                ExclusionZone::Cartesian {
                    min_x,
                    max_x,
                    min_y,
                    max_y,
                    min_z,
                    max_z,
                } => {
                    let _ = writeln!(
                        x,
                        "{i2}  <zone minX=\"{min_x:?}\" maxX=\"{max_x:?}\" minY=\"{min_y:?}\" \
                         maxY=\"{max_y:?}\" minZ=\"{min_z:?}\" maxZ=\"{max_z:?}\"/>"
                    );
                }
                ExclusionZone::Polar {
                    min_azimuth_deg,
                    max_azimuth_deg,
                    min_elevation_deg,
                    max_elevation_deg,
                } => {
                    let _ = writeln!(
                        x,
                        "{i2}  <zone minElevation=\"{min_elevation_deg:?}\" \
                         maxElevation=\"{max_elevation_deg:?}\" \
                         minAzimuth=\"{min_azimuth_deg:?}\" maxAzimuth=\"{max_azimuth_deg:?}\"/>"
                    );
                }
                ExclusionZone::Speaker(name) => {
                    // halo's speaker shorthand: a polar zone of ±0.5° around the speaker's
                    // BS.2051 nominal direction, named by the speaker (an unknown name
                    // excludes nothing); the reader turns it back into the shorthand.
                    if let Some([min_el, max_el, min_az, max_az]) = speaker_zone(name) {
                        let _ = writeln!(
                            x,
                            "{i2}  <zone minElevation=\"{min_el:?}\" maxElevation=\"{max_el:?}\" \
                             minAzimuth=\"{min_az:?}\" maxAzimuth=\"{max_az:?}\">{}</zone>",
                            esc(name)
                        );
                    }
                }
            }
        }
        let _ = writeln!(x, "{i2}</zoneExclusion>");
    }
    if c.screen_ref {
        let _ = writeln!(x, "{i2}<screenRef>1</screenRef>");
    }
}

/// The BS.2051 nominal direction (azimuth, elevation, degrees) of a speaker named by its
/// BS.2051 name (`U+045`: layer M 0°, U 30°, T 90°, B −30°) or by a built-in layout's
/// short label (`Ls`).
/// The polar zone halo writes for a speaker zone (`ExclusionZone::Speaker`): minimum and
/// maximum elevation, minimum and maximum azimuth, ±0.5° around the speaker's BS.2051
/// nominal direction; `None` for a name that is no BS.2051 speaker.
pub(super) fn speaker_zone(name: &str) -> Option<[f64; 4]> {
    let (az, el) = nominal_direction(name)?;
    Some([
        (el - 0.5).max(-90.0),
        (el + 0.5).min(90.0),
        wrap_deg(az - 0.5),
        wrap_deg(az + 0.5),
    ])
}

fn nominal_direction(name: &str) -> Option<(f64, f64)> {
    let full = Layout::builtin_names()
        .into_iter()
        .filter_map(|l| Layout::builtin(l).ok())
        .flat_map(|l| l.channels)
        .find(|c| c.label.eq_ignore_ascii_case(name) || c.name.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_ascii_uppercase(), |c| c.name);
    let el = match full.get(..1)? {
        "M" => 0.0,
        "U" => 30.0,
        "T" => 90.0,
        "B" => -30.0,
        _ => return None,
    };
    let az: f64 = full.get(1..)?.parse().ok()?;
    let az = if az.abs() > 180.0 { return None } else { az };
    Some((az, el))
}
