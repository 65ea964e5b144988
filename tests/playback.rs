//! Playback core, without a sound device: the frames the audio-thread processor delivers
//! equal the offline float render bit for bit for every monitor; monitor switches do not
//! click (with a measure shown to catch a hard switch); seeks land where asked.

mod playback_common;

mod common;
use halo::drivers::playback::{self, Control, Monitor, PlayOptions, Player};
use halo::dsp::EqSettings;
use playback_common::*;
use std::f64::consts::TAU;

/// Runs the player in device buffers of `buffer` frames until it reports the end;
/// `at` is called before each buffer with the frames delivered so far.
fn run(
    player: &mut Player,
    buffer: usize,
    max_frames: usize,
    mut at: impl FnMut(&mut Player, usize),
) -> Vec<f32> {
    let dc = player.device_channels();
    let mut out = Vec::new();
    let mut buf = vec![0.0f32; buffer * dc];
    let mut frames = 0;
    while frames < max_frames {
        at(player, frames);
        player.process(&mut buf);
        out.extend_from_slice(&buf);
        frames += buffer;
        if player.status().ended {
            break;
        }
    }
    out
}

/// The click measure of `tests/common` at the session rate.
fn high_band_ratio_db(channels: &[Vec<f32>]) -> f64 {
    common::high_band_ratio_db(channels, RATE)
}

#[test]
fn delivered_frames_equal_the_offline_render_for_every_monitor() {
    let dir = temp_dir("play-exact");
    let seconds = 1.5;
    let scene = moving_session(&dir, seconds, 4);
    let offline = offline(&scene, &dir);
    let total = offline[0][0].len();
    for (monitor, buffer) in [
        (Monitor::Binaural, 256),
        (Monitor::Stereo, 100),
        (Monitor::Speakers, 512),
    ] {
        let p = playback::prepare(&scene, &options(monitor, seconds, 12)).unwrap();
        let (mut player, controller) = (p.player, p.controller);
        wait_buffered(&player, total + player.latency());
        let out = run(&mut player, buffer, 2 * total, |_, _| {});
        let n = assert_bit_exact(
            &out,
            12,
            &offline[offline_index(monitor)],
            &format!("{monitor:?}"),
        );
        let status = player.status();
        assert_eq!(status.underruns, 0);
        assert_eq!(status.position_frames, total as u64);
        assert!(status.ended);
        // Past the end: silence.
        assert!(out[n * 12..].iter().all(|&x| x == 0.0));
        // The heard signal is not trivially silent.
        let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.05, "{monitor:?}: peak {peak}");
        drop(controller);
    }
}

/// A 2 s session with one static 500 Hz tone in front, outputs as in `moving_session`
/// but without dynamics (so only the switch can add high frequencies).
fn tone_session(dir: &std::path::Path) -> halo::scene::mix::Scene {
    let frames = 2 * RATE as usize;
    let spec = halo::formats::io::WavSpec {
        channels: 1,
        sample_rate: RATE,
        format: halo::formats::io::WriteFormat::F32,
        channel_mask: None,
    };
    let mut w = halo::formats::io::WavWriter::create(&dir.join("tone.wav"), spec).unwrap();
    w.write(&sine(500.0, frames, 0.5)).unwrap();
    w.finish().unwrap().commit().unwrap();
    let text = format!(
        r#"Session(sample_rate: {RATE}, duration: 2.0,
    objects: [(name: "tone", source: "tone.wav", position: Polar(az: 30.0, el: 0.0))],
    outputs: [Speakers(layout: "7.1.4"), Binaural(), Stereo(from: "7.1.4")])"#
    );
    let path = dir.join("tone.ron");
    let mut read_layout =
        |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| e.to_string());
    halo::formats::session::parse(&text, &path, &mut read_layout).unwrap()
}

/// Plays the tone session on 2 channels from `from`, asking for `to` at the first device
/// buffer at or after `at` frames (None: no switch), with the given crossfade; returns the
/// two channels.
fn switched(
    scene: &halo::scene::mix::Scene,
    from: Monitor,
    to: Option<Monitor>,
    crossfade_ms: f64,
    at: usize,
) -> Vec<Vec<f32>> {
    let mut opts: PlayOptions = options(from, 2.0, 2);
    opts.crossfade_ms = crossfade_ms;
    let p = playback::prepare(scene, &opts).unwrap();
    let mut player = p.player;
    wait_buffered(&player, 2 * RATE as usize + player.latency());
    let mut asked = false;
    let out = run(&mut player, 256, 4 * RATE as usize, |pl, f| {
        if f >= at
            && !asked
            && let Some(m) = to
        {
            pl.apply(Control::Monitor(m));
            asked = true;
        }
    });
    assert_eq!(player.status().monitor, to.unwrap_or(from));
    let frames = 2 * RATE as usize;
    (0..2)
        .map(|c| (0..frames).map(|f| out[f * 2 + c]).collect())
        .collect()
}

#[test]
fn monitor_switch_does_not_click() {
    let dir = temp_dir("play-click");
    let scene = tone_session(&dir);
    let second = RATE as usize;
    let still = high_band_ratio_db(&switched(&scene, Monitor::Stereo, None, 20.0, second));
    eprintln!("above 4 kHz: no switch {still:.1} dB");
    assert!(still < -100.0, "static tone reads {still:.1} dB");
    // The switch lands on a device buffer (256 frames); three consecutive buffers start
    // the new monitor at three phases of the 500 Hz tone (96 frames a period): 0°, 240°
    // and 120° in this setup. A renderer that restarts with a step in its input passes at
    // the zero crossing and fails at the other two (the room rings with the step).
    for k in 0..3 {
        let at = second + k * 256;
        let smooth = high_band_ratio_db(&switched(
            &scene,
            Monitor::Stereo,
            Some(Monitor::Binaural),
            20.0,
            at,
        ));
        let back = high_band_ratio_db(&switched(
            &scene,
            Monitor::Binaural,
            Some(Monitor::Stereo),
            20.0,
            at,
        ));
        eprintln!("switch at {at}: stereo→binaural {smooth:.1} dB, binaural→stereo {back:.1} dB");
        assert!(
            smooth < -80.0,
            "crossfaded switch at {at} reads {smooth:.1} dB"
        );
        assert!(
            back < -80.0,
            "crossfaded switch back at {at} reads {back:.1} dB"
        );
    }
    let hard = high_band_ratio_db(&switched(
        &scene,
        Monitor::Stereo,
        Some(Monitor::Binaural),
        0.0,
        second,
    ));
    eprintln!("hard switch {hard:.1} dB");
    assert!(
        hard > -80.0,
        "a hard switch reads only {hard:.1} dB: the measure cannot fail"
    );
}

#[test]
fn seek_lands_on_the_asked_frame_and_plays_on() {
    let dir = temp_dir("play-seek");
    let seconds = 1.5;
    let scene = moving_session(&dir, seconds, 2);
    let offline = offline(&scene, &dir);
    let p = playback::prepare(&scene, &options(Monitor::Stereo, seconds, 2)).unwrap();
    let mut player = p.player;
    let target = RATE as u64; // 1 s
    let mut sought = false;
    let mut after = Vec::new();
    let mut buf = vec![0.0f32; 256 * 2];
    for _ in 0..100_000 {
        if player.status().position_frames >= 4800 && !sought {
            player.apply(Control::Seek(target));
            sought = true;
        }
        player.process(&mut buf);
        if sought && player.status().position_frames > target {
            after.extend_from_slice(&buf);
        }
        if player.status().ended {
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    assert!(sought && player.status().ended);
    assert_eq!(player.status().generation, 1);
    // After the 20 ms fade-in the output follows the offline render of 1 s onwards
    // (same music, processing state restarted, so close rather than identical).
    let reference = &offline[2];
    let start = target as usize;
    let heard: Vec<f32> = after.chunks(2).map(|f| f[0]).collect();
    let energy = |x: &[f32]| x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
    let skip = 2400; // past the fade-in
    let n = (reference[0].len() - start - skip).min(heard.len().saturating_sub(skip)) - 256;
    let diff: Vec<f32> = (0..n)
        .map(|k| heard[skip + k] - reference[0][start + skip + k])
        .collect();
    let snr_db =
        10.0 * (energy(&reference[0][start + skip..start + skip + n]) / energy(&diff)).log10();
    eprintln!("after the seek: {n} frames, {snr_db:.1} dB signal to difference");
    assert!(
        snr_db > 20.0,
        "after the seek the output differs: {snr_db:.1} dB"
    );
}

#[test]
fn only_the_monitored_output_is_rendered_and_re_enabling_converges() {
    use halo::engine::Engine;
    let dir = temp_dir("play-enable");
    let scene = moving_session(&dir, 1.0, 3);
    let setup = playback::play_setup(&scene, None, None, 256).unwrap();
    let frames = RATE as usize;
    let n_obj = scene.objects.len();
    let signal = |i: usize, f: usize| ((f * 31 + i * 977) % 401) as f32 / 401.0 - 0.5;
    // Renders the binaural output; `enabled(block)` says whether it is on in that block.
    let render = |only: bool, enabled: &dyn Fn(usize) -> bool| -> Vec<f32> {
        let mut e = Engine::new(setup.engine.clone()).unwrap();
        if only {
            e.set_output_enabled(0, false);
            e.set_output_enabled(2, false);
        }
        let mut out = Vec::new();
        for (k, start) in (0..frames).step_by(256).enumerate() {
            e.set_output_enabled(1, enabled(k));
            for i in 0..n_obj {
                for (f, x) in e.object_input(i)[..256].iter_mut().enumerate() {
                    *x = signal(i, start + f);
                }
            }
            e.process(256);
            out.extend_from_slice(&e.output(1)[0][..256]);
        }
        out
    };
    let all = render(false, &|_| true);
    let only = render(true, &|_| true);
    assert!(
        all.iter()
            .zip(&only)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "rendering only the binaural output changed it"
    );
    // Off for blocks 40…79, back on at block 80 (frame 20480).
    let gap = render(true, &|k| !(40..80).contains(&k));
    let back = 80 * 256;
    let warm = back + setup_warmup(&setup);
    let diff = |range: std::ops::Range<usize>| {
        range
            .map(|f| (all[f] - gap[f]).abs())
            .fold(0.0f32, f32::max)
    };
    let before = diff(0..40 * 256);
    let during_warmup = diff(back..back + 256);
    let after = diff(warm..frames);
    let later = diff(back + (0.25 * RATE as f64) as usize..frames);
    eprintln!(
        "re-enabled binaural output against one never disabled: {during_warmup:.3} in its first block, {after:.4} after the warm-up, {later:e} from 250 ms on"
    );
    assert_eq!(before, 0.0);
    assert!(
        during_warmup > 0.1,
        "the measure sees the restart ({during_warmup:e})"
    );
    // What remains after the warm-up is the limiter's release memory (50 ms) and the late
    // reverb of the shared binaural room (the session's objects are in the default mode,
    // Mid) of what was played before the gap, and of the first 10 ms after it, which the
    // restarted renderer fades in (`RESTART_FADE_S`): a re-enabled monitor cannot have
    // them (0.036 with an abrupt restart, 0.051–0.052 with the fade-in)…
    assert!(
        after < 0.07,
        "after the warm-up the output differs by {after:e}"
    );
    // …and that reverb decays at 60 dB per RT60 (0.30 s): 250 ms on, at least 50 dB below
    // full scale. (Without a room the output is bit-identical again.)
    assert!(later < 10f32.powf(-50.0 / 20.0), "250 ms on: {later:e}");
}

/// The warm-up the Player gives a newly enabled monitor.
fn setup_warmup(setup: &playback::PlaySetup) -> usize {
    let latency = halo::engine::Engine::new(setup.engine.clone())
        .unwrap()
        .latency();
    playback::warmup_frames(latency, RATE)
}

#[test]
fn loudness_analysis_agrees_with_the_offline_render_and_matching_applies_its_gains() {
    use halo::formats::io::WriteFormat;
    use std::sync::atomic::AtomicBool;
    let dir = temp_dir("play-match");
    let seconds = 2.5;
    let scene = moving_session(&dir, seconds, 3);
    let out = dir.join("render");
    std::fs::create_dir_all(&out).unwrap();
    let mut ro = halo::drivers::render::RenderOptions::new(&out);
    ro.format = WriteFormat::F32;
    let report = halo::drivers::render::render(&scene, &mut ro).unwrap();
    let setup = playback::play_setup(&scene, None, None, playback::CHUNK_FRAMES).unwrap();
    let mut interim = Vec::new();
    let est = playback::LoudnessAnalysis::run(&scene, &setup, &AtomicBool::new(false), &mut |e| {
        interim.push(e)
    })
    .unwrap();
    assert!(est.done);
    assert!(
        interim.len() >= 2,
        "a running estimate before the final one"
    );
    assert!(!interim[0].done);
    let offline_lufs = |kind: &str| {
        report
            .outputs
            .iter()
            .find(|o| o.kind == kind)
            .unwrap()
            .loudness
            .integrated_lufs
    };
    let want = [
        offline_lufs("binaural"),
        offline_lufs("stereo"),
        offline_lufs("speakers"),
    ];
    eprintln!(
        "integrated: analysis {:?}, offline {want:?}",
        est.integrated_lufs
    );
    for (a, b) in est.integrated_lufs.iter().zip(&want) {
        assert!(
            (a - b).abs() < 1e-9,
            "analysis {a} LUFS, offline render {b} LUFS"
        );
    }
    let gains = est.match_gains_db();
    assert_eq!(gains[2], 0.0);
    assert!((gains[0] as f64 - (want[2] - want[0])).abs() < 1e-4);

    // With matching on, the binaural monitor is the offline render times its gain.
    let offline = offline(&scene, &dir);
    let p = playback::prepare(&scene, &options(Monitor::Binaural, seconds, 2)).unwrap();
    let mut player = p.player;
    player.apply(Control::MatchGains(gains));
    player.apply(Control::Match(true));
    wait_buffered(&player, (seconds * RATE as f64) as usize);
    let heard = run(&mut player, 256, 10 * RATE as usize, |_, _| {});
    let g = 10f32.powf(gains[0] / 20.0);
    let reference = &offline[offline_index(Monitor::Binaural)];
    let mut worst = 0.0f32;
    for f in 2000..reference[0].len() {
        for c in 0..2 {
            worst = worst.max((heard[f * 2 + c] - reference[c][f] * g).abs());
        }
    }
    eprintln!(
        "matched binaural: gain {:+.2} dB, worst deviation {worst:e}",
        gains[0]
    );
    assert!(worst < 1e-6, "matched output deviates by {worst:e}");
}

#[test]
fn speaker_monitor_on_too_few_device_channels_is_refused() {
    let dir = temp_dir("play-channels");
    let scene = moving_session(&dir, 0.5, 1);
    let err = playback::prepare(&scene, &options(Monitor::Speakers, 0.5, 2))
        .err()
        .expect("a 2-channel device cannot monitor 7.1.4");
    let msg = err.to_string();
    assert!(
        msg.contains("7.1.4") && msg.contains("12") && msg.contains("binaural"),
        "{msg}"
    );
    assert!(err.is_bad_input());
    // On two channels the player ignores a request for the speaker monitor.
    let p = playback::prepare(&scene, &options(Monitor::Stereo, 0.5, 2)).unwrap();
    let mut player = p.player;
    player.apply(Control::Monitor(Monitor::Speakers));
    assert_eq!(player.status().monitor, Monitor::Stereo);
    assert_eq!(player.status().switching_to, None);
}

#[cfg(not(feature = "playback"))]
#[test]
fn without_the_feature_play_says_how_to_get_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_halo"))
        .args(["play", "whatever.ron"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--features playback") && err.contains("libasound2-dev"),
        "{err}"
    );
}

#[test]
fn pause_and_resume_fade_and_hold_the_position() {
    let dir = temp_dir("play-pause");
    let scene = tone_session(&dir);
    let (worst, tone_step) = pause_steps(&scene, 20.0);
    assert!(
        worst < tone_step * 1.1,
        "a step of {worst} at pause or resume"
    );
    // The measure fails for a pause without a fade (one-frame fades).
    let (abrupt, _) = pause_steps(&scene, 0.0);
    eprintln!("pause without fade: largest step {abrupt:.4}");
    assert!(
        abrupt > tone_step * 3.0,
        "an abrupt pause reads only {abrupt}"
    );
}

/// Plays the tone with a pause at callback 100 and a resume at 150; returns the largest
/// sample-to-sample step and the tone's own largest step.
fn pause_steps(scene: &halo::scene::mix::Scene, fade_ms: f64) -> (f32, f32) {
    let mut opts = options(Monitor::Stereo, 2.0, 2);
    opts.crossfade_ms = fade_ms;
    let p = playback::prepare(scene, &opts).unwrap();
    let mut player = p.player;
    wait_buffered(&player, 2 * RATE as usize);
    let mut held = Vec::new();
    let out = run(&mut player, 256, 4 * RATE as usize, |pl, f| {
        if f == 256 * 100 {
            pl.apply(Control::Pause);
        }
        if (256 * 110..256 * 150).contains(&f) {
            held.push(pl.status().position_frames);
        }
        if f == 256 * 150 {
            pl.apply(Control::TogglePlay);
        }
    });
    let left: Vec<f32> = out.chunks(2).map(|f| f[0]).collect();
    // Paused: silence, position held.
    assert!(
        held.windows(2).all(|w| w[0] == w[1]),
        "position moved while paused"
    );
    assert!(left[256 * 110..256 * 150].iter().all(|&x| x == 0.0));
    // No step anywhere: the largest sample-to-sample change stays that of the tone.
    let peak = left.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let tone_step = peak * (TAU * 500.0 / RATE as f64) as f32;
    let worst = left
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "pause/resume ({fade_ms} ms fades): largest step {worst:.4}, the tone's own {tone_step:.4} (peak {peak:.3})"
    );
    // The session plays to its end: 2 s of audio heard, 40 callbacks of pause besides.
    assert!(player.status().ended);
    let sounding = left.iter().filter(|&&x| x != 0.0).count();
    assert!(
        sounding > 2 * RATE as usize - 2000,
        "{sounding} frames sounded"
    );
    (worst, tone_step)
}

#[test]
fn source_stream_seek_lands_on_the_frame_also_when_resampling() {
    use halo::formats::io::{SourceStream, WavSpec, WavWriter, WriteFormat};
    let dir = temp_dir("play-stream-seek");
    for file_rate in [48_000u32, 44_100] {
        let path = dir.join(format!("s{file_rate}.wav"));
        let spec = WavSpec {
            channels: 1,
            sample_rate: file_rate,
            format: WriteFormat::F32,
            channel_mask: None,
        };
        let n = file_rate as usize;
        let sig: Vec<f32> = (0..n)
            .map(|i| (0.5 * (TAU * 440.0 * i as f64 / file_rate as f64).sin()) as f32)
            .collect();
        let mut w = WavWriter::create(&path, spec).unwrap();
        w.write(&sig).unwrap();
        w.finish().unwrap().commit().unwrap();
        let read_all = |s: &mut SourceStream| {
            let mut out = Vec::new();
            let mut buf = vec![0.0f32; 1000];
            loop {
                let k = s.read(&mut buf).unwrap();
                if k == 0 {
                    break out;
                }
                out.extend_from_slice(&buf[..k]);
            }
        };
        let mut s = SourceStream::open(&path, RATE).unwrap();
        let whole = read_all(&mut s);
        for target in [0u64, 12_345, 30_001] {
            let mut s = SourceStream::open(&path, RATE).unwrap();
            s.seek(target).unwrap();
            let tail = read_all(&mut s);
            assert_eq!(
                tail.len(),
                whole.len() - target as usize,
                "{file_rate} Hz, seek {target}"
            );
            // Past the resampler's start-up (its filter sees silence before the restart).
            let skip = if file_rate == RATE { 0 } else { 2048 };
            let worst = tail[skip..tail.len() - 2048]
                .iter()
                .zip(&whole[target as usize + skip..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("{file_rate} Hz, seek to {target}: worst difference {worst:e}");
            if file_rate == RATE {
                assert_eq!(worst, 0.0);
            } else {
                assert!(worst < 1e-5, "{file_rate} Hz, seek {target}: {worst}");
            }
        }
        // Past the end: nothing more to read.
        let mut s = SourceStream::open(&path, RATE).unwrap();
        s.seek(u64::MAX).unwrap();
        assert!(read_all(&mut s).is_empty());
    }
}

#[test]
fn an_adm_master_plays_the_same_frames_as_its_session() {
    // The session's sources exported as one ADM master (every object a track of one file),
    // read back and played: the frames equal the offline render of the original session.
    let dir = temp_dir("play-adm");
    let seconds = 1.0;
    let scene = moving_session(&dir, seconds, 6);
    let expected = offline(&scene, &dir);
    let master = dir.join("master.wav");
    let options_export = halo::drivers::exchange::ExportOptions {
        format: halo::formats::io::WriteFormat::F32,
        measure_loudness: false,
        ..Default::default()
    };
    halo::drivers::exchange::export(&scene, &master, &options_export).unwrap();
    let mut adm = halo::drivers::exchange::read_master(&master, None)
        .unwrap()
        .scene;
    assert!(adm.objects.iter().all(|o| o.source.path == master));
    adm.outputs = scene.outputs.clone();
    let total = expected[0][0].len();
    for monitor in [Monitor::Binaural, Monitor::Speakers] {
        let p = playback::prepare(&adm, &options(monitor, seconds, 12)).unwrap();
        let (mut player, controller) = (p.player, p.controller);
        wait_buffered(&player, total + player.latency());
        let out = run(&mut player, 256, 2 * total, |_, _| {});
        assert_bit_exact(
            &out,
            12,
            &expected[offline_index(monitor)],
            &format!("ADM {monitor:?}"),
        );
        drop(controller);
    }
}

// ---------------------------------------------------------------------------------------
// Playing at a device rate other than the session's: the session retimed to it.

#[test]
fn a_48k_session_played_at_44k1_is_the_offline_render_of_the_retimed_session() {
    let dir = temp_dir("play-rate");
    let seconds = 1.5;
    let device_rate = 44100;
    let scene = moving_session(&dir, seconds, 3);
    let retimed = scene.retimed(device_rate);
    let total = retimed.duration_frames.unwrap() as usize;
    assert_eq!(total, 66150);
    let offline = offline(&retimed, &dir);
    assert_eq!(
        offline[0][0].len(),
        total,
        "the offline render runs at 44.1 kHz"
    );
    for (monitor, buffer) in [
        (Monitor::Binaural, 300),
        (Monitor::Stereo, 256),
        (Monitor::Speakers, 441),
    ] {
        let mut opts = options(monitor, seconds, 12);
        opts.sample_rate = Some(device_rate);
        let p = playback::prepare(&scene, &opts).unwrap();
        let (mut player, controller) = (p.player, p.controller);
        assert_eq!(player.sample_rate(), device_rate);
        assert_eq!(controller.sample_rate(), device_rate);
        assert_eq!(controller.total_frames(), total as u64);
        wait_buffered(&player, total + player.latency());
        let out = run(&mut player, buffer, 2 * total, |_, _| {});
        let n = assert_bit_exact(
            &out,
            12,
            &offline[offline_index(monitor)],
            &format!("{monitor:?} at {device_rate} Hz"),
        );
        assert_eq!(n, total);
        let status = player.status();
        assert_eq!(status.underruns, 0);
        assert_eq!(status.position_frames, total as u64);
        assert!(status.ended);
        assert!(out[n * 12..].iter().all(|&x| x == 0.0));
        let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak > 0.05, "{monitor:?}: peak {peak}");
    }
    // The same rate as the session's changes nothing: the 48 kHz render, bit for bit.
    let native = halo::drivers::playback::prepare(&scene, &{
        let mut o = options(Monitor::Stereo, seconds, 2);
        o.sample_rate = Some(RATE);
        o
    })
    .unwrap();
    let mut player = native.player;
    assert_eq!(player.sample_rate(), RATE);
    let offline48 = playback_common::offline(&scene, &dir.join("native"));
    let total48 = offline48[0][0].len();
    assert_eq!(total48, 72000);
    wait_buffered(&player, total48 + player.latency());
    let out = run(&mut player, 256, 2 * total48, |_, _| {});
    assert_bit_exact(
        &out,
        2,
        &offline48[offline_index(Monitor::Stereo)],
        "Stereo at 48 kHz",
    );
}

#[test]
fn at_the_device_rate_start_and_seek_are_device_frames_and_analysis_meters_the_retimed_render() {
    use halo::formats::io::WriteFormat;
    let dir = temp_dir("play-rate-start");
    let seconds = 2.5;
    let scene = moving_session(&dir, seconds, 2);
    let mut opts = options(Monitor::Binaural, seconds, 2);
    opts.sample_rate = Some(44100);
    opts.start_s = 0.5;
    opts.analyse_loudness = true;
    let p = playback::prepare(&scene, &opts).unwrap();
    let (mut player, mut controller) = (p.player, p.controller);
    assert_eq!(player.status().position_frames, 22050, "0.5 s at 44.1 kHz");
    player.apply(Control::Seek(1_000_000));
    assert_eq!(
        player.status().position_frames,
        110250,
        "seeks clamp to the retimed length (2.5 s at 44.1 kHz)"
    );
    // The loudness analysis measures the retimed session's render at 44.1 kHz.
    let out = dir.join("render44");
    std::fs::create_dir_all(&out).unwrap();
    let mut ro = halo::drivers::render::RenderOptions::new(&out);
    ro.format = WriteFormat::F32;
    let report = halo::drivers::render::render(&scene.retimed(44100), &mut ro).unwrap();
    let t = std::time::Instant::now();
    let est = loop {
        controller.poll();
        if let Some(e) = controller.estimate()
            && e.done
        {
            break e;
        }
        assert!(t.elapsed().as_secs() < 60, "no final loudness estimate");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(est.measured_frames, 110250);
    let lufs = |kind: &str| {
        report
            .outputs
            .iter()
            .find(|o| o.kind == kind)
            .unwrap()
            .loudness
            .integrated_lufs
    };
    for (a, b) in
        est.integrated_lufs
            .iter()
            .zip([lufs("binaural"), lufs("stereo"), lufs("speakers")])
    {
        assert!(
            (a - b).abs() < 1e-9,
            "analysis {a} LUFS, 44.1 kHz render {b} LUFS"
        );
    }
}

#[test]
fn an_eq_band_above_the_device_nyquist_is_refused_clearly() {
    use halo::dsp::{EqBand, EqKind, ProcessorSettings};
    use halo::scene::mix::OutputSpec;
    let dir = temp_dir("play-rate-eq");
    let mut scene = moving_session(&dir, 0.5, 1);
    // A high shelf at 23 kHz: fine at 48 kHz, above the Nyquist frequency of 44.1 kHz.
    for o in &mut scene.outputs {
        if let OutputSpec::Stereo { chain, .. } = o {
            chain.insert(
                0,
                ProcessorSettings::Eq(EqSettings {
                    bands: vec![EqBand {
                        kind: EqKind::HighShelf,
                        freq_hz: 23000.0,
                        gain_db: -3.0,
                        q: 0.707,
                    }],
                }),
            );
        }
    }
    let mut opts = options(Monitor::Stereo, 0.5, 2);
    opts.sample_rate = Some(44100);
    let err = playback::prepare(&scene, &opts)
        .err()
        .expect("23 kHz does not fit 44.1 kHz");
    let msg = err.to_string();
    assert!(err.is_bad_input(), "{msg}");
    assert!(
        msg.contains("44100 Hz") && msg.contains("23000 Hz") && msg.contains("48000 Hz"),
        "{msg}"
    );
    // Nyquist exactly at the band is refused too; just above it plays.
    opts.sample_rate = Some(46000);
    assert!(playback::prepare(&scene, &opts).is_err());
    opts.sample_rate = Some(46100);
    let p = playback::prepare(&scene, &opts).unwrap();
    assert_eq!(p.player.sample_rate(), 46100);
    opts.sample_rate = Some(1000);
    let err = playback::prepare(&scene, &opts).err().unwrap();
    assert!(err.to_string().contains("8000…384000"), "{err}");
}

fn fmt(channels: usize, min_rate: u32, max_rate: u32, float32: bool) -> playback::DeviceFormat {
    playback::DeviceFormat {
        channels,
        min_rate,
        max_rate,
        float32,
    }
}

#[test]
fn device_rate_choice() {
    use halo::scene::layout::Layout;
    use playback::{DevicePlan, PlaybackError, choose_device_rate, plan_device};
    let l714 = Layout::builtin("7.1.4").unwrap();
    // A typical laptop: 44.1 kHz only.
    let laptop = [fmt(2, 44100, 44100, true), fmt(2, 44100, 44100, false)];
    assert_eq!(
        choose_device_rate(48000, &laptop, Some(44100), 2),
        Some(44100)
    );
    assert_eq!(
        plan_device(48000, &laptop, Some(44100), Monitor::Binaural, &l714, "dev").unwrap(),
        DevicePlan {
            rate: 44100,
            channels: 2,
            max_channels: 2
        }
    );
    // The session's rate wins whenever the device takes it.
    let wide = [fmt(2, 8000, 192000, true)];
    assert_eq!(
        choose_device_rate(48000, &wide, Some(44100), 2),
        Some(48000)
    );
    // … with the channels the starting monitor needs: 2 channels at 48 kHz, 12 at 44.1.
    let split = [fmt(2, 48000, 48000, true), fmt(12, 44100, 44100, true)];
    let plan = |m| plan_device(48000, &split, None, m, &l714, "dev").unwrap();
    assert_eq!(plan(Monitor::Stereo).rate, 48000);
    assert_eq!(plan(Monitor::Stereo).channels, 2);
    assert_eq!(
        plan(Monitor::Speakers),
        DevicePlan {
            rate: 44100,
            channels: 12,
            max_channels: 12
        }
    );
    // Only float formats count.
    let int_at_48 = [fmt(2, 48000, 48000, false), fmt(2, 96000, 96000, true)];
    assert_eq!(
        choose_device_rate(48000, &int_at_48, Some(48000), 2),
        Some(96000)
    );
    // Default rate when it is taken and in 8…384 kHz, else the highest taken rate.
    let two = [fmt(2, 22050, 44100, true), fmt(2, 96000, 96000, true)];
    assert_eq!(choose_device_rate(48000, &two, Some(32000), 2), Some(32000));
    assert_eq!(choose_device_rate(48000, &two, None, 2), Some(96000));
    assert_eq!(choose_device_rate(48000, &two, Some(16000), 2), Some(96000));
    assert_eq!(choose_device_rate(48000, &two, Some(48000), 2), Some(96000));
    let huge = [fmt(2, 100000, 768000, true)];
    assert_eq!(
        choose_device_rate(48000, &huge, Some(768000), 2),
        Some(384000)
    );
    let tiny = [fmt(2, 4000, 6000, true)];
    assert_eq!(choose_device_rate(48000, &tiny, Some(4000), 2), None);
    // Errors: no float format in range; too few channels anywhere.
    for formats in [&tiny[..], &[fmt(2, 48000, 48000, false)][..], &[][..]] {
        let err = plan_device(48000, formats, None, Monitor::Stereo, &l714, "dev").unwrap_err();
        assert!(matches!(err, PlaybackError::Config { .. }), "{err}");
        assert!(err.is_bad_input());
    }
    let err = plan_device(48000, &wide, None, Monitor::Speakers, &l714, "dev").unwrap_err();
    assert!(
        matches!(
            err,
            PlaybackError::TooFewChannels {
                needed: 12,
                available: 2,
                ..
            }
        ),
        "{err}"
    );
    let mono = [fmt(1, 44100, 48000, true)];
    let err = plan_device(48000, &mono, None, Monitor::Binaural, &l714, "dev").unwrap_err();
    assert!(
        matches!(
            err,
            PlaybackError::TooFewChannels {
                needed: 2,
                available: 1,
                ..
            }
        ),
        "{err}"
    );
}
