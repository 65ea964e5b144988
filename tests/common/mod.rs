//! Helpers shared by halo's integration tests: test signals and the click measure. Each
//! test crate includes this with `mod common;` and uses what it needs.
#![allow(dead_code)]

use std::f64::consts::TAU;

/// `frames` samples of a sine at `freq_hz` and peak amplitude `amp`, at `rate` Hz.
pub fn sine(freq_hz: f64, amp: f64, frames: usize, rate: u32) -> Vec<f32> {
    (0..frames)
        .map(|i| (amp * (TAU * freq_hz * i as f64 / f64::from(rate)).sin()) as f32)
        .collect()
}

/// Energy above 4 kHz relative to the total, in dB, summed over channels: an 8th-order
/// Butterworth high-pass (four RBJ biquads) run over the signal, the first 50 ms skipped so
/// the filters' start-up transient does not count. A click (a step or a kink in a gain)
/// spreads energy over every frequency and shows here; a smooth ramp on a low sine does not.
pub fn high_band_ratio_db(channels: &[Vec<f32>], rate: u32) -> f64 {
    let rate = f64::from(rate);
    let skip = (0.05 * rate) as usize;
    let mut hp = 0.0f64;
    let mut total = 0.0f64;
    for ch in channels {
        let mut sig: Vec<f64> = ch.iter().map(|&x| x as f64).collect();
        for k in 0..4 {
            // Butterworth Q values for 8th order.
            let q = 1.0 / (2.0 * ((2 * k + 1) as f64 * std::f64::consts::PI / 16.0).sin());
            let w = TAU * 4000.0 / rate;
            let alpha = w.sin() / (2.0 * q);
            let a0 = 1.0 + alpha;
            let b0 = (1.0 + w.cos()) / 2.0 / a0;
            let b1 = -(1.0 + w.cos()) / a0;
            let a1 = -2.0 * w.cos() / a0;
            let a2 = (1.0 - alpha) / a0;
            let (mut z1, mut z2) = (0.0, 0.0);
            for x in sig.iter_mut() {
                let y = b0 * *x + z1;
                z1 = b1 * *x - a1 * y + z2;
                z2 = b0 * *x - a2 * y;
                *x = y;
            }
        }
        hp += sig[skip..].iter().map(|x| x * x).sum::<f64>();
        total += ch[skip..]
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>();
    }
    10.0 * (hp.max(1e-300) / total).log10()
}
