//! ADM (BS.2076) parsing speed: an axml chunk of 128 objects × 1000 block formats, as a
//! long Atmos master carries, parsed and converted to a halo scene. And the speed table's
//! ADM row, halo's side (`tools/bench/adm_vs_ear.sh` times EAR on the same kind of file):
//! a 128-object, 20 s master with 0.1 s blocks read and rendered to 7.1.4 on one thread,
//! metered and written, as `halo render master.wav --layout 7.1.4 --threads 1` does.

use criterion::{Criterion, criterion_group, criterion_main};
use halo::formats::adm::{
    AdmAudio, TrackPlan, chna_of, from_scene, parse_axml, to_scene, write_axml,
};
use halo::scene::automation::{Automation, Interpolation, Keyframe};
use halo::scene::geometry::Position;
use halo::scene::mix::{BinauralMode, ObjectSpec, Scene, SourceSpec};
use std::hint::black_box;

fn scene(objects: usize, keys: u64) -> Scene {
    let objects = (0..objects)
        .map(|i| ObjectSpec {
            name: format!("obj {i}"),
            source: SourceSpec {
                path: "x.wav".into(),
                channel: Some(i),
            },
            gain_db: Automation::constant(-3.0),
            mute: false,
            position: Automation::new(
                (0..keys)
                    .map(|k| Keyframe {
                        frame: k * 480,
                        value: Position::Cartesian {
                            x: ((k + i as u64) % 7) as f64 / 7.0,
                            y: 0.5,
                            z: 0.0,
                        },
                        interpolation: Interpolation::Linear,
                    })
                    .collect(),
            )
            .expect("keys increase"),
            size: Automation::constant(0.1),
            binaural: BinauralMode::Mid,
            controls: Default::default(),
        })
        .collect();
    Scene {
        sample_rate: 48000,
        duration_frames: Some(keys * 480 + 480),
        objects,
        beds: Vec::new(),
        outputs: Vec::new(),
        origin: "s.ron".into(),
    }
}

fn bench(c: &mut Criterion) {
    let s = scene(128, 1000);
    let plan = TrackPlan::beds_then_objects(&s, 1000 * 480 + 480);
    let doc = from_scene(&s, &plan, None).expect("valid scene");
    let xml = write_axml(&doc);
    let chna = chna_of(&doc, &plan);
    let audio = AdmAudio {
        path: "m.wav".into(),
        channels: plan.channels,
        sample_rate: 48000,
        frames: plan.frames,
    };
    println!("axml: {} bytes", xml.len());
    let mut g = c.benchmark_group("adm");
    g.sample_size(10);
    g.bench_function("parse_axml 128 objects x 1000 blocks", |b| {
        b.iter(|| parse_axml(black_box(xml.as_bytes())).expect("valid"))
    });
    let parsed = parse_axml(xml.as_bytes()).expect("valid");
    g.bench_function("to_scene 128 objects x 1000 blocks", |b| {
        b.iter(|| to_scene(black_box(&parsed), &chna, &audio).expect("valid"))
    });
    g.bench_function("write_axml 128 objects x 1000 blocks", |b| {
        b.iter(|| write_axml(black_box(&doc)))
    });
    g.finish();
}

/// Writes the 128-object, 20 s master with 0.1 s blocks (as `examples/bench_session.rs
/// --keyframe-ms 100` then `halo export --adm-version 2`) into `dir`.
fn write_master(dir: &std::path::Path, objects: usize, seconds: u64) -> std::path::PathBuf {
    use halo::drivers::exchange::{ExportOptions, export};
    use halo::formats::adm::AdmProfile;
    use halo::formats::io::{WavSpec, WavWriter, WriteFormat};
    let rate = 48000u32;
    std::fs::create_dir_all(dir).expect("bench dir");
    let mut writer = WavWriter::create(
        &dir.join("source.wav"),
        WavSpec {
            channels: 1,
            sample_rate: rate,
            format: WriteFormat::Pcm24,
            channel_mask: None,
        },
    )
    .expect("source");
    let mut state = 0x1234_5678_9ABC_DEF1u64;
    let mut chunk = vec![0.0f32; rate as usize];
    for _ in 0..seconds {
        for x in chunk.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *x = ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 0.25;
        }
        writer.write(&chunk).expect("source");
    }
    writer.finish().expect("source").commit().expect("source");
    let keys = seconds * 10;
    let objects = (0..objects)
        .map(|i| {
            let period = 4.0 + (i % 7) as f64;
            let el = -10.0 + (i % 5) as f64 * 12.0;
            ObjectSpec {
                name: format!("obj{i}"),
                source: SourceSpec {
                    path: dir.join("source.wav"),
                    channel: None,
                },
                gain_db: Automation::constant(-18.0),
                mute: false,
                position: Automation::new(
                    (0..=keys)
                        .map(|k| {
                            let t = k as f64 / 10.0;
                            let az = (i as f64 * 17.0 + t / period * 360.0) % 360.0;
                            Keyframe {
                                frame: k * 4800,
                                value: Position::Polar {
                                    azimuth_deg: if az > 180.0 { az - 360.0 } else { az },
                                    elevation_deg: el,
                                    distance: 1.0,
                                },
                                interpolation: Interpolation::Linear,
                            }
                        })
                        .collect(),
                )
                .expect("keys increase"),
                size: Automation::constant(0.0),
                binaural: BinauralMode::Mid,
                controls: Default::default(),
            }
        })
        .collect();
    let scene = Scene {
        sample_rate: rate,
        duration_frames: Some(seconds * u64::from(rate)),
        objects,
        beds: Vec::new(),
        outputs: Vec::new(),
        origin: dir.join("session.ron"),
    };
    let master = dir.join("master.wav");
    export(
        &scene,
        &master,
        &ExportOptions {
            measure_loudness: false,
            profile: AdmProfile::Bs2076_2,
            ..Default::default()
        },
    )
    .expect("export");
    master
}

fn bench_master_render(c: &mut Criterion) {
    use halo::drivers::exchange::read_master;
    use halo::drivers::render::{RenderOptions, render};
    use halo::scene::layout::Layout;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("adm-bench");
    let master = write_master(&dir, 128, 20);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("bench output dir");
    let mut g = c.benchmark_group("adm_master");
    g.sample_size(10);
    g.bench_function(
        "128 objects x 20 s (0.1 s blocks) -> 7.1.4, one thread: read, render, meter, write",
        |b| {
            b.iter(|| {
                let m = read_master(black_box(&master), None).expect("master");
                let mut scene = m.scene;
                scene.outputs.clear();
                let mut options = RenderOptions::new(&out);
                options.layouts = Some(vec![Layout::builtin("7.1.4").expect("7.1.4")]);
                options.threads = 1;
                render(&scene, &mut options).expect("render")
            })
        },
    );
    g.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, bench, bench_master_render);
criterion_main!(benches);
