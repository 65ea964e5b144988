//! Reading an `axml` chunk (ITU-R BS.2076-2 XML) into an [`AdmDocument`]: bounded, no DTDs
//! or entities, every reference checked.

use super::*;

#[derive(Debug, Default)]
pub(super) struct El {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    fn texts(&self, name: &str) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.text.trim().to_string())
            .collect()
    }
}

pub(super) fn local(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => name.to_string(),
    }
}

pub(super) fn start_el(e: &BytesStart, offset: u64) -> Result<El, AdmError> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| AdmError::Xml {
            offset,
            message: err.to_string(),
        })?;
        let key: &str = a.key.as_ref();
        let value = a
            .normalized_value(quick_xml::XmlVersion::default())
            .map_err(|err| AdmError::Forbidden {
                offset,
                what: format!("attribute {key}: {err}"),
                allowed: "only the predefined entities (&amp; &lt; &gt; &quot; &apos;) and \
                      character references"
                    .into(),
            })?;
        // Attributes are referred to by their local name, except halo's own.
        let key = if key.starts_with("halo:") || key.starts_with("xmlns") {
            key.to_string()
        } else {
            local(key)
        };
        attrs.push((key, value.into_owned()));
    }
    Ok(El {
        name: local(e.name().as_ref()),
        attrs,
        ..El::default()
    })
}

/// Parses an `axml` chunk (with or without the `ebuCoreMain` wrapper). DOCTYPEs and
/// entity references other than the predefined ones are refused; sizes are bounded by
/// [`MAX_AXML_BYTES`], [`MAX_ELEMENTS`], [`MAX_DEPTH`], [`MAX_BLOCKS_PER_CHANNEL`].
pub fn parse_axml(xml: &[u8]) -> Result<AdmDocument, AdmError> {
    if xml.len() > MAX_AXML_BYTES {
        return Err(AdmError::TooLarge {
            what: "the axml chunk's size in bytes".into(),
            value: xml.len() as u64,
            max: MAX_AXML_BYTES as u64,
        });
    }
    // The chunk may be padded with NUL bytes to an even or fixed size.
    let end = xml.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&xml[..end]).map_err(|e| AdmError::Xml {
        offset: e.valid_up_to() as u64,
        message: "the text is not UTF-8".into(),
    })?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut doc = AdmDocument::default();
    let mut stack: Vec<El> = Vec::new();
    let mut afe_depth: Option<usize> = None;
    let mut found_afe = false;
    let mut elements = 0usize;
    let mut ignored: Vec<String> = Vec::new();
    loop {
        let offset = reader.buffer_position();
        let event = reader.read_event().map_err(|e| AdmError::Xml {
            offset: reader.error_position(),
            message: e.to_string(),
        })?;
        match event {
            Event::Start(e) => {
                elements += 1;
                check_counts(elements, stack.len() + 1)?;
                let el = start_el(&e, offset)?;
                if el.attrs.iter().any(|(k, _)| k == "xmlns:halo") {
                    doc.halo_written = true;
                }
                if el.name == "audioFormatExtended" && afe_depth.is_none() {
                    afe_depth = Some(stack.len());
                    found_afe = true;
                }
                stack.push(el);
            }
            Event::Empty(e) => {
                elements += 1;
                check_counts(elements, stack.len() + 1)?;
                let el = start_el(&e, offset)?;
                if el.name == "audioFormatExtended" && afe_depth.is_none() {
                    found_afe = true;
                    continue;
                }
                close(el, &mut stack, &mut afe_depth, &mut doc, &mut ignored)?;
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(AdmError::Xml {
                        offset,
                        message: "a closing tag without an opening tag".into(),
                    });
                };
                close(el, &mut stack, &mut afe_depth, &mut doc, &mut ignored)?;
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let ch = match &*r.xml10_content() {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => r.resolve_char_ref().ok().flatten(),
                };
                match ch {
                    Some(c) => {
                        if let Some(top) = stack.last_mut() {
                            top.text.push(c);
                        }
                    }
                    None => {
                        return Err(AdmError::Forbidden {
                            offset,
                            what: format!("the entity reference &{};", &*r.xml10_content()),
                            allowed: "only the predefined entities (&amp; &lt; &gt; &quot; \
                                      &apos;) and character references; entities are never \
                                      expanded"
                                .into(),
                        });
                    }
                }
            }
            Event::DocType(_) => {
                return Err(AdmError::Forbidden {
                    offset,
                    what: "a DOCTYPE declaration".into(),
                    allowed: "no DOCTYPE: halo never loads DTDs or external entities".into(),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(AdmError::Xml {
            offset: text.len() as u64,
            message: format!("the document ends inside <{}> (cut short?)", open.name),
        });
    }
    if !found_afe {
        return Err(invalid(
            "axml",
            "there is no audioFormatExtended element",
            "an ADM document: <ebuCoreMain>…<audioFormatExtended>…</audioFormatExtended>… or \
             a bare <audioFormatExtended>",
        ));
    }
    for name in ignored {
        doc.warnings.push(format!(
            "{name} elements are not supported and were ignored"
        ));
    }
    check_references(&doc)?;
    doc.warnings = fold_channel_warnings(std::mem::take(&mut doc.warnings));
    Ok(doc)
}

/// The same warning about many channel formats (`audioChannelFormat AC_…: diffuse is not
/// supported`) becomes one line with the count and the first channel.
fn fold_channel_warnings(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<(String, usize, String)> = Vec::new();
    for line in lines {
        let (first, message) = match line
            .strip_prefix("audioChannelFormat ")
            .and_then(|rest| rest.split_once(": "))
        {
            Some((id, message)) => (id.to_string(), message.to_string()),
            None => (String::new(), line),
        };
        match out.iter_mut().find(|o| o.0 == message && !first.is_empty()) {
            Some(o) => o.1 += 1,
            None => out.push((message, 1, first)),
        }
    }
    out.into_iter()
        .map(|(message, count, first)| match count {
            _ if first.is_empty() => message,
            1 => format!("audioChannelFormat {first}: {message}"),
            n => format!("{n} audioChannelFormats (first {first}): {message}"),
        })
        .collect()
}

pub(super) fn check_counts(elements: usize, depth: usize) -> Result<(), AdmError> {
    if elements > MAX_ELEMENTS {
        return Err(AdmError::TooLarge {
            what: "the number of XML elements".into(),
            value: elements as u64,
            max: MAX_ELEMENTS as u64,
        });
    }
    if depth > MAX_DEPTH {
        return Err(AdmError::TooLarge {
            what: "the XML nesting depth".into(),
            value: depth as u64,
            max: MAX_DEPTH as u64,
        });
    }
    Ok(())
}

/// An element is complete: a top-level ADM element is converted, one inside it attached
/// to its parent, one outside `audioFormatExtended` dropped.
pub(super) fn close(
    el: El,
    stack: &mut [El],
    afe_depth: &mut Option<usize>,
    doc: &mut AdmDocument,
    ignored: &mut Vec<String>,
) -> Result<(), AdmError> {
    let depth = stack.len();
    match *afe_depth {
        Some(d) if depth == d => {
            // audioFormatExtended itself closes.
            *afe_depth = None;
        }
        Some(d) if depth == d + 1 => add_top_level(el, doc, ignored)?,
        Some(_) => {
            if let Some(parent) = stack.last_mut() {
                parent.children.push(el);
            }
        }
        None => {}
    }
    Ok(())
}

pub(super) fn add_top_level(
    el: El,
    doc: &mut AdmDocument,
    ignored: &mut Vec<String>,
) -> Result<(), AdmError> {
    match el.name.as_str() {
        "audioProgramme" => {
            let id = required_id(&el, "audioProgrammeID")?;
            let p = Programme {
                name: el
                    .attr("audioProgrammeName")
                    .unwrap_or_default()
                    .to_string(),
                start: opt_time(&el, "start", &id)?,
                end: opt_time(&el, "end", &id)?,
                content_refs: el.texts("audioContentIDRef"),
                loudness: loudness(&el, &id)?,
                reference_screen: reference_screen(&el, &id)?,
                id,
            };
            doc.programmes.push(p);
        }
        "audioContent" => {
            let id = required_id(&el, "audioContentID")?;
            doc.contents.push(Content {
                name: el.attr("audioContentName").unwrap_or_default().to_string(),
                object_refs: el.texts("audioObjectIDRef"),
                loudness: loudness(&el, &id)?,
                id,
            });
        }
        "audioObject" => {
            let id = required_id(&el, "audioObjectID")?;
            let element = format!("audioObject {id}");
            let (gain, gain_db) = match el.child("gain") {
                Some(g) => parse_gain(g, &element)?,
                None => (1.0, None),
            };
            let mute = match el.child("mute") {
                Some(m) => parse_flag(&m.text, &format!("{element}: mute"))?,
                None => false,
            };
            if el.child("audioObjectInteraction").is_some() {
                doc.warnings.push(format!(
                    "{element}: audioObjectInteraction is not supported (ignored: rendered \
                     without interaction limits)"
                ));
            }
            let alternatives = el.texts("audioComplementaryObjectIDRef");
            if !alternatives.is_empty() {
                doc.complementary.push((id.clone(), alternatives));
            }
            let halo_binaural = match el.attr("halo:binaural") {
                None => None,
                Some("off") => Some(BinauralMode::Off),
                Some("near") => Some(BinauralMode::Near),
                Some("mid") => Some(BinauralMode::Mid),
                Some("far") => Some(BinauralMode::Far),
                Some(v) => {
                    return Err(invalid(
                        &element,
                        format!("halo:binaural = {v:?} is not a binaural mode"),
                        "off, near, mid, far",
                    ));
                }
            };
            doc.objects.push(AudioObject {
                name: el.attr("audioObjectName").unwrap_or_default().to_string(),
                start: opt_time(&el, "start", &element)?,
                duration: opt_time(&el, "duration", &element)?,
                pack_refs: el.texts("audioPackFormatIDRef"),
                object_refs: el.texts("audioObjectIDRef"),
                track_uid_refs: el.texts("audioTrackUIDRef"),
                gain,
                gain_db,
                mute,
                halo_binaural,
                importance: match el.attr("importance") {
                    Some(v) => Some(parse_number(v, &element, "importance", 0.0, 10.0)? as u8),
                    None => None,
                },
                id,
            });
        }
        "audioPackFormat" => {
            let id = required_id(&el, "audioPackFormatID")?;
            let type_def = type_of(&el, &id)?;
            doc.pack_formats.push(PackFormat {
                name: el
                    .attr("audioPackFormatName")
                    .unwrap_or_default()
                    .to_string(),
                type_def,
                channel_refs: el.texts("audioChannelFormatIDRef"),
                pack_refs: el.texts("audioPackFormatIDRef"),
                matrix_output_pack: el
                    .child("outputPackFormatIDRef")
                    .map(|c| c.text.trim().to_string())
                    .filter(|t| !t.is_empty() && t.len() <= 64),
                id,
            });
        }
        "audioChannelFormat" => {
            let cf = channel_format(&el, &mut doc.warnings)?;
            doc.channel_formats.push(cf);
        }
        "audioStreamFormat" => {
            let id = required_id(&el, "audioStreamFormatID")?;
            doc.stream_formats.push(StreamFormat {
                channel_ref: el.texts("audioChannelFormatIDRef").into_iter().next(),
                pack_ref: el.texts("audioPackFormatIDRef").into_iter().next(),
                track_refs: el.texts("audioTrackFormatIDRef"),
                id,
            });
        }
        "audioTrackFormat" => {
            let id = required_id(&el, "audioTrackFormatID")?;
            doc.track_formats.push(TrackFormat {
                stream_ref: el.texts("audioStreamFormatIDRef").into_iter().next(),
                id,
            });
        }
        "audioTrackUID" => {
            let id = required_id(&el, "UID")?;
            doc.track_uids.push(TrackUid {
                track_format_ref: el.texts("audioTrackFormatIDRef").into_iter().next(),
                channel_format_ref: el.texts("audioChannelFormatIDRef").into_iter().next(),
                pack_ref: el.texts("audioPackFormatIDRef").into_iter().next(),
                id,
            });
        }
        other => {
            if !ignored.iter().any(|n| n == other) {
                ignored.push(other.to_string());
            }
        }
    }
    Ok(())
}

pub(super) fn required_id(el: &El, attr: &str) -> Result<String, AdmError> {
    match el.attr(attr) {
        Some(id) if !id.trim().is_empty() && id.len() <= 64 => Ok(id.trim().to_string()),
        Some(id) => Err(invalid(
            &el.name,
            format!("{attr} = {id:?} is not an ID"),
            "a non-empty ID of at most 64 characters, e.g. AO_1001",
        )),
        None => Err(invalid(
            &el.name,
            format!("the {attr} attribute is missing"),
            &format!("every {} has an {attr}", el.name),
        )),
    }
}

pub(super) fn parse_time(s: &str, element: &str, what: &str) -> Result<AdmTime, AdmError> {
    AdmTime::parse(s).ok_or_else(|| {
        invalid(
            element,
            format!("{what} {s:?} is not a time"),
            "hh:mm:ss.fffff (e.g. 00:00:01.50000) or hh:mm:ss.nnnnnSrrrrr (n samples at \
             r Hz, BS.2076-2)",
        )
    })
}

pub(super) fn opt_time(el: &El, attr: &str, element: &str) -> Result<Option<AdmTime>, AdmError> {
    el.attr(attr)
        .map(|s| parse_time(s, element, attr))
        .transpose()
}

pub(super) fn parse_number(
    s: &str,
    element: &str,
    what: &str,
    lo: f64,
    hi: f64,
) -> Result<f64, AdmError> {
    // The messages are formatted only on error: a master has a number per coordinate
    // per block, and formatting them all was 3 % of a 128-object render.
    let allowed = || format!("a number from {lo} to {hi}");
    let v: f64 = s.trim().parse().map_err(|_| {
        invalid(
            element,
            format!("{what} {:?} is not a number", s.trim()),
            &allowed(),
        )
    })?;
    if !v.is_finite() {
        return Err(invalid(
            element,
            format!("{what} {} is not a finite number", s.trim()),
            &allowed(),
        ));
    }
    if !(lo..=hi).contains(&v) {
        return Err(invalid(
            element,
            format!("{what} {v} is out of range"),
            &allowed(),
        ));
    }
    Ok(v)
}

pub(super) fn parse_flag(s: &str, element: &str) -> Result<bool, AdmError> {
    match s.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(invalid(
            element,
            format!("{other:?} is not a flag"),
            "0 or 1",
        )),
    }
}

/// A `gain` element: (linear gain, the dB value when written in dB).
pub(super) fn parse_gain(g: &El, element: &str) -> Result<(f64, Option<f64>), AdmError> {
    match g.attr("gainUnit").unwrap_or("linear") {
        "linear" => {
            let lin = parse_number(&g.text, element, "gain", 0.0, 15.85)?;
            // halo's exact dB value beside a linear gain (the Dolby Atmos profile form).
            let db = g
                .attr("halo:gainDb")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite());
            Ok((lin, db))
        }
        "dB" => {
            let db = parse_number(&g.text, element, "gain (dB)", -1e9, 24.0)?;
            Ok((10f64.powf(db / 20.0), Some(db)))
        }
        other => Err(invalid(
            element,
            format!("gainUnit {other:?} is not a gain unit"),
            "linear or dB",
        )),
    }
}

pub(super) fn loudness(el: &El, element: &str) -> Result<Option<AdmLoudness>, AdmError> {
    let Some(l) = el.child("loudnessMetadata") else {
        return Ok(None);
    };
    let field = |name: &str, lo: f64, hi: f64| -> Result<Option<f64>, AdmError> {
        l.child(name)
            .map(|c| {
                parse_number(
                    &c.text,
                    &format!("{element}: loudnessMetadata"),
                    name,
                    lo,
                    hi,
                )
            })
            .transpose()
    };
    Ok(Some(AdmLoudness {
        integrated_lufs: field("integratedLoudness", -200.0, 30.0)?,
        max_true_peak_dbtp: field("maxTruePeak", -200.0, 30.0)?,
        loudness_range_lu: field("loudnessRange", 0.0, 200.0)?,
    }))
}

/// A programme's `audioProgrammeReferenceScreen` (BS.2076-2 §5.2.1): `aspectRatio`, a
/// `screenCentrePosition` (azimuth, elevation, distance or X, Y, Z) and a `screenWidth`
/// (azimuth or X) of the same form; checked to be a screen BS.2127 can scale from.
pub(super) fn reference_screen(
    el: &El,
    programme: &str,
) -> Result<Option<crate::scene::mix::ReferenceScreen>, AdmError> {
    use crate::scene::mix::ReferenceScreen as R;
    let Some(s) = el.child("audioProgrammeReferenceScreen") else {
        return Ok(None);
    };
    let element = format!("audioProgramme {programme}: audioProgrammeReferenceScreen");
    let number = |text: &str, what: &str| -> Result<f64, AdmError> {
        let allowed = "a finite number";
        let v: f64 = text.trim().parse().map_err(|_| {
            invalid(
                &element,
                format!("{what} {:?} is not a number", text.trim()),
                allowed,
            )
        })?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(invalid(
                &element,
                format!("{what} {} is not a finite number", text.trim()),
                allowed,
            ))
        }
    };
    // aspectRatio: an attribute (BS.2076-2), or a child element as some tools write it.
    let aspect_ratio = match (s.attr("aspectRatio"), s.child("aspectRatio")) {
        (Some(a), _) => number(a, "aspectRatio")?,
        (None, Some(c)) => number(&c.text, "aspectRatio")?,
        (None, None) => {
            return Err(invalid(
                &element,
                "the aspectRatio is missing",
                "aspectRatio=\"1.78\" (width / height, above 0)",
            ));
        }
    };
    let Some(centre) = s.child("screenCentrePosition") else {
        return Err(invalid(
            &element,
            "the screenCentrePosition is missing",
            "<screenCentrePosition azimuth=\"0\" elevation=\"0\" distance=\"1\"/> or \
             X, Y, Z attributes",
        ));
    };
    let Some(width) = s.child("screenWidth") else {
        return Err(invalid(
            &element,
            "the screenWidth is missing",
            "<screenWidth azimuth=\"58\"/> (polar) or <screenWidth X=\"1\"/> (Cartesian)",
        ));
    };
    let attr = |e: &El, name: &str| -> Result<Option<f64>, AdmError> {
        e.attr(name)
            .map(|v| number(v, &format!("{} {name}", e.name)))
            .transpose()
    };
    let polar = (attr(centre, "azimuth")?, attr(centre, "elevation")?);
    let cart = (attr(centre, "X")?, attr(centre, "Y")?, attr(centre, "Z")?);
    let screen = match (polar, cart, attr(width, "azimuth")?, attr(width, "X")?) {
        ((Some(az), Some(el_)), (None, None, None), Some(w), None) => R::Polar {
            aspect_ratio,
            azimuth_deg: az,
            elevation_deg: el_,
            distance: attr(centre, "distance")?.unwrap_or(1.0),
            width_deg: w,
        },
        ((None, None), (Some(x), Some(y), Some(z)), None, Some(w)) => R::Cartesian {
            aspect_ratio,
            x,
            y,
            z,
            width: w,
        },
        _ => {
            return Err(invalid(
                &element,
                "screenCentrePosition and screenWidth are not both polar or both Cartesian",
                "screenCentrePosition azimuth, elevation (distance optional) with screenWidth \
                 azimuth, or screenCentrePosition X, Y, Z with screenWidth X",
            ));
        }
    };
    if let Some((problem, allowed)) =
        crate::spatial::objectbased::screen::reference_problem(&screen)
    {
        return Err(invalid(&element, problem, allowed));
    }
    Ok(Some(screen))
}

pub(super) fn type_of(el: &El, id: &str) -> Result<TypeDefinition, AdmError> {
    let label = el.attr("typeDefinition").or(el.attr("typeLabel"));
    // IDs carry the type too: AP_yyyyxxxx, AC_yyyyxxxx.
    let from_id = id.get(3..7).and_then(TypeDefinition::from_label);
    match label {
        Some(l) => TypeDefinition::from_label(l).ok_or_else(|| {
            invalid(
                format!("{} {id}", el.name),
                format!("typeDefinition {l:?} is not an ADM type"),
                "DirectSpeakers (0001), Matrix (0002), Objects (0003), HOA (0004), Binaural (0005)",
            )
        }),
        None => from_id.ok_or_else(|| {
            invalid(
                format!("{} {id}", el.name),
                "neither typeDefinition nor typeLabel is given".to_string(),
                "typeDefinition=\"Objects\" or typeLabel=\"0003\" (and the other types)",
            )
        }),
    }
}

pub(super) fn channel_format(
    el: &El,
    warnings: &mut Vec<String>,
) -> Result<ChannelFormat, AdmError> {
    let id = required_id(el, "audioChannelFormatID")?;
    let type_def = type_of(el, &id)?;
    let element = format!("audioChannelFormat {id}");
    let n_blocks = el
        .children
        .iter()
        .filter(|c| c.name == "audioBlockFormat")
        .count();
    if n_blocks > MAX_BLOCKS_PER_CHANNEL {
        return Err(AdmError::TooLarge {
            what: format!("the number of audioBlockFormats in {element}"),
            value: n_blocks as u64,
            max: MAX_BLOCKS_PER_CHANNEL as u64,
        });
    }
    let mut low_pass_hz = None;
    for f in el.children.iter().filter(|c| c.name == "frequency") {
        if f.attr("typeDefinition") == Some("lowPass") {
            low_pass_hz = Some(parse_number(&f.text, &element, "frequency", 0.0, 1e6)?);
        }
    }
    let mut blocks: Vec<BlockFormat> = Vec::with_capacity(n_blocks);
    let mut warned: Vec<&str> = Vec::new();
    for b in el.children.iter().filter(|c| c.name == "audioBlockFormat") {
        let block = block_format(b, type_def, &element, &mut warned)?;
        // Order: each block starts at or after the previous block's end.
        if let Some(prev) = blocks.last() {
            let bel = format!("audioBlockFormat {}", block.id);
            // A first block may give a duration without an rtime (it starts at 0).
            let prt = match prev.rtime {
                None if blocks.len() == 1 => Some(AdmTime::ZERO),
                t => t,
            };
            let (Some(prt), Some(rt)) = (prt, block.rtime) else {
                return Err(invalid(
                    bel,
                    "a channel with several blocks needs rtime and duration on every block",
                    "rtime=\"hh:mm:ss.fffff\" duration=\"hh:mm:ss.fffff\" on each block",
                ));
            };
            let Some(pd) = prev.duration else {
                return Err(invalid(
                    format!("audioBlockFormat {}", prev.id),
                    "a block followed by another has no duration",
                    "a duration on every block but the last",
                ));
            };
            let prev_end = prt.add(pd);
            // An overlap of DAW rounding size is fixed when the sample rate is known
            // (`import`: the block runs to the next rtime); a larger one is refused.
            if rt.cmp_time(prev_end) == std::cmp::Ordering::Less
                && (rt.cmp_time(prt) == std::cmp::Ordering::Less
                    || prev_end.seconds_f64() - rt.seconds_f64() > TIMING_TOLERANCE_S)
            {
                let problem = if rt.cmp_time(prt) == std::cmp::Ordering::Less {
                    format!(
                        "rtime {rt} is before the previous block's rtime {prt} (blocks out of order)"
                    )
                } else {
                    format!(
                        "rtime {rt} is before the previous block's end {prev_end} (blocks overlap)"
                    )
                };
                return Err(invalid(
                    bel,
                    problem,
                    "blocks in time order, each starting at or after the previous block's end \
                     (rtime + duration)",
                ));
            }
        }
        blocks.push(block);
    }
    for w in warned {
        warnings.push(format!("{element}: {w}"));
    }
    if !matches!(
        type_def,
        TypeDefinition::Objects
            | TypeDefinition::DirectSpeakers
            | TypeDefinition::Hoa
            | TypeDefinition::Matrix
    ) {
        warnings.push(format!(
            "{element} ({:?}): {} channels are not supported",
            el.attr("audioChannelFormatName").unwrap_or_default(),
            type_def.name()
        ));
    }
    Ok(ChannelFormat {
        name: el
            .attr("audioChannelFormatName")
            .unwrap_or_default()
            .to_string(),
        type_def,
        blocks,
        low_pass_hz,
        id,
    })
}

pub(super) const UNSUPPORTED_BLOCK_PARTS: [(&str, &str); 1] =
    [("headLocked", "headLocked is not supported")];

pub(super) fn block_format(
    b: &El,
    type_def: TypeDefinition,
    channel: &str,
    warned: &mut Vec<&'static str>,
) -> Result<BlockFormat, AdmError> {
    let id = match b.attr("audioBlockFormatID") {
        Some(id) if !id.trim().is_empty() && id.len() <= 64 => id.trim().to_string(),
        _ => {
            return Err(invalid(
                format!("{channel}: audioBlockFormat"),
                "the audioBlockFormatID attribute is missing or empty",
                "audioBlockFormatID=\"AB_00031001_00000001\"",
            ));
        }
    };
    let element = format!("audioBlockFormat {id}");
    let mut block = BlockFormat::new(id);
    block.rtime = opt_time(b, "rtime", &element)?;
    block.duration = opt_time(b, "duration", &element)?;
    block.halo_keys = b.attr("halo:keys").map(str::to_string);
    if type_def == TypeDefinition::Matrix {
        block.matrix_output_ref = b
            .child("outputChannelFormatIDRef")
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty() && t.len() <= 64);
        block.matrix = matrix_coefficients(b, &element)?;
        return Ok(block);
    }
    if type_def == TypeDefinition::Hoa {
        let int = |name: &str| -> Result<Option<i64>, AdmError> {
            b.child(name)
                .map(|c| {
                    c.text
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|v| v.abs() <= 100)
                        .ok_or_else(|| {
                            invalid(
                                format!("{element}: {name}"),
                                format!(
                                    "{:?} is not a whole number from -100 to 100",
                                    c.text.trim()
                                ),
                                "an integer (order 0…10, degree −order…order)",
                            )
                        })
                })
                .transpose()
        };
        block.hoa_order = int("order")?.map(|v| v.unsigned_abs() as u32);
        block.hoa_degree = int("degree")?.map(|v| v as i32);
        block.hoa_normalization = b.child("normalization").map(|c| c.text.trim().to_string());
        return Ok(block);
    }
    if type_def != TypeDefinition::Objects && type_def != TypeDefinition::DirectSpeakers {
        return Ok(block);
    }
    let cartesian = match b.child("cartesian") {
        Some(c) => parse_flag(&c.text, &format!("{element}: cartesian"))?,
        None => false,
    };
    block.position = block_position(b, type_def, &element, cartesian, warned)?;
    if type_def == TypeDefinition::DirectSpeakers {
        block.polar_bounds = polar_bounds(b, &element)?;
    }
    if let Some(g) = b.child("gain") {
        let (lin, db) = parse_gain(g, &element)?;
        block.gain = lin;
        block.gain_db = db;
    }
    // halo's exact dB gain, written beside the linear gain of the Dolby Atmos profile.
    if let Some(db) = b
        .attr("halo:gainDb")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
    {
        block.gain_db = Some(db);
    }
    let (wmax, dmax) = if cartesian { (2.0, 2.0) } else { (360.0, 1.0) };
    if let Some(w) = b.child("width") {
        block.width = parse_number(&w.text, &element, "width", 0.0, wmax)?;
    }
    if let Some(h) = b.child("height") {
        block.height = parse_number(&h.text, &element, "height", 0.0, wmax)?;
    }
    if let Some(d) = b.child("depth") {
        block.depth = parse_number(&d.text, &element, "depth", 0.0, dmax)?;
    }
    block_jump(b, &element, &mut block)?;
    if type_def == TypeDefinition::Objects {
        block.controls = block_controls(b, &element, cartesian)?;
    }
    block.speaker_labels = b.texts("speakerLabel");
    if let Some(h) = b.child("headphoneVirtualise") {
        block.headphone_bypass = matches!(h.attr("bypass"), Some("1") | Some("true"));
        block.headphone_drr_db = h
            .attr("DRR")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite());
    }
    for (name, message) in UNSUPPORTED_BLOCK_PARTS {
        if b.child(name).is_some() && !warned.contains(&message) {
            warned.push(message);
        }
    }
    Ok(block)
}

/// The `coefficient`s of a Matrix block's `matrix` element.
fn matrix_coefficients(b: &El, element: &str) -> Result<Vec<MatrixCoefficient>, AdmError> {
    let Some(m) = b.child("matrix") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for c in m.children.iter().filter(|c| c.name == "coefficient") {
        let input_ref = c.text.trim().to_string();
        if input_ref.is_empty() || input_ref.len() > 64 {
            return Err(invalid(
                element,
                "a matrix coefficient names no input channel",
                "<coefficient gain=\"…\">AC_…</coefficient>",
            ));
        }
        let num = |name: &str, lo: f64, hi: f64| -> Result<Option<f64>, AdmError> {
            c.attr(name)
                .map(|v| parse_number(v, element, &format!("coefficient {name}"), lo, hi))
                .transpose()
        };
        out.push(MatrixCoefficient {
            gain: num("gain", -1e6, 1e6)?.unwrap_or(1.0),
            phase_deg: num("phase", -360.0, 360.0)?,
            delay_ms: num("delay", -1e6, 1e6)?,
            variable: ["gainVar", "phaseVar", "delayVar"]
                .iter()
                .any(|v| c.attr(v).is_some()),
            input_ref,
        });
    }
    Ok(out)
}

/// A DirectSpeakers block's `bound="min"`/`bound="max"` azimuth, elevation and distance
/// (Cartesian X, Y, Z bounds are not read).
fn polar_bounds(b: &El, element: &str) -> Result<[PolarBound; 3], AdmError> {
    let mut bounds = [(None, None); 3];
    for p in b.children.iter().filter(|c| c.name == "position") {
        let Some(bound) = p.attr("bound") else {
            continue;
        };
        let coord = p.attr("coordinate").unwrap_or_default();
        let (k, lo, hi) = match coord {
            "azimuth" => (0, -180.0, 180.0),
            "elevation" => (1, -90.0, 90.0),
            "distance" => (2, 0.0, 100.0),
            _ => continue,
        };
        let what = format!("position {coord} bound {bound:?}");
        let v = parse_number(&p.text, element, &what, lo, hi)?;
        match bound.trim() {
            "min" => bounds[k].0 = Some(v),
            "max" => bounds[k].1 = Some(v),
            other => {
                return Err(invalid(
                    element,
                    format!("position bound {other:?} is unknown"),
                    "bound=\"min\" or bound=\"max\"",
                ));
            }
        }
    }
    Ok(bounds)
}

/// The BS.2127 controls of an Objects block: diffuse, channelLock, objectDivergence,
/// zoneExclusion, screenRef, the positions' screenEdgeLock and importance.
fn block_controls(b: &El, element: &str, cartesian: bool) -> Result<BlockControls, AdmError> {
    use crate::scene::mix::{ExclusionZone, ScreenEdge};
    let mut c = BlockControls::default();
    if let Some(d) = b.child("diffuse") {
        c.diffuse = parse_number(&d.text, element, "diffuse", 0.0, 1.0)?;
    }
    if let Some(l) = b.child("channelLock")
        && parse_flag(&l.text, &format!("{element}: channelLock"))?
    {
        c.channel_lock = Some(match l.attr("maxDistance") {
            Some(m) => Some(parse_number(
                m,
                element,
                "channelLock maxDistance",
                0.0,
                2.0,
            )?),
            None => None,
        });
    }
    if let Some(d) = b.child("objectDivergence") {
        c.divergence = parse_number(&d.text, element, "objectDivergence", 0.0, 1.0)?;
        let (attr, hi) = if cartesian {
            ("positionRange", 1.0)
        } else {
            ("azimuthRange", 180.0)
        };
        if let Some(r) = d.attr(attr) {
            c.divergence_range = Some(parse_number(r, element, attr, 0.0, hi)?);
        }
    }
    if let Some(z) = b.child("zoneExclusion") {
        for zone in z.children.iter().filter(|c| c.name == "zone") {
            let num = |name: &str, lo: f64, hi: f64| -> Result<Option<f64>, AdmError> {
                match zone.attr(name) {
                    Some(v) => Ok(Some(parse_number(
                        v,
                        element,
                        &format!("zone {name}"),
                        lo,
                        hi,
                    )?)),
                    None => Ok(None),
                }
            };
            let cart = (
                num("minX", -1.0, 1.0)?,
                num("maxX", -1.0, 1.0)?,
                num("minY", -1.0, 1.0)?,
                num("maxY", -1.0, 1.0)?,
                num("minZ", -1.0, 1.0)?,
                num("maxZ", -1.0, 1.0)?,
            );
            let polar = (
                num("minAzimuth", -180.0, 180.0)?,
                num("maxAzimuth", -180.0, 180.0)?,
                num("minElevation", -90.0, 90.0)?,
                num("maxElevation", -90.0, 90.0)?,
            );
            match (cart, polar) {
                ((Some(a), Some(b_), Some(cy), Some(d), Some(e), Some(f)), _) => {
                    c.zones.push(ExclusionZone::Cartesian {
                        min_x: a,
                        max_x: b_,
                        min_y: cy,
                        max_y: d,
                        min_z: e,
                        max_z: f,
                    });
                }
                (_, (Some(a), Some(b_), Some(e), Some(f))) => {
                    // A zone named by a speaker with exactly the bounds halo writes for
                    // that speaker is halo's speaker shorthand (a round trip keeps it).
                    let name = zone.text.trim();
                    let speaker =
                        !name.is_empty() && super::write::speaker_zone(name) == Some([e, f, a, b_]);
                    c.zones.push(if speaker {
                        ExclusionZone::Speaker(name.to_string())
                    } else {
                        ExclusionZone::Polar {
                            min_azimuth_deg: a,
                            max_azimuth_deg: b_,
                            min_elevation_deg: e,
                            max_elevation_deg: f,
                        }
                    });
                }
                _ => {
                    return Err(invalid(
                        element,
                        "a zoneExclusion zone lacks some of its bounds",
                        "minX maxX minY maxY minZ maxZ, or minAzimuth maxAzimuth minElevation \
                         maxElevation",
                    ));
                }
            }
        }
    }
    if let Some(s) = b.child("screenRef") {
        c.screen_ref = parse_flag(&s.text, &format!("{element}: screenRef"))?;
    }
    for p in b.children.iter().filter(|c| c.name == "position") {
        let Some(lock) = p.attr("screenEdgeLock") else {
            continue;
        };
        let edge = match lock.trim() {
            "left" => ScreenEdge::Left,
            "right" => ScreenEdge::Right,
            "top" => ScreenEdge::Top,
            "bottom" => ScreenEdge::Bottom,
            other => {
                return Err(invalid(
                    element,
                    format!("screenEdgeLock {other:?} is not a screen edge"),
                    "left, right (azimuth or X), top, bottom (elevation or Z)",
                ));
            }
        };
        if !c.screen_edge_lock.contains(&edge) {
            c.screen_edge_lock.push(edge);
        }
    }
    if let Some(i) = b.child("importance") {
        c.importance = Some(parse_number(&i.text, element, "importance", 0.0, 10.0)? as u8);
    }
    Ok(c)
}

/// A block's `position`s (bounds skipped): polar or Cartesian; `None` only for a
/// DirectSpeakers block without one.
fn block_position(
    b: &El,
    type_def: TypeDefinition,
    element: &str,
    cartesian: bool,
    _warned: &mut Vec<&'static str>,
) -> Result<Option<BlockPosition>, AdmError> {
    let (mut az, mut el_, mut dist, mut x, mut y, mut z) = (None, None, None, None, None, None);
    for p in b.children.iter().filter(|c| c.name == "position") {
        if p.attr("bound").is_some() {
            continue; // DirectSpeakers min/max bounds: not used.
        }
        let coord = p.attr("coordinate").unwrap_or_default();
        let v = |what, lo, hi| parse_number(&p.text, element, what, lo, hi);
        match coord {
            "azimuth" => az = Some(v("position azimuth", -180.0, 180.0)?),
            "elevation" => el_ = Some(v("position elevation", -90.0, 90.0)?),
            "distance" => dist = Some(v("position distance", 0.0, 100.0)?),
            "X" => x = Some(v("position X", -1.0, 1.0)?),
            "Y" => y = Some(v("position Y", -1.0, 1.0)?),
            "Z" => z = Some(v("position Z", -1.0, 1.0)?),
            other => {
                return Err(invalid(
                    element,
                    format!("position coordinate {other:?} is unknown"),
                    "azimuth, elevation, distance (polar) or X, Y, Z (cartesian)",
                ));
            }
        }
    }
    let position = if cartesian || (az.is_none() && x.is_some()) {
        if az.is_some() || el_.is_some() {
            return Err(invalid(
                element,
                "a Cartesian block has a polar coordinate",
                "X, Y, Z with cartesian 1; azimuth, elevation, distance with cartesian 0",
            ));
        }
        match (x, y) {
            (Some(x), Some(y)) => Some(BlockPosition::Cartesian {
                x,
                y,
                z: z.unwrap_or(0.0),
            }),
            _ if type_def == TypeDefinition::DirectSpeakers => None,
            _ => {
                return Err(invalid(
                    element,
                    "a Cartesian position needs X and Y",
                    "<position coordinate=\"X\">…</position> and Y (Z optional, default 0)",
                ));
            }
        }
    } else {
        if x.is_some() || y.is_some() || z.is_some() {
            return Err(invalid(
                element,
                "a polar block (cartesian 0) has an X, Y or Z coordinate",
                "azimuth, elevation, distance with cartesian 0; X, Y, Z with cartesian 1",
            ));
        }
        match (az, el_) {
            (Some(a), e) => Some(BlockPosition::Polar {
                azimuth: a,
                elevation: e.unwrap_or(0.0),
                distance: dist.unwrap_or(1.0),
            }),
            (None, _) if type_def == TypeDefinition::DirectSpeakers => None,
            (None, _) => {
                return Err(invalid(
                    element,
                    "the block has no position",
                    "<position coordinate=\"azimuth\">…</position> (and elevation, distance) \
                     or X, Y, Z with <cartesian>1</cartesian>",
                ));
            }
        }
    };
    Ok(position)
}

/// A block's `jumpPosition` and `interpolationLength` (checked against its duration).
fn block_jump(b: &El, element: &str, block: &mut BlockFormat) -> Result<(), AdmError> {
    let element = element.to_string();
    if let Some(j) = b.child("jumpPosition") {
        block.jump_position = parse_flag(&j.text, &format!("{element}: jumpPosition"))?;
        if let Some(l) = j.attr("interpolationLength") {
            let l = l.trim();
            // BS.2076-2 gives the length in seconds as a decimal number; a time string is
            // accepted too.
            let t = if l.contains(':') {
                parse_time(l, &element, "interpolationLength")?
            } else {
                let secs = parse_number(l, &element, "interpolationLength", 0.0, 604_800.0)?;
                AdmTime {
                    seconds: secs.trunc() as u64,
                    num: (secs.fract() * 1e9).round().min(999_999_999.0) as u64,
                    den: 1_000_000_000,
                }
            };
            block.interpolation_length = Some(t);
        }
    }
    if let (Some(l), Some(d)) = (block.interpolation_length, block.duration)
        && block.jump_position
        && l.seconds_f64() - d.seconds_f64() > TIMING_TOLERANCE_S
    {
        return Err(invalid(
            &element,
            format!("interpolationLength {l} is longer than the block's duration {d}"),
            "an interpolation length of at most the block's duration (up to 10 ms more is clamped to it)",
        ));
    }
    Ok(())
}

/// Every ID reference inside the document points at a defined element (or a BS.2094
/// common definition halo knows). References to common definitions that are not in the
/// document are checked where they are used.
pub(super) fn check_references(doc: &AdmDocument) -> Result<(), AdmError> {
    let mut ids: HashMap<&str, &str> = HashMap::new();
    let all = doc
        .programmes
        .iter()
        .map(|p| (p.id.as_str(), "audioProgramme"))
        .chain(doc.contents.iter().map(|c| (c.id.as_str(), "audioContent")))
        .chain(doc.objects.iter().map(|o| (o.id.as_str(), "audioObject")))
        .chain(
            doc.pack_formats
                .iter()
                .map(|p| (p.id.as_str(), "audioPackFormat")),
        )
        .chain(
            doc.channel_formats
                .iter()
                .map(|c| (c.id.as_str(), "audioChannelFormat")),
        )
        .chain(
            doc.stream_formats
                .iter()
                .map(|s| (s.id.as_str(), "audioStreamFormat")),
        )
        .chain(
            doc.track_formats
                .iter()
                .map(|t| (t.id.as_str(), "audioTrackFormat")),
        )
        .chain(
            doc.track_uids
                .iter()
                .map(|u| (u.id.as_str(), "audioTrackUID")),
        );
    for (id, kind) in all {
        if let Some(other) = ids.insert(id, kind) {
            return Err(invalid(
                format!("{kind} {id}"),
                format!("the ID {id} is already used by an {other}"),
                "unique IDs",
            ));
        }
    }
    let check = |element: String, r: &str| -> Result<(), AdmError> {
        if ids.contains_key(r)
            || common_channel(r).is_some()
            || common_pack(r).is_some()
            || common_channel_of_track(r).is_some()
            || is_common_hoa(r)
        {
            Ok(())
        } else {
            Err(AdmError::UnknownRef {
                element,
                reference: r.to_string(),
                where_: " in the axml chunk (nor among the BS.2094 common definitions halo knows)"
                    .into(),
            })
        }
    };
    for p in &doc.programmes {
        for r in &p.content_refs {
            check(format!("audioProgramme {}", p.id), r)?;
        }
    }
    for c in &doc.contents {
        for r in &c.object_refs {
            check(format!("audioContent {}", c.id), r)?;
        }
    }
    for o in &doc.objects {
        for r in o
            .pack_refs
            .iter()
            .chain(&o.object_refs)
            .chain(&o.track_uid_refs)
        {
            check(format!("audioObject {}", o.id), r)?;
        }
    }
    for p in &doc.pack_formats {
        for r in p.channel_refs.iter().chain(&p.pack_refs) {
            check(format!("audioPackFormat {}", p.id), r)?;
        }
    }
    for s in &doc.stream_formats {
        for r in s.channel_ref.iter().chain(&s.pack_ref).chain(&s.track_refs) {
            check(format!("audioStreamFormat {}", s.id), r)?;
        }
    }
    for t in &doc.track_formats {
        if let Some(r) = &t.stream_ref {
            check(format!("audioTrackFormat {}", t.id), r)?;
        }
    }
    for u in &doc.track_uids {
        for r in u
            .track_format_ref
            .iter()
            .chain(&u.channel_format_ref)
            .chain(&u.pack_ref)
        {
            check(format!("audioTrackUID {}", u.id), r)?;
        }
    }
    Ok(())
}
