//! The public ADM corpus (`../shared/adm-corpus/public/`, masters from Pro Tools, Dolby,
//! EPS, the EBU tools, bmx and EAR's own test documents) rendered by halo to 7.1.4 and
//! compared with EAR 2.1.0's BS.2127 render to 4+7+0: per-channel energy within 1 dB and
//! total energy within 0.5 dB (channels matched by BS.2051 name).
//!
//! The reference figures are in `tests/data/adm/ear_reference.json`, made by
//! `tools/reference/adm_corpus.py`, which prepares each file exactly as [`prepare`] does
//! (test noise on silent tracks; a BW64 wrapper with a chna for bare axml documents).
//! Files halo does not match yet are listed in [`KNOWN_FAILURES`] with the reason; the test
//! fails when one of them starts to pass, so the list can only shrink.

use halo::drivers::exchange;
use halo::drivers::render::{self, RenderOptions};
use halo::formats::adm::{Chna, ChnaEntry, write_chna};
use halo::formats::io::{Chunk, WavReader, WavSpec, WavWriter, WriteFormat};
use halo::scene::layout::Layout;
use halo::scene::mix::OutputSpec;
use std::path::{Path, PathBuf};

/// The corpus beside the checkout (`../shared`), or beside the worktrees' folder.
const CORPUS: [&str; 2] = [
    concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/adm-corpus/public"),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/adm-corpus/public"
    ),
];
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/adm/ear_reference.json"
);
/// Frames of noise given to a bare axml document (as the reference script).
const XML_FRAMES: usize = 48000;
const XML_RATE: u32 = 48000;
/// Per-channel and total tolerance, dB.
const CHANNEL_TOLERANCE_DB: f64 = 1.0;
const TOTAL_TOLERANCE_DB: f64 = 0.5;
/// Channels more than this far below the reference's total are only checked to be as quiet
/// in halo's render (within the same margin).
const QUIET_BELOW_TOTAL_DB: f64 = 40.0;

/// Files halo does not yet render as EAR does, with the reason. Each is rendered anyway
/// (it must not panic), and a file listed here that matches fails the test.
const KNOWN_FAILURES: &[(&str, &str)] = &[(
    "eat_test_bwf.wav",
    "DirectSpeakers M+045 with bounds 30…50°: BS.2127 routes it to M+030 (inside the \
         bounds), halo pans it between M+030 and M+090 (the objects match)",
)];

/// The test noise of track `track` (0-based): a counter-based hash (lowbias32 of
/// `frame·0x9E3779B1 + track·0x85EBCA77`), uniform in [-0.25, 0.25) (the reference
/// script's generator).
fn noise(track: usize, frames: usize) -> Vec<f32> {
    let seed = (track as u32).wrapping_mul(0x85EB_CA77);
    (0..frames as u32)
        .map(|i| {
            let mut z = i.wrapping_mul(0x9E37_79B1).wrapping_add(seed);
            z ^= z >> 16;
            z = z.wrapping_mul(0x7FEB_352D);
            z ^= z >> 15;
            z = z.wrapping_mul(0x846C_A68B);
            z ^= z >> 16;
            ((f64::from(z) / 4_294_967_296.0 - 0.5) * 0.5) as f32
        })
        .collect()
}

/// The text of the first `<name>` child inside `body`.
fn child_text<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let i = body.find(&open)? + open.len();
    let j = body[i..].find('<')? + i;
    Some(body[i..j].trim())
}

/// A chna for a bare axml document: one track per audioTrackUID, in document order.
fn chna_of_xml(xml: &str) -> Chna {
    let mut entries = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<audioTrackUID ") {
        rest = &rest[i..];
        let tag_end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..tag_end];
        let uid = tag
            .split("UID=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        let body_end = if tag.ends_with('/') {
            tag_end
        } else {
            rest.find("</audioTrackUID>").unwrap_or(tag_end)
        };
        let body = &rest[tag_end.min(body_end)..body_end];
        let track_ref = match (
            child_text(body, "audioTrackFormatIDRef"),
            child_text(body, "audioChannelFormatIDRef"),
        ) {
            (Some(t), _) => t.to_string(),
            (None, Some(c)) => format!("{}_00", c.get(..11).unwrap_or(c)),
            (None, None) => "AT_00000000_00".into(),
        };
        let pack_ref = child_text(body, "audioPackFormatIDRef")
            .unwrap_or("AP_00000000")
            .to_string();
        entries.push(ChnaEntry {
            track_index: entries.len() as u16 + 1,
            uid,
            track_ref,
            pack_ref,
        });
        rest = &rest[tag_end.max(1)..];
    }
    Chna { entries }
}

/// The axml with the audioPackFormatIDRef removed from every audioStreamFormat that also
/// names a channel (Pro Tools and the Dolby Conversion Tool write both; EAR 2.1.0 refuses
/// that, so the reference script removes it for both renderers).
fn strip_stream_pack_refs(axml: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&axml).into_owned();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("<audioStreamFormat") {
        let after = &rest[i..];
        let Some(j) = after.find("</audioStreamFormat>") else {
            break;
        };
        let (element, tail) = after.split_at(j);
        out.push_str(&rest[..i]);
        if element.contains("<audioChannelFormatIDRef>") {
            let mut e = element;
            while let Some(a) = e.find("<audioPackFormatIDRef>") {
                let end_tag = "</audioPackFormatIDRef>";
                let b = e[a..]
                    .find(end_tag)
                    .map_or(e.len(), |b| a + b + end_tag.len());
                out.push_str(&e[..a]);
                e = e[b..].trim_start();
            }
            out.push_str(e);
        } else {
            out.push_str(element);
        }
        rest = tail;
    }
    out.push_str(rest);
    out.into_bytes()
}

/// The corpus file as both renderers get it, written to `dir`.
fn prepare(src: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("in.wav");
    let (rate, channels, samples, chna, axml) = if src.extension().is_some_and(|e| e == "xml") {
        let xml = std::fs::read(src).unwrap();
        let chna = chna_of_xml(&String::from_utf8_lossy(&xml));
        let n = chna.entries.len().max(1);
        let tracks: Vec<Vec<f32>> = (0..n).map(|t| noise(t, XML_FRAMES)).collect();
        let mut inter = vec![0.0f32; n * XML_FRAMES];
        for (t, tr) in tracks.iter().enumerate() {
            for (f, v) in tr.iter().enumerate() {
                inter[f * n + t] = *v;
            }
        }
        (
            XML_RATE,
            n,
            inter,
            write_chna(&chna),
            strip_stream_pack_refs(xml),
        )
    } else {
        let mut r = WavReader::open(src).unwrap();
        let info = r.info().clone();
        let chna = r.read_chunk(*b"chna", 1 << 24).unwrap().unwrap_or_default();
        let axml = r.read_chunk(*b"axml", 1 << 28).unwrap().unwrap_or_default();
        let n = info.channels;
        let mut inter = vec![0.0f32; n * info.frames as usize];
        let mut done = 0;
        while done < inter.len() {
            let got = r.read(&mut inter[done..]).unwrap();
            if got == 0 {
                break;
            }
            done += got * n;
        }
        let frames = inter.len() / n;
        for t in 0..n {
            if (0..frames).all(|f| inter[f * n + t] == 0.0) {
                for (f, v) in noise(t, frames).into_iter().enumerate() {
                    inter[f * n + t] = v;
                }
            }
        }
        (
            info.sample_rate,
            n,
            inter,
            chna,
            strip_stream_pack_refs(axml),
        )
    };
    let spec = WavSpec {
        channels,
        sample_rate: rate,
        format: WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = WavWriter::create_with_chunks(
        &out,
        spec,
        vec![
            Chunk {
                id: *b"chna",
                data: chna,
            },
            Chunk {
                id: *b"axml",
                data: axml,
            },
        ],
    )
    .unwrap();
    w.write(&samples).unwrap();
    w.finish().unwrap().commit().unwrap();
    out
}

/// halo's 7.1.4 render of a prepared master: (BS.2051 name, energy dB) per channel.
fn render_energies(master: &Path, dir: &Path) -> Result<Vec<(String, f64)>, String> {
    let m = exchange::read_master(master, None).map_err(|e| e.to_string())?;
    let mut scene = m.scene;
    let layout = Layout::builtin("7.1.4").unwrap();
    scene.outputs = vec![OutputSpec::Speakers {
        layout: layout.clone(),
        chain: Vec::new(),
        target: None,
    }];
    let mut opts = RenderOptions::new(dir);
    opts.format = WriteFormat::F32;
    opts.threads = 1;
    let report = render::render(&scene, &mut opts).map_err(|e| e.to_string())?;
    let file = &report.outputs[0].file;
    let mut r = WavReader::open(file).map_err(|e| e.to_string())?;
    let n = r.info().channels;
    let mut energy = vec![0.0f64; n];
    let mut buf = vec![0.0f32; n * 4096];
    loop {
        let got = r.read(&mut buf).map_err(|e| e.to_string())?;
        if got == 0 {
            break;
        }
        for frame in buf[..got * n].chunks(n) {
            for (e, &v) in energy.iter_mut().zip(frame) {
                *e += f64::from(v) * f64::from(v);
            }
        }
    }
    // The file is in WAV channel order: file channel k holds layout channel wav_order[k].
    let names = layout
        .wav_order()
        .into_iter()
        .map(|i| layout.channels[i].name.clone());
    Ok(names
        .zip(energy)
        .map(|(name, e)| (name, 10.0 * e.max(1e-30).log10()))
        .collect())
}

/// EAR 2.1.0's known departures, applied to halo's energies so that the rest is compared.
/// The Pro Tools master's `RC_LFE` DirectSpeakers channel (Dolby's label, no `frequency`
/// element) is not an LFE for EAR: it renders it as a full-range speaker at its position
/// (X −1, Y 1, Z −1), i.e. into M+030. halo takes it for the LFE. Its energy is moved
/// from LFE1 to M+030, so the objects (all Cartesian) are compared as they are.
fn ear_quirks(name: &str, mut halo: Vec<(String, f64)>) -> Vec<(String, f64)> {
    if name == "wavinfo_Test_ADM_ProTools.wav" {
        let power = |h: &[(String, f64)], n: &str| {
            h.iter()
                .find(|c| c.0 == n)
                .map_or(0.0, |c| 10f64.powf(c.1 / 10.0))
        };
        let moved = power(&halo, "M+030") + power(&halo, "LFE1");
        for c in &mut halo {
            if c.0 == "M+030" {
                c.1 = 10.0 * moved.max(1e-30).log10();
            } else if c.0 == "LFE1" {
                c.1 = -300.0;
            }
        }
    }
    halo
}

/// Compares halo's energies with EAR's; the problems found (empty: a match).
fn compare(halo: &[(String, f64)], ear: &serde_json::Value, labels: &[String]) -> Vec<String> {
    let ear_db: Vec<f64> = ear["energy_db"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(-300.0))
        .collect();
    let total = |dbs: &mut dyn Iterator<Item = f64>| {
        10.0 * dbs
            .map(|d| 10f64.powf(d / 10.0))
            .sum::<f64>()
            .max(1e-30)
            .log10()
    };
    let ear_total = total(&mut ear_db.iter().copied());
    let halo_total = total(&mut halo.iter().map(|h| h.1));
    let mut problems = Vec::new();
    if (ear_total - halo_total).abs() > TOTAL_TOLERANCE_DB {
        problems.push(format!("total {halo_total:.2} dB, EAR {ear_total:.2} dB"));
    }
    let quiet = ear_total - QUIET_BELOW_TOTAL_DB;
    for (label, e) in labels.iter().zip(&ear_db) {
        let Some((_, h)) = halo.iter().find(|(n, _)| n == label) else {
            problems.push(format!("{label}: not in halo's 7.1.4"));
            continue;
        };
        if e.max(*h) < quiet {
            continue;
        }
        if (e - h).abs() > CHANNEL_TOLERANCE_DB {
            problems.push(format!("{label} {h:.2} dB, EAR {e:.2} dB"));
        }
    }
    problems
}

#[test]
fn corpus_renders_like_ear() {
    let Some(corpus) = CORPUS.iter().map(Path::new).find(|p| p.is_dir()) else {
        println!("skipped: {} is absent", CORPUS[0]);
        return;
    };
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(REFERENCE).unwrap()).unwrap();
    let labels: Vec<String> = reference["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let files = reference["files"].as_object().unwrap();
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("adm_corpus");
    let (mut matched, mut rendered_by_ear) = (0, 0);
    let mut unexpected = Vec::new();
    for (name, ear) in files {
        let src = corpus.join(name);
        if !src.is_file() {
            println!("{name}: not in the corpus, skipped");
            continue;
        }
        let dir = scratch.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prepared = prepare(&src, &dir);
        if name.starts_with("wavinfo_") {
            // The Pro Tools master: its rounded timing is fixed with a few warning lines.
            let m = exchange::read_master(&prepared, None).unwrap();
            println!("{name} warnings:\n  {}", m.warnings.join("\n  "));
            assert!(m.warnings.len() <= 5, "{:?}", m.warnings);
        }
        let halo = render_energies(&prepared, &dir).map(|h| ear_quirks(name, h));
        let known = KNOWN_FAILURES.iter().find(|k| k.0 == name);
        if ear.get("ear_error").is_some() {
            // EAR refuses it: halo renders it or refuses it with an error (no panic).
            println!(
                "{name}: EAR refuses; halo: {}",
                halo.as_ref()
                    .map_or_else(|e| e.clone(), |_| "rendered".into())
            );
            continue;
        }
        rendered_by_ear += 1;
        let problems = match &halo {
            Ok(h) => compare(h, ear, &labels),
            Err(e) => vec![format!("halo refuses: {e}")],
        };
        let ok = problems.is_empty();
        matched += usize::from(ok);
        println!(
            "{name}: {}",
            if ok {
                "match".to_string()
            } else {
                problems.join("; ")
            }
        );
        match (ok, known) {
            (true, Some(_)) => {
                unexpected.push(format!("{name} now matches: remove it from KNOWN_FAILURES"))
            }
            (false, None) => unexpected.push(format!("{name}: {}", problems.join("; "))),
            _ => {}
        }
    }
    println!("{matched} of {rendered_by_ear} files EAR renders match");
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}
