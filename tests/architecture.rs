//! The layer rule of `src/lib.rs`, checked on the source: every `crate::LAYER` path in a
//! module names its own layer or one it may use, and `drivers::playback` does not reach
//! into `drivers::render`. Std only: the source is read as text.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Each layer and the layers it may use (the table in `src/lib.rs`).
const LAYERS: &[(&str, &[&str])] = &[
    ("dsp", &[]),
    ("scene", &["dsp"]),
    ("spatial", &["dsp", "scene"]),
    ("engine", &["dsp", "scene", "spatial"]),
    ("measure", &["dsp", "scene", "spatial"]),
    ("formats", &["dsp", "scene", "spatial"]),
    (
        "drivers",
        &["dsp", "scene", "spatial", "engine", "measure", "formats"],
    ),
];

/// Files of one driver that must not import another driver (each pair: the file's module
/// path prefix, the module it may not name).
const SIDEWAYS: &[(&str, &str)] = &[("drivers/playback", "drivers::render")];

/// One broken rule: the file, the line, what it imports.
#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    import: String,
}

/// The layer of a file, from its path under `src/` (`engine/mod.rs` → `engine`); `None`
/// for the crate root and the binary.
fn layer_of(rel: &str) -> Option<&'static str> {
    let first = rel.split('/').next()?;
    LAYERS.iter().map(|(l, _)| *l).find(|l| *l == first)
}

/// Every `crate::NAME` in code (comments stripped), with its line number (from 1).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(pos) = rest.find("crate::") {
            let after = &rest[pos + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push((i + 1, name.trim_end_matches(':').to_string()));
            rest = after;
        }
    }
    out
}

/// Checks files given as (path relative to `src/`, text).
fn check(files: &[(String, String)]) -> Vec<Violation> {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut out = Vec::new();
    for (rel, text) in files {
        let Some(layer) = layer_of(rel) else { continue };
        let module = rel.trim_end_matches(".rs");
        for (line, path) in crate_paths(text) {
            let target = path.split("::").next().unwrap_or("");
            let is_layer = allowed.contains_key(target);
            if is_layer && target != layer && !allowed[layer].contains(&target) {
                out.push(Violation {
                    file: rel.clone(),
                    line,
                    import: format!("crate::{path}"),
                });
            }
            for (prefix, forbidden) in SIDEWAYS {
                if module.starts_with(prefix) && path.starts_with(forbidden) {
                    out.push(Violation {
                        file: rel.clone(),
                        line,
                        import: format!("crate::{path}"),
                    });
                }
            }
        }
        // `super::render` from a playback file is the same sideways step.
        if SIDEWAYS.iter().any(|(p, _)| module.starts_with(p)) {
            for (i, l) in text.lines().enumerate() {
                let code = l.split("//").next().unwrap_or("");
                if code.contains("super::render") {
                    out.push(Violation {
                        file: rel.clone(),
                        line: i + 1,
                        import: "super::render".into(),
                    });
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, fs::read_to_string(&path).expect("source is UTF-8")));
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    files
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let files = sources();
    assert!(
        files.len() > 30,
        "expected halo's source tree, found {} files",
        files.len()
    );
    let layered = files.iter().filter(|(f, _)| layer_of(f).is_some()).count();
    assert!(layered > 25, "only {layered} files are in layer folders");
    let violations = check(&files);
    assert!(
        violations.is_empty(),
        "layer rule broken (see src/lib.rs):\n{}",
        violations
            .iter()
            .map(|v| format!("  src/{}:{}: {}", v.file, v.line, v.import))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_checker_finds_planted_violations() {
    let mut files = sources();
    // An upward import: the panner reaching into the engine.
    files.push((
        "spatial/planted.rs".into(),
        "use crate::scene::geometry::Direction;\nuse crate::engine::Engine;\n".into(),
    ));
    // A sideways import: playback reaching into the offline renderer.
    files.push((
        "drivers/playback/planted.rs".into(),
        "use crate::drivers::render::RenderOptions;\n".into(),
    ));
    // A bottom layer importing anything.
    files.push((
        "dsp/planted.rs".into(),
        "// crate::engine in a comment is fine\nfn f() -> crate::scene::layout::Layout { todo() }\n"
            .into(),
    ));
    let found = check(&files);
    let planted: Vec<_> = found
        .iter()
        .filter(|v| v.file.contains("planted"))
        .collect();
    assert_eq!(
        planted,
        vec![
            &Violation {
                file: "spatial/planted.rs".into(),
                line: 2,
                import: "crate::engine::Engine".into()
            },
            &Violation {
                file: "drivers/playback/planted.rs".into(),
                line: 1,
                import: "crate::drivers::render::RenderOptions".into()
            },
            &Violation {
                file: "dsp/planted.rs".into(),
                line: 2,
                import: "crate::scene::layout::Layout".into()
            },
        ]
    );
}

#[test]
fn the_crate_map_names_every_layer() {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
    for (layer, _) in LAYERS {
        // Public only with the `internals` feature, crate-private otherwise.
        let declared = lib.contains(&format!(
            "#[cfg(feature = \"internals\")]\n#[allow(missing_docs)]\npub mod {layer};\n#[cfg(not(feature = \"internals\"))]\npub(crate) mod {layer};\n"
        ));
        assert!(
            declared,
            "src/lib.rs does not declare layer {layer} as internal (pub with `internals`, else pub(crate))"
        );
        assert!(
            lib.contains(&format!("`{layer}`")) || lib.contains(&format!("[`{layer}`]")),
            "the crate map in src/lib.rs does not describe layer {layer}"
        );
    }
}
