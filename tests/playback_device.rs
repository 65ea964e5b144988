//! Playback through a real cpal stream on ALSA's `null` device (headless, no
//! configuration; not paced, so frames are counted, not seconds): the frames the device
//! callback receives equal the offline float render bit for bit, for the binaural, stereo
//! and 7.1.4 (12-channel) monitors. Needs `--features playback` (and libasound2-dev).
#![cfg(feature = "playback")]

mod playback_common;

use halo::drivers::playback::{self, Monitor, Player, device};
use playback_common::*;
use std::time::{Duration, Instant};

#[test]
fn null_device_receives_the_offline_render_bit_for_bit() {
    let dir = temp_dir("play-device");
    let seconds = 1.0;
    let scene = moving_session(&dir, seconds, 3);
    let offline = offline(&scene, &dir);
    let total = offline[0][0].len();
    let (dev, label) = device::open(Some("alsa:null")).expect("ALSA null device");
    let max = device::max_channels(&dev, &label, RATE).unwrap();
    assert!(max >= 12, "alsa:null offers {max} channels");
    for monitor in [Monitor::Binaural, Monitor::Stereo, Monitor::Speakers] {
        let dc = if monitor == Monitor::Speakers { 12 } else { 2 };
        let p = playback::prepare(&scene, &options(monitor, seconds, dc)).unwrap();
        let (player, controller) = (p.player, p.controller);
        // Everything read ahead, so the unpaced device never outruns the reader.
        wait_buffered(&player, total + player.latency() + 256);
        let want = (total + 4096) * dc;
        let rec = record(&dev, &label, player, want);
        let n = assert_bit_exact(
            &rec,
            dc,
            &offline[offline_index(monitor)],
            &format!("{monitor:?}"),
        );
        assert_eq!(n, total);
        assert!(
            rec[total * dc..].iter().all(|&x| x == 0.0),
            "{monitor:?}: not silent after the end"
        );
        drop(controller);
    }
}

#[test]
fn null_device_at_another_rate_receives_the_retimed_render_bit_for_bit() {
    let dir = temp_dir("play-device-rate");
    let seconds = 1.0;
    let scene = moving_session(&dir, seconds, 2);
    let rate = 44100;
    // alsa:null takes any rate, so the session's is chosen there; the rate is forced here.
    let (dev, label) = device::open(Some("alsa:null")).expect("ALSA null device");
    let (formats, default_rate) = device::formats(&dev, &label).unwrap();
    let layout = halo::scene::layout::Layout::builtin("7.1.4").unwrap();
    let plan = playback::plan_device(
        RATE,
        &formats,
        default_rate,
        Monitor::Stereo,
        &layout,
        &label,
    )
    .unwrap();
    assert_eq!(plan.rate, RATE);
    let retimed = scene.retimed(rate);
    let offline = offline(&retimed, &dir);
    let total = offline[0][0].len();
    assert_eq!(total, 44100);
    let mut opts = options(Monitor::Stereo, seconds, 2);
    opts.sample_rate = Some(rate);
    let p = playback::prepare(&scene, &opts).unwrap();
    let (player, controller) = (p.player, p.controller);
    wait_buffered(&player, total + player.latency() + 256);
    let want = (total + 4096) * 2;
    let rec = record(&dev, &label, player, want);
    let n = assert_bit_exact(
        &rec,
        2,
        &offline[offline_index(Monitor::Stereo)],
        "Stereo at 44.1 kHz",
    );
    assert_eq!(n, total);
    assert!(rec[total * 2..].iter().all(|&x| x == 0.0));
    drop(controller);
}

/// Plays `player` on the device until `want` samples arrived (or 60 s passed) and returns
/// them: the callback copies into a ring (no lock, no allocation); full means done.
fn record(dev: &cpal::Device, label: &str, player: Player, want: usize) -> Vec<f32> {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<f32>::new(want);
    let tap: device::Tap = Box::new(move |data: &[f32]| {
        let n = data.len().min(producer.slots());
        if let Ok(chunk) = producer.write_chunk_uninit(n) {
            chunk.fill_from_iter(data[..n].iter().copied());
        }
    });
    let output = device::start(dev, label, player, Some(256), Some(tap)).unwrap();
    let t = Instant::now();
    while consumer.slots() < want && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(output);
    let mut rec = Vec::with_capacity(want);
    while let Ok(x) = consumer.pop() {
        rec.push(x);
    }
    rec
}

fn halo(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn halo_play_on_the_null_device_plays_to_the_end_and_exits_cleanly() {
    let dir = temp_dir("play-cli");
    moving_session(&dir, 1.0, 2);
    let session = dir.join("session.ron");
    let s = session.to_str().unwrap();
    // Without a terminal there are no keys: it plays to the end and exits 0.
    for monitor in ["binaural", "stereo", "7.1.4", "5.1"] {
        let t = Instant::now();
        let (code, stdout, stderr) = halo(&[
            "play",
            s,
            "--device",
            "alsa:null",
            "--monitor",
            monitor,
            "--buffer",
            "256",
        ]);
        assert_eq!(code, Some(0), "--monitor {monitor}: {stdout} {stderr}");
        assert!(stdout.contains("halo play:"), "{stdout}");
        assert!(t.elapsed() < Duration::from_secs(60));
    }
    let (code, _, stderr) = halo(&["play", s, "--device", "alsa:no-such-device"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--device") && stderr.contains("alsa:null"),
        "{stderr}"
    );
    let (code, _, stderr) = halo(&["play", s, "--device", "alsa:null", "--monitor", "8.3.9"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--monitor 8.3.9"), "{stderr}");
    let (code, _, stderr) = halo(&["play", s, "--device", "alsa:null", "--start", "-1"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = halo(&["play", s, "--device", "alsa:null", "--buffer", "3"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--buffer"), "{stderr}");
    let (code, _, stderr) = halo(&["play", "/nonexistent/session.ron", "--device", "alsa:null"]);
    assert_eq!(code, Some(2), "{stderr}");
}
