//! Hostile input and faults, through the `halo` binary: every numbered finding of issue 15
//! (data loss, non-finite samples, silent clipping, crafted headers, leftovers, hangs,
//! quadratic parsing, panics, the output set, dropped outputs, exit codes, 5-channel
//! loudness), and a catalogue of more than a hundred bad or extreme inputs across all
//! commands, each checked for its exit code, a one-line message, no panic text, nothing
//! left behind and an earlier render left byte-identical.

mod common;
use common::scratch;

use std::f64::consts::TAU;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RATE: u32 = 48_000;

// ---------------------------------------------------------------------------------------
// Helpers (local to this file for now).

/// A RIFF/WAVE file: `fmt ` (plain, 16 bytes) then `data`, as raw bytes.
fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block = u32::from(channels) * u32::from(bits) / 8;
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&rate.wrapping_mul(block).to_le_bytes());
    fmt.extend_from_slice(&(block as u16).to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    riff(&[(*b"fmt ", fmt), (*b"data", data.to_vec())])
}

fn riff(chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    for (id, data) in chunks {
        body.extend_from_slice(id);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn f32_bytes(samples: &[f32]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// `channels` channels of a 1 kHz sine of peak `amp`, `seconds` long, as float samples.
fn sine(channels: usize, seconds: f64, amps: &[f64]) -> Vec<f32> {
    let frames = (seconds * RATE as f64) as usize;
    let mut v = vec![0.0f32; frames * channels];
    for f in 0..frames {
        let x = (TAU * 1000.0 * f as f64 / RATE as f64).sin();
        for c in 0..channels {
            v[f * channels + c] = (amps[c % amps.len()] * x) as f32;
        }
    }
    v
}

fn write_float_wav(path: &Path, channels: usize, samples: &[f32]) {
    std::fs::write(
        path,
        wav_bytes(3, channels as u16, RATE, 32, &f32_bytes(samples)),
    )
    .unwrap();
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn halo_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out_pipe = child.stdout.take().unwrap();
    let err_pipe = child.stderr.take().unwrap();
    let read = |mut p: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = p.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out_t = read(Box::new(out_pipe));
    let err_t = read(Box::new(err_pipe));
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            // A hang: kill it and report it as such (never a timing assertion).
            let _ = child.kill();
            let _ = child.wait();
            break -2;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

fn halo(dir: &Path, args: &[&str]) -> Run {
    halo_in(dir, args, None, Duration::from_secs(120))
}

/// Every file under `dir` (recursively) with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.push((p.clone(), Vec::new()));
                stack.push(p);
            } else if meta.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            } else {
                out.push((p, b"<special>".to_vec()));
            }
        }
    }
    out.sort();
    out
}

fn names(snap: &[(PathBuf, Vec<u8>)]) -> Vec<String> {
    snap.iter().map(|(p, _)| p.display().to_string()).collect()
}

/// The failure's stderr: exactly one `halo: error:` line (warnings before it allowed),
/// no panic text.
fn assert_one_line(what: &str, r: &Run) {
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("halo: error"))
        .collect();
    assert_eq!(errors.len(), 1, "{what}: stderr: {}", r.stderr);
    for l in r.stderr.lines() {
        assert!(
            l.starts_with("halo: "),
            "{what}: stray stderr line {l:?} in {}",
            r.stderr
        );
    }
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!r.stderr.contains(bad), "{what}: {}", r.stderr);
        assert!(!r.stdout.contains(bad), "{what}: {}", r.stdout);
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// A project: `src/tone.wav` (mono, 0.25 s, −20 dBFS), `session.ron` rendering 2.0 and a
/// stereo fold-down of it, and `out/` holding an earlier render.
struct Project {
    dir: PathBuf,
    out: PathBuf,
    before: Vec<(PathBuf, Vec<u8>)>,
}

const SESSION: &str = r#"Session(
    objects: [(name: "tone", source: "src/tone.wav", position: Polar(az: 20, el: 0))],
    outputs: [Speakers(layout: "2.0")],
)
"#;

impl Project {
    fn new(name: &str) -> Project {
        let dir = scratch(name);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        write_float_wav(&dir.join("src/tone.wav"), 1, &sine(1, 0.25, &[0.1]));
        std::fs::write(dir.join("session.ron"), SESSION).unwrap();
        let out = dir.join("out");
        let r = halo(&dir, &["render", "session.ron", "--out", "out"]);
        assert_eq!(r.code, 0, "setup render: {}", r.stderr);
        let before = snapshot(&dir);
        Project { dir, out, before }
    }

    /// Nothing changed anywhere in the project (no leftovers, the render untouched),
    /// except the files the case itself created (`allowed`).
    fn assert_unchanged(&self, what: &str, allowed: &[PathBuf]) {
        let now: Vec<_> = snapshot(&self.dir)
            .into_iter()
            .filter(|(p, _)| !allowed.iter().any(|a| p.starts_with(a)))
            .collect();
        let before: Vec<_> = self
            .before
            .iter()
            .filter(|(p, _)| !allowed.iter().any(|a| p.starts_with(a)))
            .cloned()
            .collect();
        assert_eq!(names(&now), names(&before), "{what}: files differ");
        assert!(now == before, "{what}: a file's bytes changed");
    }
}

// ---------------------------------------------------------------------------------------
// The numbered findings.

/// Finding 1: An output that is an input is refused before anything is written.
#[test]
fn inputs_are_never_outputs() {
    // Stems in the output folder, named like the outputs.
    let p = Project::new("io-clash");
    let stems = p.dir.join("stems");
    std::fs::create_dir_all(&stems).unwrap();
    write_float_wav(&stems.join("2.0.wav"), 1, &sine(1, 0.25, &[0.1]));
    write_float_wav(&stems.join("stereo.wav"), 1, &sine(1, 0.25, &[0.2]));
    let session = r#"Session(
    objects: [(name: "a", source: "2.0.wav", position: Polar(az: 0, el: 0)),
              (name: "b", source: "stereo.wav", position: Polar(az: 9, el: 0))],
    outputs: [Speakers(layout: "2.0"), Stereo(from: "5.1")],
)"#;
    std::fs::write(stems.join("s.ron"), session).unwrap();
    let before = snapshot(&stems);
    let r = halo(&p.dir, &["render", "stems/s.ron", "--out", "stems"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_one_line("render over stems", &r);
    assert!(
        r.stderr.contains("which this command reads"),
        "{}",
        r.stderr
    );
    assert!(snapshot(&stems) == before, "the stems changed");

    // The same file through another path (a hard link) and through a symlinked folder.
    let linked = p.dir.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::hard_link(stems.join("2.0.wav"), linked.join("2.0.wav")).unwrap();
    let r = halo(&p.dir, &["render", "stems/s.ron", "--out", "linked"]);
    assert_eq!(r.code, 2, "hard link: {}", r.stderr);
    assert!(snapshot(&stems) == before);
    std::os::unix::fs::symlink(&stems, p.dir.join("alias")).unwrap();
    let r = halo(&p.dir, &["render", "stems/s.ron", "--out", "alias"]);
    assert_eq!(r.code, 2, "symlinked folder: {}", r.stderr);
    assert!(snapshot(&stems) == before);

    // export over its own source; import over the master.
    let r = halo(&p.dir, &["export", "session.ron", "--out", "src/tone.wav"]);
    assert_eq!(r.code, 2, "export: {}", r.stderr);
    assert_one_line("export over source", &r);
    p.assert_unchanged(
        "export over source",
        &[stems.clone(), linked.clone(), p.dir.join("alias")],
    );
    let r = halo(&p.dir, &["export", "session.ron", "--out", "master.wav"]);
    assert_eq!(r.code, 0, "export: {}", r.stderr);
    let master = std::fs::read(p.dir.join("master.wav")).unwrap();
    let r = halo(&p.dir, &["render", "master.wav", "--out", "."]);
    assert_eq!(r.code, 0, "a master renders beside itself: {}", r.stderr);
    std::fs::rename(p.dir.join("master.wav"), p.dir.join("2.0.wav")).unwrap();
    let r = halo(
        &p.dir,
        &["render", "2.0.wav", "--layout", "2.0", "--out", "."],
    );
    assert_eq!(r.code, 2, "master named like its render: {}", r.stderr);
    assert_eq!(std::fs::read(p.dir.join("2.0.wav")).unwrap(), master);
}

/// Finding 2: Non-finite samples are refused by every command, naming file, channel and frame.
#[test]
fn non_finite_samples_are_refused() {
    let p = Project::new("nan");
    let mut s = sine(2, 0.5, &[0.3, 0.3]);
    // 2% NaN samples in channel 2, the first at frame 100.
    for f in (100..s.len() / 2).step_by(50) {
        s[f * 2 + 1] = f32::NAN;
    }
    write_float_wav(&p.dir.join("nan.wav"), 2, &s);
    let r = halo(&p.dir, &["loudness", "nan.wav"]);
    assert_eq!(r.code, 2, "loudness: {}", r.stderr);
    assert_one_line("loudness", &r);
    for part in ["nan.wav", "NaN", "channel 2", "frame 100"] {
        assert!(
            r.stderr.contains(part),
            "loudness lacks {part}: {}",
            r.stderr
        );
    }
    let mut inf = sine(1, 0.25, &[0.1]);
    inf[7] = f32::INFINITY;
    write_float_wav(&p.dir.join("src/tone.wav"), 1, &inf);
    for args in [
        vec!["render", "session.ron", "--out", "out"],
        vec!["export", "session.ron", "--out", "m.wav"],
        vec!["play", "session.ron"],
    ] {
        let r = halo(&p.dir, &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_one_line(args[0], &r);
        if args[0] != "play" {
            assert!(r.stderr.contains("inf"), "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains("frame 7"), "{args:?}: {}", r.stderr);
        }
    }
    assert!(!p.dir.join("m.wav").exists());
    // The earlier render is untouched (tone.wav itself was replaced by the test).
    let now: Vec<_> = snapshot(&p.dir)
        .into_iter()
        .filter(|(q, _)| q.starts_with(&p.out))
        .collect();
    let before: Vec<_> = p
        .before
        .iter()
        .filter(|(q, _)| q.starts_with(&p.out))
        .cloned()
        .collect();
    assert_eq!(names(&now), names(&before));
    for ((a, x), (_, y)) in now.iter().zip(&before) {
        assert!(x == y, "{} changed", a.display());
    }
}

/// Finding 3: Samples over full scale are counted per output, shown and failed by `--strict`.
#[test]
fn clipping_is_reported() {
    let p = Project::new("clip");
    // +6 dBFS peak from 0.1 s on.
    let mut s = sine(1, 0.25, &[0.5]);
    for x in s.iter_mut().skip(4800) {
        *x *= 4.0;
    }
    write_float_wav(&p.dir.join("src/tone.wav"), 1, &s);
    let r = halo(&p.dir, &["render", "session.ron", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("CLIPPING"), "{}", r.stdout);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.out.join("report.json")).unwrap()).unwrap();
    let c = &report["outputs"][0]["clipping"];
    let over = c["samples_over"].as_u64().unwrap();
    assert!(over > 1000, "{c}");
    let first = c["first_over_s"].as_f64().unwrap();
    assert!((0.1..0.101).contains(&first), "first over at {first} s");
    let peak = c["peak_dbfs"].as_f64().unwrap();
    assert!(peak > 3.0 && peak < 6.1, "peak {peak}");
    let r = halo(
        &p.dir,
        &["render", "session.ron", "--out", "out", "--strict"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("over full scale"), "{}", r.stderr);
    // A quiet render reports none.
    let q = Project::new("clip-quiet");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(q.out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["outputs"][0]["clipping"]["samples_over"], 0);
}

/// Finding 4: Crafted headers are refused before anything is sized from them.
#[test]
fn crafted_rates_are_refused_before_allocation() {
    let p = Project::new("rates");
    for rate in [u32::MAX, 1, 7_999, 768_001] {
        std::fs::write(
            p.dir.join("src/tone.wav"),
            wav_bytes(3, 1, rate, 32, &f32_bytes(&[0.0; 64])),
        )
        .unwrap();
        let r = halo(&p.dir, &["render", "session.ron", "--out", "out"]);
        assert_eq!(r.code, 2, "{rate} Hz: {}", r.stderr);
        assert_one_line("rate", &r);
        assert!(r.stderr.contains("8000 to 768000 Hz"), "{}", r.stderr);
    }
    std::fs::write(
        p.dir.join("big.wav"),
        wav_bytes(3, 2000, RATE, 32, &[0u8; 8000]),
    )
    .unwrap();
    let r = halo(&p.dir, &["loudness", "big.wav"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("1 to 1024 channels"), "{}", r.stderr);
}

/// Found by the wav_read fuzz target's first long run: a float source at another rate
/// whose samples are finite but absurd (3e38, at 17 581 Hz) panicked inside the resampler's FFT, and a
/// source at a prime rate (131 249 Hz) took tens of seconds per block to resample. Both
/// are refused before resampling, as are NaN samples in a file that needs resampling.
#[test]
fn fuzz_findings_in_sources_are_refused() {
    let p = Project::new("fuzzfind");
    let mut loud = vec![0.25f32; 4096];
    loud[1000] = 3.0e38;
    let mut nan = vec![0.25f32; 4096];
    nan[2000] = f32::NAN;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "3e38 at 44.1 kHz",
            wav_bytes(3, 1, 44_100, 32, &f32_bytes(&loud)),
            "+120 dBFS",
        ),
        (
            "3e38 at 48 kHz",
            wav_bytes(3, 1, RATE, 32, &f32_bytes(&loud)),
            "frame 1000",
        ),
        (
            "NaN at 44.1 kHz",
            wav_bytes(3, 1, 44_100, 32, &f32_bytes(&nan)),
            "not a finite number",
        ),
        (
            "131249 Hz",
            wav_bytes(3, 1, 131_249, 32, &f32_bytes(&[0.1; 256])),
            "131249 Hz to 48000 Hz",
        ),
    ];
    for (name, bytes, expect) in cases {
        std::fs::write(p.dir.join("src/tone.wav"), bytes).unwrap();
        let r = halo(&p.dir, &["render", "session.ron", "--out", "out"]);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert_one_line(name, &r);
        assert!(r.stderr.contains(expect), "{name}: {}", r.stderr);
        p.assert_unchanged(name, &[p.dir.join("src/tone.wav")]);
    }
}

/// A session long enough to be interrupted: 9.1.6 and binaural of a 120 s source.
fn long_project(name: &str) -> PathBuf {
    let dir = scratch(name);
    write_float_wav(&dir.join("long.wav"), 1, &sine(1, 120.0, &[0.1]));
    std::fs::write(
        dir.join("s.ron"),
        r#"Session(
    objects: [(name: "a", source: "long.wav", position: [
        (time: 0, value: Polar(az: 0, el: 0)), (time: 120, value: Polar(az: 180, el: 40))])],
    outputs: [Speakers(layout: "9.1.6"), Speakers(layout: "7.1.4"), Binaural()],
)"#,
    )
    .unwrap();
    dir
}

fn temps_in(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n.contains(".halo-"))
        .collect()
}

/// Finding 5: Signals and write limits leave nothing behind; stale temps are removed.
#[test]
fn signals_and_write_limits_leave_nothing_behind() {
    let dir = long_project("signals");
    for (sig, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let out = dir.join(format!("out-{sig}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_halo"))
            .args(["render", "s.ron", "--out"])
            .arg(&out)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the temps exist, then signal.
        let start = Instant::now();
        while temps_in(&out).is_empty() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!temps_in(&out).is_empty(), "{sig}: render never started");
        let ok = Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{sig}");
        assert!(!out.exists(), "SIG{sig}: left {:?}", snapshot(&out));
    }
    // import's stems folder goes too.
    let r = halo(
        &dir,
        &["export", "s.ron", "--out", "m.wav", "--no-loudness"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut child = Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(["import", "m.wav", "--out", "imp/x.ron"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stems = dir.join("imp/x-stems");
    let start = Instant::now();
    while temps_in(&stems).is_empty() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    if status.code() == Some(143) {
        assert!(!stems.exists(), "import left {:?}", snapshot(&stems));
    }
    // A write limit (ulimit -f): SIGXFSZ is ignored, the write fails, exit 4, no temps.
    let out = dir.join("out-limit");
    let script = format!(
        "ulimit -f 2048; exec '{}' render s.ron --out '{}'",
        env!("CARGO_BIN_EXE_halo"),
        out.display()
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(!out.exists(), "write limit left {:?}", snapshot(&out));
    // Stale temps of a dead process are removed by the next render.
    let p = Project::new("stale");
    let stale = p.out.join(".2.0.wav.halo-tmp.999999999.0");
    std::fs::write(&stale, b"half a render").unwrap();
    let r = halo(&p.dir, &["render", "session.ron", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!stale.exists());
}

/// Finding 6: FIFOs and devices are refused at once, never read.
#[test]
fn special_files_are_refused_without_blocking() {
    let p = Project::new("special");
    let fifo = p.dir.join("fifo");
    mkfifo(&fifo);
    let cases: Vec<Vec<&str>> = vec![
        vec!["render", "fifo", "--out", "out"],
        vec![
            "render",
            "session.ron",
            "--out",
            "out",
            "--binaural",
            "--hrtf",
            "fifo",
        ],
        vec!["loudness", "fifo"],
        vec!["render", "/dev/zero", "--out", "out"],
        vec![
            "render",
            "session.ron",
            "--out",
            "out",
            "--binaural",
            "--hrtf",
            "/dev/zero",
        ],
        vec!["gains", "--layout", "fifo.ron", "0,0"],
    ];
    std::os::unix::fs::symlink(&fifo, p.dir.join("fifo.ron")).unwrap();
    for args in cases {
        let r = halo_in(&p.dir, &args, None, Duration::from_secs(20));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_one_line("special", &r);
        assert!(r.stderr.contains("allowed: a regular file"), "{}", r.stderr);
    }
    // A FIFO as an object's source.
    std::fs::remove_file(p.dir.join("src/tone.wav")).unwrap();
    mkfifo(&p.dir.join("src/tone.wav"));
    let r = halo_in(
        &p.dir,
        &["render", "session.ron", "--out", "out"],
        None,
        Duration::from_secs(20),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// Finding 7: A million keyframes on one line parse (the bench `session_parse` times it).
#[test]
fn keyframes_on_one_line_parse() {
    let dir = scratch("keys");
    write_float_wav(&dir.join("a.wav"), 1, &sine(1, 0.1, &[0.1]));
    let n = 100_000;
    let mut keys = String::with_capacity(n * 40);
    for k in 0..n {
        keys.push_str(&format!(
            "(time: {}, value: {}), ",
            k as f64 * 0.001,
            -((k % 7) as f64)
        ));
    }
    let text = format!(
        "Session(duration: 0.05, objects: [(name: \"a\", source: \"a.wav\", position: Polar(az: 0, el: 0), gain: [{keys}])], outputs: [Speakers(layout: \"2.0\")])"
    );
    std::fs::write(dir.join("s.ron"), text).unwrap();
    let r = halo(&dir, &["render", "s.ron", "--out", "out"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Finding 8: No panic text: a closed stdout ends quietly; panics never show.
#[test]
fn closed_stdout_ends_quietly() {
    let p = Project::new("pipe");
    for args in [
        vec!["layouts"],
        vec!["layouts", "--json"],
        vec!["render", "session.ron", "--out", "out2"],
        vec!["gains", "--layout", "7.1.4", "0,0"],
        vec!["--help"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_halo"))
            .args(&args)
            .current_dir(&p.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{err}"
        );
    }
    assert!(p.dir.join("out2/2.0.wav").exists());
}

/// Finding 9: The output set is one commit: when a file cannot be replaced, nothing changes.
#[test]
fn output_set_is_committed_as_one() {
    let p = Project::new("commit");
    write_float_wav(&p.dir.join("src/tone.wav"), 1, &sine(1, 0.25, &[0.3]));
    std::fs::remove_file(p.out.join("report.json")).unwrap();
    std::fs::create_dir(p.out.join("report.json")).unwrap();
    let before = snapshot(&p.out);
    let r = halo(&p.dir, &["render", "session.ron", "--out", "out"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_one_line("commit", &r);
    assert!(snapshot(&p.out) == before, "{:?}", names(&snapshot(&p.out)));
}

/// Finding 10: Two outputs of one kind are both rendered under distinct names.
#[test]
fn duplicate_outputs_are_all_rendered() {
    let p = Project::new("dups");
    std::fs::write(
        p.dir.join("d.ron"),
        r#"Session(
    objects: [(name: "tone", source: "src/tone.wav", position: Polar(az: 20, el: 0))],
    outputs: [Speakers(layout: "2.0"), Speakers(layout: "2.0", chain: [Gain(gain_db: -6)]),
              Binaural(), Binaural(lfe_db: -10), Stereo(from: "5.1"), Stereo(from: "7.1.4")],
)"#,
    )
    .unwrap();
    let r = halo(&p.dir, &["render", "d.ron", "--out", "dups"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in [
        "2.0.wav",
        "2.0-2.wav",
        "binaural.wav",
        "binaural-2.wav",
        "stereo.wav",
        "stereo-2.wav",
    ] {
        assert!(p.dir.join("dups").join(f).exists(), "{f} missing");
    }
    // The −6 dB chain made the second file different.
    let a = std::fs::read(p.dir.join("dups/2.0.wav")).unwrap();
    let b = std::fs::read(p.dir.join("dups/2.0-2.wav")).unwrap();
    assert_ne!(a, b);
}

/// Finding 11: Exit codes and messages: environment failures are 4, input quotes are short,
/// and the parser's messages say what is wrong.
#[test]
fn exit_codes_and_messages() {
    let p = Project::new("codes");
    // gains --stdin with a 10 MB line.
    let line = "x".repeat(10_000_000) + "\n";
    let r = halo_in(
        &p.dir,
        &["gains", "--layout", "2.0", "--stdin"],
        Some(line.as_bytes()),
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 2);
    assert_one_line("long line", &r);
    assert!(r.stderr.len() < 1000, "{} bytes of stderr", r.stderr.len());
    // An unterminated comment is a syntax error, not an empty file.
    std::fs::write(p.dir.join("c.ron"), "/* Session(objects: [])").unwrap();
    let r = halo(&p.dir, &["render", "c.ron", "--out", "out"]);
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains("empty"), "{}", r.stderr);
    // Deep nesting does not advise ron's API.
    std::fs::write(
        p.dir.join("n.ron"),
        format!("Session(objects: {}{})", "[".repeat(5000), "]".repeat(5000)),
    )
    .unwrap();
    let r = halo(&p.dir, &["render", "n.ron", "--out", "out"]);
    assert_eq!(r.code, 2);
    assert_one_line("nesting", &r);
    assert!(!r.stderr.contains("recursion_limit"), "{}", r.stderr);
    // A write limit is the environment: 4 (render above; export here).
    let script = format!(
        "ulimit -f 1; exec '{}' export session.ron --out big.wav --no-loudness",
        env!("CARGO_BIN_EXE_halo")
    );
    write_float_wav(&p.dir.join("src/tone.wav"), 1, &sine(1, 2.0, &[0.1]));
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&p.dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!p.dir.join("big.wav").exists());
    assert!(temps_in(&p.dir).is_empty(), "{:?}", temps_in(&p.dir));
}

/// Finding 12: Layouts without LFE and every BS.2051 system by name; 5 channels are 5.0, and EBU
/// Tech 3341 case 6 reads −23.0 LUFS without --layout.
#[test]
fn every_layout_and_five_channel_loudness() {
    let dir = scratch("layouts");
    for name in [
        "1.0", "5.0", "7.0", "5.0.2", "5.0.4", "7.0.2", "7.0.4", "0+2+0", "0+5+0", "2+5+0",
        "4+5+0", "4+5+1", "3+7+0", "4+9+0", "9+10+3", "0+7+0", "4+7+0",
    ] {
        let r = halo(&dir, &["gains", "--layout", name, "30,0"]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let g: Vec<f64> = v["gains"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let power: f64 = g.iter().map(|x| x * x).sum();
        assert!((power - 1.0).abs() < 1e-6, "{name}: power {power}");
    }
    // Case 6: 1 kHz sine, L R −28, C −24, Ls Rs −30 dBFS, 20 s, no channel mask.
    let db = |d: f64| 10f64.powf(d / 20.0);
    let s = sine(
        5,
        20.0,
        &[db(-28.0), db(-28.0), db(-24.0), db(-30.0), db(-30.0)],
    );
    write_float_wav(&dir.join("case6.wav"), 5, &s);
    let r = halo(&dir, &["loudness", "case6.wav", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["layout"], "5.0");
    let i = v["loudness"]["integrated_lufs"].as_f64().unwrap();
    assert!((i + 23.0).abs() <= 0.1, "case 6: {i} LUFS");
    // And a session renders to a layout without LFE.
    let p = Project::new("nolfe");
    let r = halo(
        &p.dir,
        &[
            "render",
            "session.ron",
            "--layout",
            "5.0.4",
            "--layout",
            "4+5+1",
            "--out",
            "x",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(p.dir.join("x/5.0.4.wav").exists() && p.dir.join("x/4+5+1.wav").exists());
}

// ---------------------------------------------------------------------------------------
// The catalogue.

struct Case {
    name: String,
    /// Files to (re)write before the run, relative to the project.
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    code: i32,
    /// A fragment the message must hold.
    expect: &'static str,
}

fn case(name: impl Into<String>, args: &[&str], code: i32, expect: &'static str) -> Case {
    Case {
        name: name.into(),
        files: Vec::new(),
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        expect,
    }
}

fn with(mut c: Case, path: &str, bytes: impl Into<Vec<u8>>) -> Case {
    c.files.push((path.to_string(), bytes.into()));
    c
}

/// A source WAV replaced by `bytes`, rendered.
fn bad_source(name: &str, bytes: Vec<u8>, expect: &'static str) -> Case {
    with(
        case(
            format!("source: {name}"),
            &["render", "session.ron", "--out", "out"],
            2,
            expect,
        ),
        "src/tone.wav",
        bytes,
    )
}

/// A session with `text`, rendered.
fn bad_session(name: &str, text: &str, expect: &'static str) -> Case {
    with(
        case(
            format!("session: {name}"),
            &["render", "bad.ron", "--out", "out"],
            2,
            expect,
        ),
        "bad.ron",
        text,
    )
}

fn object_session(object: &str) -> String {
    let object = if object.contains("position:") {
        object.to_string()
    } else {
        let head = object.strip_suffix(')').unwrap_or(object);
        format!("{head}, position: Polar(az: 0, el: 0))")
    };
    format!("Session(objects: [{object}], outputs: [Speakers(layout: \"2.0\")])")
}

fn catalogue() -> Vec<Case> {
    let good = f32_bytes(&sine(1, 0.1, &[0.1]));
    let mut cases = Vec::new();
    // WAV sources.
    let fmt_ext = |sub_guid_first: u8| {
        let mut f = Vec::new();
        f.extend_from_slice(&0xFFFEu16.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&RATE.to_le_bytes());
        f.extend_from_slice(&(RATE * 4).to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&32u16.to_le_bytes());
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&32u16.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes());
        f.push(sub_guid_first);
        f.extend_from_slice(&[0; 15]);
        f
    };
    let sources: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("3 bytes", b"RIF".to_vec(), "shorter"),
        (
            "text",
            b"hello, this is not audio at all".to_vec(),
            "not a WAV",
        ),
        (
            "RIFX",
            {
                let mut b = wav_bytes(3, 1, RATE, 32, &good);
                b[3] = b'X';
                b
            },
            "big-endian",
        ),
        (
            "AVI form",
            {
                let mut b = wav_bytes(3, 1, RATE, 32, &good);
                b[8..12].copy_from_slice(b"AVI ");
                b
            },
            "not WAVE",
        ),
        ("no fmt", riff(&[(*b"data", good.clone())]), "no fmt"),
        (
            "no data",
            riff(&[(*b"fmt ", wav_bytes(3, 1, RATE, 32, &[])[20..36].to_vec())]),
            "no data",
        ),
        (
            "rate 4294967295",
            wav_bytes(3, 1, u32::MAX, 32, &good),
            "sample rate",
        ),
        ("rate 0", wav_bytes(3, 1, 0, 32, &good), "0 Hz"),
        ("rate 1", wav_bytes(3, 1, 1, 32, &good), "sample rate"),
        (
            "rate 7999",
            wav_bytes(3, 1, 7_999, 32, &good),
            "sample rate",
        ),
        (
            "rate 768001",
            wav_bytes(1, 1, 768_001, 16, &[0; 64]),
            "sample rate",
        ),
        (
            "rate 767999, 64 channels",
            wav_bytes(1, 64, 767_999, 8, &[0; 640]),
            "resampling",
        ),
        (
            "rate 1e9",
            wav_bytes(1, 1, 1_000_000_000, 16, &[0; 64]),
            "sample rate",
        ),
        ("0 channels", wav_bytes(3, 0, RATE, 32, &good), "0 channels"),
        (
            "65535 channels",
            wav_bytes(1, 65535, RATE, 8, &[0; 64]),
            "channels",
        ),
        (
            "1025 channels",
            wav_bytes(1, 1025, RATE, 8, &[0; 64]),
            "channels",
        ),
        ("12-bit", wav_bytes(1, 1, RATE, 12, &[0; 64]), "12-bit"),
        ("0-bit", wav_bytes(1, 1, RATE, 0, &[0; 64]), "0-bit"),
        ("64-bit int", wav_bytes(1, 1, RATE, 64, &[0; 64]), "64-bit"),
        ("mp3 tag", wav_bytes(0x55, 1, RATE, 16, &[0; 64]), "MPEG"),
        ("a-law", wav_bytes(6, 1, RATE, 8, &[0; 64]), "A-law"),
        ("tag 0", wav_bytes(0, 1, RATE, 16, &[0; 64]), "format tag"),
        (
            "bad block align",
            {
                let mut b = wav_bytes(3, 1, RATE, 32, &good);
                b[32] = 7;
                b
            },
            "block align",
        ),
        (
            "extensible short",
            riff(&[
                (*b"fmt ", fmt_ext(3)[..30].to_vec()),
                (*b"data", good.clone()),
            ]),
            "EXTENSIBLE",
        ),
        (
            "extensible bad guid",
            riff(&[
                (*b"fmt ", {
                    let mut f = fmt_ext(3);
                    f[30] = 0x77;
                    f
                }),
                (*b"data", good.clone()),
            ]),
            "GUID",
        ),
        (
            "extensible tag 9",
            riff(&[(*b"fmt ", fmt_ext(9)), (*b"data", good.clone())]),
            "GUID",
        ),
        (
            "huge fmt",
            riff(&[(*b"fmt ", vec![0; 5000]), (*b"data", good.clone())]),
            "fmt chunk",
        ),
        (
            "fmt 8 bytes",
            riff(&[
                (*b"fmt ", vec![1, 0, 1, 0, 0x80, 0xBB, 0, 0]),
                (*b"data", good.clone()),
            ]),
            "16 needed",
        ),
        (
            "NaN sample",
            wav_bytes(3, 1, RATE, 32, &f32_bytes(&[0.0, 0.1, f32::NAN, 0.0])),
            "NaN",
        ),
        (
            "+inf sample",
            wav_bytes(3, 1, RATE, 32, &f32_bytes(&[f32::INFINITY, 0.0])),
            "inf",
        ),
        (
            "-inf sample",
            wav_bytes(3, 1, RATE, 32, &f32_bytes(&[0.0, f32::NEG_INFINITY])),
            "inf",
        ),
        (
            "NaN f64",
            wav_bytes(
                3,
                1,
                RATE,
                64,
                &[0, 0, 0, 0, 0, 0, 0xF8, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            "NaN",
        ),
        (
            "f64 overflow to f32 inf",
            wav_bytes(3, 1, RATE, 64, &1e300f64.to_le_bytes()),
            "inf",
        ),
        (
            "truncated data",
            {
                let mut b = wav_bytes(3, 1, RATE, 32, &good);
                b.truncate(b.len() - 100);
                b
            },
            "truncated",
        ),
        (
            "RF64 without ds64",
            {
                let mut b = wav_bytes(3, 1, RATE, 32, &good);
                b[0..4].copy_from_slice(b"RF64");
                let at = b.len() - good.len() - 4;
                b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
                b
            },
            "ds64",
        ),
        (
            "stereo for a mono object",
            wav_bytes(3, 2, RATE, 32, &good),
            "channels",
        ),
    ];
    for (name, bytes, expect) in sources {
        cases.push(bad_source(name, bytes, expect));
    }
    // Random bytes after a valid header start.
    for seed in 0..8u64 {
        let mut b = wav_bytes(3, 1, RATE, 32, &good);
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for i in 12..44.min(b.len()) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 {
                b[i] = x as u8;
            }
        }
        // Mutants may stay valid WAVs (a render then succeeds): only check the rules.
        let mut c = bad_source(&format!("header mutant {seed}"), b, "");
        c.code = -1;
        cases.push(c);
    }
    // Sessions.
    let sessions: Vec<(&str, String, &'static str)> = vec![
        ("empty", String::new(), "empty"),
        ("blank", "   \n\n  ".into(), "empty"),
        ("only a comment", "// nothing\n".into(), "empty"),
        ("unterminated comment", "/* Session(".into(), "bad.ron"),
        ("garbage", "\u{1}\u{2}\u{3}xyz".into(), "bad.ron"),
        ("not a session", "Layout(name: \"x\")".into(), "bad.ron"),
        ("unclosed", "Session(objects: [".into(), "bad.ron"),
        ("deep nesting", format!("Session(objects: {}{})", "[".repeat(3000), "]".repeat(3000)), "nested"),
        ("unknown field", "Session(colour: 3)".into(), "colour"),
        ("NaN position", object_session("(name: \"a\", source: \"src/tone.wav\", position: Polar(az: NaN, el: 0))"), "NaN"),
        ("inf gain", object_session("(name: \"a\", source: \"src/tone.wav\", gain: inf)"), "inf"),
        ("NaN gain", object_session("(name: \"a\", source: \"src/tone.wav\", gain: NaN)"), "NaN"),
        ("NaN size", object_session("(name: \"a\", source: \"src/tone.wav\", size: NaN)"), "NaN"),
        ("NaN keyframe time", object_session("(name: \"a\", source: \"src/tone.wav\", gain: [(time: NaN, value: 0)])"), "NaN"),
        ("negative time", object_session("(name: \"a\", source: \"src/tone.wav\", gain: [(time: -1, value: 0)])"), "time"),
        ("keyframes out of order", object_session("(name: \"a\", source: \"src/tone.wav\", gain: [(time: 1, value: 0), (time: 0.5, value: 0)])"), "not after"),
        ("empty keyframes", object_session("(name: \"a\", source: \"src/tone.wav\", gain: [])"), "empty"),
        ("huge time", object_session("(name: \"a\", source: \"src/tone.wav\", gain: [(time: 1e300, value: 0)])"), "time"),
        ("sample rate 1", "Session(sample_rate: 1, objects: [], outputs: [Speakers(layout: \"2.0\")])".into(), "sample_rate"),
        ("sample rate 1e12", "Session(sample_rate: 1e12, objects: [], outputs: [Speakers(layout: \"2.0\")])".into(), "sample_rate"),
        ("sample rate NaN", "Session(sample_rate: NaN, objects: [], outputs: [Speakers(layout: \"2.0\")])".into(), "NaN"),
        ("duration NaN", "Session(duration: NaN, objects: [], outputs: [Speakers(layout: \"2.0\")])".into(), "NaN"),
        ("duration -1", "Session(duration: -1, objects: [], outputs: [Speakers(layout: \"2.0\")])".into(), "duration"),
        ("unknown layout", object_session("(name: \"a\", source: \"src/tone.wav\")").replace("\"2.0\"", "\"11.3.9\""), "unknown layout"),
        ("long layout name", object_session("(name: \"a\", source: \"src/tone.wav\")").replace("\"2.0\"", &format!("\"{}\"", "z".repeat(5000))), "unknown layout"),
        ("missing source", object_session("(name: \"a\", source: \"nowhere.wav\")"), "not found"),
        ("source is a folder", object_session("(name: \"a\", source: \"src\")"), "regular file"),
        ("source is the session", object_session("(name: \"a\", source: \"bad.ron\")"), "not a WAV"),
        ("channel 0", object_session("(name: \"a\", source: (file: \"src/tone.wav\", channel: 0))"), "channel"),
        ("channel 99", object_session("(name: \"a\", source: (file: \"src/tone.wav\", channel: 99))"), "channel"),
        ("layout file missing", object_session("(name: \"a\", source: \"src/tone.wav\")").replace("\"2.0\"", "\"nope.ron\""), "nope.ron"),
        ("layout file is a folder", object_session("(name: \"a\", source: \"src/tone.wav\")").replace("\"2.0\"", "\"src.ron\""), "src.ron"),
        ("no outputs", object_session("(name: \"a\", source: \"src/tone.wav\")").replace("Speakers(layout: \"2.0\")", ""), "no outputs"),
        ("invalid utf-8", String::from_utf8_lossy(b"Session(\xff\xfe)").into_owned(), "bad.ron"),
        ("hrtf missing", "Session(objects: [(name: \"a\", source: \"src/tone.wav\", position: Polar(az: 0, el: 0))], outputs: [Binaural(hrtf: \"no.sofa\")])".into(), "no.sofa"),
        ("hrtf is the session", "Session(objects: [(name: \"a\", source: \"src/tone.wav\", position: Polar(az: 0, el: 0))], outputs: [Binaural(hrtf: \"bad.ron\")])".into(), "SOFA"),
        ("bed wrong channels", "Session(beds: [(name: \"b\", source: \"src/tone.wav\", layout: \"5.1\")], outputs: [Speakers(layout: \"2.0\")])".into(), "channels"),
        ("stereo from unknown", "Session(objects: [(name: \"a\", source: \"src/tone.wav\", position: Polar(az: 0, el: 0))], outputs: [Stereo(from: \"bogus\")])".into(), "bogus"),
        ("bad target", "Session(objects: [(name: \"a\", source: \"src/tone.wav\", position: Polar(az: 0, el: 0))], outputs: [Speakers(layout: \"2.0\", target: \"loud-please\")])".into(), "loud-please"),
        ("limiter NaN", "Session(objects: [(name: \"a\", source: \"src/tone.wav\", position: Polar(az: 0, el: 0))], outputs: [Speakers(layout: \"2.0\", chain: [Limiter(ceiling_dbtp: NaN)])])".into(), "NaN"),
    ];
    for (name, text, expect) in sessions {
        cases.push(bad_session(name, &text, expect));
    }
    // The invalid UTF-8 case needs raw bytes.
    cases.push(with(
        case(
            "session: raw invalid utf-8",
            &["render", "raw.ron", "--out", "out"],
            2,
            "UTF-8",
        ),
        "raw.ron",
        b"Session(\xff\xfe)".to_vec(),
    ));
    // Arguments.
    let long = "q".repeat(100_000);
    let arg_cases: Vec<(&str, Vec<&str>, i32, &'static str)> = vec![
        (
            "block 0",
            vec!["render", "session.ron", "--out", "out", "--block", "0"],
            2,
            "--block",
        ),
        (
            "block huge",
            vec![
                "render",
                "session.ron",
                "--out",
                "out",
                "--block",
                "10000000",
            ],
            2,
            "--block",
        ),
        (
            "threshold NaN",
            vec![
                "render",
                "session.ron",
                "--out",
                "out",
                "--threshold",
                "NaN",
            ],
            2,
            "--threshold",
        ),
        (
            "threshold -1",
            vec!["render", "session.ron", "--out", "out", "--threshold=-1"],
            2,
            "--threshold",
        ),
        (
            "layout unknown",
            vec!["render", "session.ron", "--out", "out", "--layout", "11.1"],
            2,
            "unknown layout",
        ),
        (
            "layout long",
            vec!["render", "session.ron", "--out", "out", "--layout", &long],
            2,
            "unknown layout",
        ),
        (
            "layout file missing",
            vec!["render", "session.ron", "--out", "out", "--layout", "x.ron"],
            2,
            "x.ron",
        ),
        (
            "hrtf missing",
            vec![
                "render",
                "session.ron",
                "--out",
                "out",
                "--binaural",
                "--hrtf",
                "none.sofa",
            ],
            2,
            "none.sofa",
        ),
        (
            "hrtf folder",
            vec![
                "render",
                "session.ron",
                "--out",
                "out",
                "--binaural",
                "--hrtf",
                "src",
            ],
            2,
            "regular file",
        ),
        (
            "hrtf is a wav",
            vec![
                "render",
                "session.ron",
                "--out",
                "out",
                "--binaural",
                "--hrtf",
                "src/tone.wav",
            ],
            2,
            "SOFA",
        ),
        (
            "hrtf truncated",
            vec![
                "render",
                "session.ron",
                "--out",
                "out",
                "--binaural",
                "--hrtf",
                "cut.sofa",
            ],
            2,
            "cut.sofa",
        ),
        (
            "out is a file",
            vec!["render", "session.ron", "--out", "session.ron"],
            2,
            "not a directory",
        ),
        (
            "out below a file",
            vec!["render", "session.ron", "--out", "session.ron/x"],
            2,
            "session.ron",
        ),
        (
            "programme on a session",
            vec![
                "render",
                "session.ron",
                "--out",
                "out",
                "--programme",
                "APR_1001",
            ],
            2,
            "--programme",
        ),
        (
            "session missing",
            vec!["render", "nothing.ron", "--out", "out"],
            2,
            "not found",
        ),
        (
            "session folder",
            vec!["render", "src", "--out", "out"],
            2,
            "regular file",
        ),
        (
            "session long name",
            vec!["render", &long, "--out", "out"],
            2,
            "more characters",
        ),
        (
            "master not ADM",
            vec!["render", "src/tone.wav", "--out", "out"],
            2,
            "ADM",
        ),
        (
            "master missing",
            vec!["render", "none.wav", "--out", "out"],
            2,
            "not found",
        ),
        (
            "unknown flag",
            vec!["render", "session.ron", "--bogus"],
            2,
            "--bogus",
        ),
        ("no command", vec![], 2, "no command"),
        ("unknown command", vec!["mix"], 2, "mix"),
        (
            "format bogus",
            vec!["render", "session.ron", "--out", "out", "--format", "pcm7"],
            2,
            "pcm7",
        ),
        // export
        (
            "export over session",
            vec!["export", "session.ron", "--out", "session.ron"],
            2,
            "wav",
        ),
        (
            "export over source",
            vec!["export", "session.ron", "--out", "src/tone.wav"],
            2,
            "which this command reads",
        ),
        (
            "export to txt",
            vec!["export", "session.ron", "--out", "m.txt"],
            2,
            ".wav",
        ),
        (
            "export bad session",
            vec!["export", "src/tone.wav", "--out", "m.wav"],
            2,
            "ADM",
        ),
        (
            "export into a file",
            vec!["export", "session.ron", "--out", "session.ron/m.wav"],
            2,
            "session.ron",
        ),
        (
            "export missing",
            vec!["export", "zz.ron", "--out", "m.wav"],
            2,
            "not found",
        ),
        // import
        (
            "import not ADM",
            vec!["import", "src/tone.wav", "--out", "i.ron"],
            2,
            "ADM",
        ),
        (
            "import missing",
            vec!["import", "none.wav", "--out", "i.ron"],
            2,
            "not found",
        ),
        (
            "import to wav",
            vec!["import", "src/tone.wav", "--out", "i.wav"],
            2,
            ".ron",
        ),
        (
            "import session",
            vec!["import", "session.ron", "--out", "i.ron"],
            2,
            "session.ron",
        ),
        (
            "import folder",
            vec!["import", "src", "--out", "i.ron"],
            2,
            "regular file",
        ),
        // loudness
        (
            "loudness missing",
            vec!["loudness", "none.wav"],
            2,
            "not found",
        ),
        (
            "loudness folder",
            vec!["loudness", "src"],
            2,
            "regular file",
        ),
        (
            "loudness session",
            vec!["loudness", "session.ron"],
            2,
            "not a WAV",
        ),
        (
            "loudness wrong layout",
            vec!["loudness", "src/tone.wav", "--layout", "7.1.4"],
            2,
            "channels",
        ),
        (
            "loudness bogus layout",
            vec!["loudness", "src/tone.wav", "--layout", "nope"],
            2,
            "unknown layout",
        ),
        (
            "loudness 3 channels",
            vec!["loudness", "three.wav"],
            2,
            "--layout",
        ),
        ("loudness NaN", vec!["loudness", "nan.wav"], 2, "NaN"),
        // gains
        (
            "gains no position",
            vec!["gains", "--layout", "2.0"],
            2,
            "no positions",
        ),
        (
            "gains NaN",
            vec!["gains", "--layout", "2.0", "NaN,0"],
            2,
            "finite",
        ),
        (
            "gains text",
            vec!["gains", "--layout", "2.0", "left"],
            2,
            "not a number",
        ),
        (
            "gains long",
            vec!["gains", "--layout", "2.0", &long],
            2,
            "more characters",
        ),
        (
            "gains size 2",
            vec!["gains", "--layout", "2.0", "--size", "2", "0,0"],
            2,
            "--size",
        ),
        (
            "gains bad layout",
            vec!["gains", "--layout", "bad", "0,0"],
            2,
            "unknown layout",
        ),
        (
            "gains three numbers",
            vec!["gains", "--layout", "2.0", "0,0,0"],
            2,
            "az,el",
        ),
        // play without the feature (or with a bad monitor)
        (
            "play bad monitor",
            vec!["play", "session.ron", "--monitor", "nope"],
            2,
            "",
        ),
    ];
    for (name, args, code, expect) in arg_cases {
        cases.push(case(name, &args, code, expect));
    }
    cases
}

#[test]
fn catalogue_of_bad_inputs() {
    let p = Project::new("catalogue");
    // Fixtures some cases name.
    let kemar = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/hrtf/MIT_KEMAR_normal_pinna.sofa"
    ))
    .unwrap();
    std::fs::write(p.dir.join("cut.sofa"), &kemar[..kemar.len() / 3]).unwrap();
    write_float_wav(&p.dir.join("three.wav"), 3, &sine(3, 0.1, &[0.1]));
    let mut nan = sine(1, 0.1, &[0.1]);
    nan[10] = f32::NAN;
    write_float_wav(&p.dir.join("nan.wav"), 1, &nan);
    let fixtures = ["cut.sofa", "three.wav", "nan.wav"].map(|f| p.dir.join(f));
    let tone = std::fs::read(p.dir.join("src/tone.wav")).unwrap();
    let cases = catalogue();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let mut created: Vec<PathBuf> = fixtures.to_vec();
    let mut failures = Vec::new();
    for c in &cases {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_case(&p, c, &tone, &mut created)
        }));
        if let Err(e) = result {
            let text = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!(
                "{}: {}",
                c.name,
                text.chars().take(600).collect::<String>()
            ));
            std::fs::write(p.dir.join("src/tone.wav"), &tone).unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run_case(p: &Project, c: &Case, tone: &[u8], created: &mut Vec<PathBuf>) {
    {
        for (path, bytes) in &c.files {
            std::fs::write(p.dir.join(path), bytes).unwrap();
            if path != "src/tone.wav" {
                created.push(p.dir.join(path));
            }
        }
        let args: Vec<&str> = c.args.iter().map(|s| s.as_str()).collect();
        let r = halo_in(&p.dir, &args, None, Duration::from_secs(60));
        assert_ne!(r.code, -2, "{}: hung", c.name);
        if c.code >= 0 {
            assert_eq!(
                r.code, c.code,
                "{}: exit {}; stderr: {}",
                c.name, r.code, r.stderr
            );
        }
        for bad in ["panicked", "RUST_BACKTRACE"] {
            assert!(!r.stderr.contains(bad), "{}: {}", c.name, r.stderr);
        }
        if r.code != 0 {
            assert_one_line(&c.name, &r);
            assert!(
                r.stderr.contains(c.expect),
                "{}: message lacks {:?}: {}",
                c.name,
                c.expect,
                r.stderr
            );
            // No message quotes a long input whole.
            assert!(
                r.stderr.len() < 2000,
                "{}: {} bytes",
                c.name,
                r.stderr.len()
            );
            // Nothing left behind, the earlier render byte-identical.
            std::fs::write(p.dir.join("src/tone.wav"), tone).unwrap();
            p.assert_unchanged(&c.name, created);
        } else {
            // A mutant that is still a valid file rendered: put the earlier render back.
            std::fs::write(p.dir.join("src/tone.wav"), tone).unwrap();
            for (path, bytes) in &p.before {
                if path.starts_with(&p.out) && !bytes.is_empty() {
                    std::fs::write(path, bytes).unwrap();
                }
            }
            p.assert_unchanged(&c.name, created);
        }
        for (path, _) in &c.files {
            if path != "src/tone.wav" {
                let _ = std::fs::remove_file(p.dir.join(path));
            }
        }
    }
}
