//! The QC page (report.html): written by `halo render`, rebuilt identically by `halo
//! report`, opened in headless Chromium (no console message, no request, every section,
//! every plot drawn, a screenshot that is not blank), and the numbers it draws equal the
//! meter's: the curves against timeline.json, and the BS.1770 integrated loudness gated
//! from the drawn momentary blocks against report.json's within 0.05 LU.
//!
//! Chromium tests skip with a message when no browser is installed (CI: `apt-get install
//! chromium`); `HALO_CHROMIUM` names another binary.

use halo::drivers::demo;
use halo::formats::io::{WavSpec, WavWriter, WriteFormat};
use halo::measure::page;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn halo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_halo"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-page-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo's stems and session with one speaker layout (7.1.4, with its target), the
/// binaural and the stereo fold-down, rendered by `halo render`; once for all tests.
fn rendered() -> &'static (PathBuf, String) {
    static DIR: OnceLock<(PathBuf, String)> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_dir("render");
        let rate = 48000;
        std::fs::create_dir_all(dir.join("stems")).unwrap();
        for stem in demo::stems(rate) {
            // No channel mask: the bed is read in its layout's order, as generated.
            let spec = WavSpec {
                channels: stem.channels,
                sample_rate: rate,
                format: WriteFormat::F32,
                channel_mask: None,
            };
            let mut w = WavWriter::create(&dir.join("stems").join(stem.file), spec).unwrap();
            w.write(&stem.samples).unwrap();
            w.finish().unwrap().commit().unwrap();
        }
        let session = dir.join("session.ron");
        std::fs::write(&session, demo::session_text(rate, &["7.1.4"])).unwrap();
        let out = halo()
            .arg("render")
            .arg(&session)
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, stdout)
    })
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// A few lines of HTML reading: the page's own tags, double-quoted attributes.

/// Every opening tag `<name …>` in `html`, as its text.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        let tag = &rest[i..];
        let end = tag.find('>').unwrap();
        out.push(&tag[..=end]);
        rest = &tag[end..];
    }
    out
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let end = tag[i..].find('"')?;
    Some(&tag[i..i + end])
}

fn has_class(tag: &str, class: &str) -> bool {
    attr(tag, "class").is_some_and(|c| c.split(' ').any(|x| x == class))
}

fn values(text: &str) -> Vec<Option<f64>> {
    text.split(' ')
        .map(|v| (v != "n").then(|| v.parse().unwrap()))
        .collect()
}

/// The points of a path made of absolute M and L commands.
fn points(d: &str) -> Vec<(f64, f64)> {
    d.split(['M', 'L'])
        .filter(|s| !s.is_empty())
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

/// Each `<svg class="plot …">…</svg>` of the page.
fn plots(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg class=\"plot") {
        let end = rest[i..].find("</svg>").unwrap() + i + 6;
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

/// BS.1770-4 gating of 400 ms blocks given as their loudness (LUFS): absolute gate at
/// −70 LUFS, relative gate 10 LU under the mean of the blocks above it.
fn gated_integrated(blocks: &[f64]) -> f64 {
    let power = |l: f64| 10f64.powf((l + 0.691) / 10.0);
    let loud = |b: &[f64]| {
        -0.691 + 10.0 * (b.iter().map(|&l| power(l)).sum::<f64>() / b.len() as f64).log10()
    };
    let above: Vec<f64> = blocks.iter().copied().filter(|&l| l > -70.0).collect();
    let gate = loud(&above) - 10.0;
    let kept: Vec<f64> = above.into_iter().filter(|&l| l > gate).collect();
    loud(&kept)
}

/// The numbers drawn against the meter's: every series path's `data-values` equal
/// timeline.json's, its points sit where its values say, and what the values add up to
/// is what report.json says.
fn check_numbers(html: &str, report: &Value, timeline: &Value) {
    let outputs = report["outputs"].as_array().unwrap();
    let series = |file: &str, key: &str| -> Vec<Option<f64>> {
        let t = timeline["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["file"] == file)
            .unwrap_or_else(|| panic!("{file} not in timeline.json"));
        t[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64())
            .collect()
    };
    let mut checked = 0;
    for plot in plots(html) {
        let svg = tags(plot, "svg")[0];
        let Some(map) = attr(svg, "data-map") else {
            continue;
        };
        let m: Vec<f64> = map.split(' ').map(|v| v.parse().unwrap()).collect();
        let range: Vec<f64> = attr(svg, "data-range")
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        for path in tags(plot, "path") {
            let Some(data) = attr(path, "data-values") else {
                continue;
            };
            let drawn = values(data);
            let name = attr(path, "data-name").unwrap();
            let step: f64 = attr(path, "data-step").unwrap().parse().unwrap();
            let key = [
                ("momentary", "momentary_lufs"),
                ("short-term", "short_term_lufs"),
                ("true-peak", "true_peak_dbtp"),
                ("correlation", "correlation"),
            ]
            .iter()
            .find(|(c, _)| has_class(path, c));
            if let Some((_, key)) = key {
                let stored = series(name, key);
                assert_eq!(drawn.len(), stored.len(), "{name} {key}");
                for (a, b) in drawn.iter().zip(&stored) {
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            assert!((a - b).abs() < 0.006, "{name} {key}: {a} vs {b}")
                        }
                        (None, None) => {}
                        _ => panic!("{name} {key}: {a:?} vs {b:?}"),
                    }
                }
                checked += 1;
            }
            // The path's points are the values, at the middle of their steps.
            let pts = points(attr(path, "d").unwrap());
            let present: Vec<(usize, f64)> = drawn
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i, v)))
                .collect();
            assert_eq!(pts.len(), present.len(), "{name}: points");
            for ((px, py), (i, v)) in pts.iter().zip(&present) {
                let t = (px - m[0]) / m[1];
                let y = (py - m[2]) / m[3];
                assert!((t - (*i as f64 + 0.5) * step).abs() < 0.01, "{name}: t {t}");
                let want = v.clamp(range[0], range[1]);
                assert!((y - want).abs() < 0.05, "{name}: drawn {y}, value {v}");
            }
        }
    }
    assert!(checked >= 8, "only {checked} series checked");

    for o in outputs {
        let file = Path::new(o["file"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let l = &o["loudness"];
        let momentary: Vec<f64> = series(file, "momentary_lufs")
            .into_iter()
            .map(|v| v.unwrap_or(f64::NEG_INFINITY))
            .collect();
        // The first three polls are not yet 400 ms blocks.
        let integrated = gated_integrated(&momentary[3..]);
        let meter = l["integrated_lufs"].as_f64().unwrap();
        assert!(
            (integrated - meter).abs() < 0.05,
            "{file}: integrated from the drawn momentary blocks {integrated:.3}, meter {meter:.3}"
        );
        let max = momentary.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (max - l["max_momentary_lufs"].as_f64().unwrap()).abs() < 0.006,
            "{file}: max momentary {max}"
        );
        let tp = series(file, "true_peak_dbtp")
            .into_iter()
            .flatten()
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (tp - l["true_peak_dbtp"].as_f64().unwrap()).abs() < 0.006,
            "{file}: true peak {tp}"
        );
        if let Some(min) = o["image"]["min_correlation"].as_f64() {
            let c = series(file, "correlation")
                .into_iter()
                .flatten()
                .fold(1.0, f64::min);
            assert!(
                (c - min).abs() < 0.006,
                "{file}: lowest correlation {c} vs {min}"
            );
        }
        // The verdict's numbers.
        let row = tags(html, "td")
            .into_iter()
            .filter(|t| attr(t, "data-integrated").is_some())
            .zip(outputs)
            .find(|(_, x)| x["file"] == o["file"])
            .map(|(t, _)| t)
            .unwrap();
        let shown: f64 = attr(row, "data-integrated").unwrap().parse().unwrap();
        assert!((shown - meter).abs() < 0.006);
    }
}

#[test]
fn render_writes_the_page_and_report_rebuilds_it() {
    let (dir, stdout) = rendered();
    let page_path = dir.join("report.html");
    assert!(
        stdout.contains(&format!("QC page: open {}", page_path.display())),
        "{stdout}"
    );
    let html = std::fs::read_to_string(&page_path).unwrap();
    // Self-contained: no URL to fetch, and a policy that would block one.
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("src=\"//"));
    assert!(html.contains("default-src 'none'"));
    // Rebuilt from the folder and from report.json: the same page, byte for byte.
    for input in [dir.clone(), dir.join("report.json")] {
        let out = dir.join("rebuilt.html");
        let r = halo()
            .arg("report")
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), html);
    }
    let r = halo().arg("report").arg(dir).output().unwrap();
    assert!(r.status.success());
    assert_eq!(std::fs::read_to_string(&page_path).unwrap(), html);
    check_numbers(
        &html,
        &json(&dir.join("report.json")),
        &json(&dir.join("timeline.json")),
    );
}

#[test]
fn report_refuses_bad_input() {
    let dir = temp_dir("bad");
    let run = |args: &[&Path]| {
        let out = halo().arg("report").args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[&dir]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("report.json") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(dir.join("report.json"), "{\"outputs\": [1, 2").unwrap();
    std::fs::write(dir.join("timeline.json"), "{}").unwrap();
    let (code, err) = run(&[&dir]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("report.json") && err.contains("line 1"),
        "{err}"
    );
    std::fs::write(dir.join("report.json"), "{}").unwrap();
    let (code, err) = run(&[&dir]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("timeline.json") && err.contains("not a halo timeline"),
        "{err}"
    );
    assert!(!dir.join("report.html").exists(), "no page from bad input");
}

// ---------------------------------------------------------------------------------------
// Chromium.

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("HALO_CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.exists());
    if found.is_none() {
        eprintln!("SKIPPED: no chromium (install it: apt-get install -y chromium)");
    }
    found
}

/// Runs headless Chromium on a page; returns (stdout, stderr), through files (a pipe
/// would fill and stall it). Killed after 120 s.
fn run_chromium(browser: &Path, args: &[String], page: &Path) -> (String, String) {
    let profile = temp_dir(&format!(
        "profile-{}",
        page.file_name().unwrap().to_string_lossy()
    ));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdout(Stdio::from(
            std::fs::File::create(profile.join("stdout")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(profile.join("stderr")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let read = |name: &str| {
        String::from_utf8_lossy(&std::fs::read(profile.join(name)).unwrap()).to_string()
    };
    let out = (read("stdout"), read("stderr"));
    let _ = std::fs::remove_dir_all(&profile);
    out
}

/// The DOM after the page's script ran, checked for errors, requests and sections.
fn load_in_chromium(browser: &Path, page: &Path) -> String {
    let (dom, log) = run_chromium(browser, &["--dump-dom".into()], page);
    // Console messages (script errors, blocked requests) are logged as CONSOLE lines.
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console: {console:#?}");
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not run"
    );
    assert!(
        !dom.contains("data-error=\""),
        "script error in {}",
        page.display()
    );
    let mut at = 0;
    for (id, _) in page::SECTIONS {
        let i = dom[at..]
            .find(&format!("<section id=\"{id}\">"))
            .unwrap_or_else(|| panic!("section {id} missing or out of order"));
        at += i;
    }
    // Every plot draws something: a series path with points, a path of the objects, a dot,
    // a speaker's disc or a bar.
    let plots = plots(&dom);
    assert!(plots.len() >= 8, "{} plots", plots.len());
    for p in &plots {
        let drawn = ["path", "polyline", "circle", "rect"].iter().any(|t| {
            tags(p, t).iter().any(|tag| {
                has_class(tag, "data")
                    && (attr(tag, "d").is_some_and(|d| d.contains('L'))
                        || attr(tag, "points").is_some_and(|d| d.contains(' '))
                        || attr(tag, "r").is_some_and(|r| r.parse::<f64>().unwrap() > 0.0)
                        || attr(tag, "width").is_some_and(|w| w.parse::<f64>().unwrap() > 0.0))
            })
        });
        assert!(drawn, "an empty plot: {}", &p[..p.len().min(300)]);
    }
    dom
}

/// A PNG's pixels as RGB(A) rows (8-bit, non-interlaced, colour types 2 and 6).
fn decode_png(bytes: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let (mut w, mut h, mut channels) = (0, 0, 0);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("colour type {t}"),
                };
                assert_eq!(data[12], 0, "interlaced");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).unwrap();
    let stride = w * channels;
    let mut px = vec![0u8; h * stride];
    for y in 0..h {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                px[y * stride + x - channels] as i32
            } else {
                0
            };
            let b = if y > 0 {
                px[(y - 1) * stride + x] as i32
            } else {
                0
            };
            let c = if x >= channels && y > 0 {
                px[(y - 1) * stride + x - channels] as i32
            } else {
                0
            };
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("filter {f}"),
            };
            px[y * stride + x] = (line[x] as i32 + pred) as u8;
        }
    }
    (w, h, channels, px)
}

#[test]
fn the_page_in_chromium() {
    let Some(browser) = chromium() else { return };
    let (dir, _) = rendered();
    let page_path = dir.join("report.html");
    let dom = load_in_chromium(&browser, &page_path);
    // What the browser parsed carries the meter's numbers.
    check_numbers(
        &dom,
        &json(&dir.join("report.json")),
        &json(&dir.join("timeline.json")),
    );

    let shot = dir.join("shot.png");
    let (_, log) = run_chromium(
        &browser,
        &[
            "--window-size=1040,2400".into(),
            format!("--screenshot={}", shot.display()),
        ],
        &page_path,
    );
    let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {log}"));
    let (w, h, channels, px) = decode_png(&bytes);
    assert_eq!((w, h), (1040, 2400));
    // Not blank: plenty of ink, and colour (the palette), not just text.
    let mut ink = 0usize;
    let mut coloured = 0usize;
    for p in px.chunks_exact(channels) {
        let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
        if r + g + b < 600 {
            ink += 1;
        }
        if (r - g).abs() > 60 || (g - b).abs() > 60 || (r - b).abs() > 60 {
            coloured += 1;
        }
    }
    let n = (w * h) as f64;
    assert!(ink as f64 / n > 0.02, "ink {:.3}", ink as f64 / n);
    assert!(
        coloured as f64 / n > 0.005,
        "colour {:.4}",
        coloured as f64 / n
    );
}

/// The acceptance's long session: two hours, 32 objects. The size is asserted; the load
/// time is printed (for the README), never asserted.
#[test]
fn a_two_hour_page_stays_small_and_loads() {
    let (report, timeline) = page::synthetic(7200.0, 32);
    let html = page::build(&report, &timeline);
    let mb = html.len() as f64 / 1e6;
    let timeline_mb = timeline.to_json().len() as f64 / 1e6;
    println!("two-hour, 32-object page: {mb:.2} MB (timeline.json {timeline_mb:.2} MB)");
    assert!(mb < 5.0, "{mb:.2} MB");
    assert!(timeline_mb < 5.0, "{timeline_mb:.2} MB");
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("long");
    let path = dir.join("long.html");
    std::fs::write(&path, &html).unwrap();
    let dom = load_in_chromium(&browser, &path);
    let ms = |name: &str| {
        let key = format!("{name}=\"");
        dom.find(&key).map(|i| {
            let v = &dom[i + key.len()..];
            v[..v.find('"').unwrap()].to_string()
        })
    };
    println!(
        "two-hour page in headless Chromium: DOM ready at {} ms, load event at {} ms",
        ms("data-dom-ms").unwrap_or_default(),
        ms("data-load-ms").unwrap_or_else(|| "?".into())
    );
}
