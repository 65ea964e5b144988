//! The audio callback allocates nothing: a counting global allocator counts allocations
//! made on this thread while `Player::process` runs, over a run with moving objects,
//! monitor switches (with warm-up and crossfade), seeks, pauses and loudness-matching
//! changes. The counter is shown to work by a deliberate allocation inside the window.

mod playback_common;

use halo::drivers::playback::{self, Control, Monitor};
use playback_common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(|c| c.get()).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with this thread's allocations counted; returns how many there were.
fn counted(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

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
