//! The QC page for the acceptance's long session: two hours, 32 objects, 7.1.4 + binaural +
//! stereo (synthetic series, decimated as a render decimates them). Building the page from
//! the parsed report and timeline, and parsing them from their JSON text as `halo report`
//! does. The page's size is printed once.

use criterion::{Criterion, criterion_group, criterion_main};
use halo::measure::page;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let (report, timeline) = page::synthetic(7200.0, 32);
    let html = page::build(&report, &timeline);
    let timeline_json = timeline.to_json();
    println!(
        "two-hour, 32-object page: {:.2} MB (timeline.json {:.2} MB)",
        html.len() as f64 / 1e6,
        timeline_json.len() as f64 / 1e6
    );
    let mut g = c.benchmark_group("QC page, 2 h, 32 objects");
    g.bench_function("build the HTML", |b| {
        b.iter(|| black_box(page::build(black_box(&report), black_box(&timeline))).len())
    });
    g.bench_function("parse timeline.json", |b| {
        b.iter(|| page::parse_timeline(black_box(&timeline_json), "timeline.json").is_ok())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
