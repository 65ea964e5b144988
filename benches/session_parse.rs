//! Session parsing at scale: a machine-written session with a million gain keyframes on
//! one line must parse in linear time (issue 15: it took over a minute; the target is
//! under 5 s).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

fn session_with_keys(n: usize) -> String {
    let mut keys = String::with_capacity(n * 36);
    for k in 0..n {
        keys.push_str(&format!(
            "(time: {}, value: {}), ",
            k as f64 * 0.001,
            -((k % 7) as f64)
        ));
    }
    format!(
        "Session(objects: [(name: \"a\", source: \"a.wav\", position: Polar(az: 0, el: 0), \
         gain: [{keys}])], outputs: [Speakers(layout: \"2.0\")])"
    )
}

fn one_line(c: &mut Criterion) {
    let mut group = c.benchmark_group("session parse, keyframes on one line");
    group.sample_size(10);
    for n in [100_000usize, 1_000_000] {
        let text = session_with_keys(n);
        group.bench_function(format!("{n} keyframes"), |b| {
            b.iter(|| {
                halo::formats::session::parse(black_box(&text), Path::new("big.ron"), &mut |_| {
                    Err("no layout files".into())
                })
                .expect("valid session")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, one_line);
criterion_main!(benches);
