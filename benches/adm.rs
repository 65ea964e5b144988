//! ADM (BS.2076) parsing speed: an axml chunk of 128 objects × 1000 block formats, as a
//! long Atmos master carries, parsed and converted to a halo scene.

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

criterion_group!(benches, bench);
criterion_main!(benches);
