//! The audio callback allocates nothing: a counting global allocator counts allocations
//! made on this thread while `Player::process` runs, over a run with moving objects,
//! monitor switches (with warm-up and crossfade), seeks, pauses and loudness-matching
//! changes. The counter is shown to work by a deliberate allocation inside the window.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::counted;
mod playback_common;

use halo::drivers::playback::{self, Control, Monitor};
use playback_common::*;

#[test]
fn the_counter_sees_an_allocation() {
    let n = counted(|| {
        let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(16));
        drop(v);
    });
    assert_eq!(n, 2, "one allocation and one free");
}

#[test]
fn audio_callback_never_allocates() {
    let dir = temp_dir("play-alloc");
    let seconds = 3.0;
    let scene = moving_session(&dir, seconds, 6);
    let mut opts = options(Monitor::Binaural, seconds, 12);
    opts.read_ahead_s = 0.3; // the reader runs alongside, refilling as it goes
    let p = playback::prepare(&scene, &opts).unwrap();
    let (mut player, mut controller) = (p.player, p.controller);
    let dc = player.device_channels();
    let mut buf = vec![0.0f32; 256 * dc];
    // Control messages through the ring (as the UI sends them) at these callbacks.
    let script: Vec<(usize, Control)> = vec![
        (20, Control::Monitor(Monitor::Stereo)),
        (40, Control::MatchGains([-3.0, 2.0, 0.0])),
        (45, Control::Match(true)),
        (60, Control::Monitor(Monitor::Speakers)),
        (62, Control::Monitor(Monitor::Binaural)), // queued behind the running switch
        (90, Control::Seek(48_000)),
        (120, Control::Pause),
        (130, Control::Monitor(Monitor::Stereo)), // while paused: immediate
        (140, Control::Play),
        (160, Control::Seek(20_000)),
        (161, Control::Seek(100_000)), // a seek during the fade of another
        (200, Control::Match(false)),
        (210, Control::Monitor(Monitor::Binaural)),
        (215, Control::TogglePlay),
        (220, Control::TogglePlay),
    ];
    let mut allocations = 0;
    let mut rendered = 0;
    for k in 0..400 {
        for (_, c) in script.iter().filter(|(at, _)| *at == k) {
            assert!(controller.send(*c));
        }
        // Give the reader time, as a real device's pacing would.
        let t = std::time::Instant::now();
        while player.buffered_frames() < 512 && t.elapsed().as_millis() < 200 {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        allocations += counted(|| player.process(&mut buf));
        rendered += 1;
        let _ = controller.poll();
    }
    let status = player.status();
    eprintln!(
        "{rendered} callbacks of 256 frames, {} seeks, monitor {:?}, position {} frames, {} underruns: {allocations} allocations",
        status.generation, status.monitor, status.position_frames, status.underruns
    );
    // The seek at 161 replaces the one at 160 still fading out: two seeks executed.
    assert_eq!(status.generation, 2, "two seeks executed");
    assert_eq!(status.monitor, Monitor::Binaural);
    assert_eq!(allocations, 0, "the audio callback allocated");
    // The same window does count an allocation made inside the callback's thread.
    let deliberate = counted(|| {
        player.process(&mut buf);
        drop(std::hint::black_box(vec![0u8; 1]));
    });
    assert_eq!(deliberate, 2);
}
