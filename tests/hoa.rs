//! The BS.2127 §9 HOA decoder (`spatial::hoa`): a plane wave from a speaker's direction
//! is loudest on that speaker, a plane wave's power averaged over the sphere is 1 (within
//! 0.5 dB) and even across directions, the three
//! normalisations give the same speaker signals for the same sound field, and LFE
//! channels get nothing. EAR's renders of HOA files are compared in `adm_corpus.rs`.

use halo::scene::geometry::Position;
use halo::scene::layout::Layout;
use halo::spatial::hoa::{HoaFormat, HoaNormalization, decode_matrix, from_acn, sph_harm};
use halo::spatial::objectbased::GainCalc;

fn format(order: u32, normalization: HoaNormalization) -> HoaFormat {
    HoaFormat {
        channels: (0..((order + 1) * (order + 1)) as usize)
            .map(from_acn)
            .collect(),
        normalization,
    }
}

fn decoder(layout: &Layout, f: &HoaFormat) -> Vec<Vec<f64>> {
    let gc = GainCalc::new(layout).unwrap();
    decode_matrix(f, layout.num_channels(), |az, el, g| {
        gc.position_gains(
            Position::Polar {
                azimuth_deg: az,
                elevation_deg: el,
                distance: 1.0,
            },
            0.0,
            g,
        )
    })
    .unwrap()
}

/// Speaker signals of a unit plane wave from (az, el).
fn speaker_gains(d: &[Vec<f64>], f: &HoaFormat, az: f64, el: f64) -> Vec<f64> {
    let y: Vec<f64> = f
        .channels
        .iter()
        .map(|&(n, m)| sph_harm(n, m, az, el, f.normalization))
        .collect();
    d.iter()
        .map(|row| row.iter().zip(&y).map(|(a, b)| a * b).sum())
        .collect()
}

#[test]
fn a_plane_wave_from_a_speaker_lands_mostly_on_it() {
    // 7.1.4 at third order (no maxRE weighting, as BS.2127's default decoder).
    let layout = Layout::builtin("7.1.4").unwrap();
    let f = format(3, HoaNormalization::SN3D);
    let d = decoder(&layout, &f);
    for (s, ch) in layout.channels.iter().enumerate().filter(|(_, c)| !c.lfe) {
        let g = speaker_gains(&d, &f, ch.azimuth_deg, ch.elevation_deg);
        let power: f64 = g.iter().map(|v| v * v).sum();
        let loudest = g
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert_eq!(loudest, s, "{}: gains {g:?}", ch.name);
        assert!(
            g[s] * g[s] > 0.25 * power,
            "{}: {:.3} of the power",
            ch.name,
            g[s] * g[s] / power
        );
    }
}

#[test]
fn a_plane_wave_has_the_same_power_from_every_direction() {
    // 7.1.4 with its lower hemisphere covered by BS.2127's virtual speakers.
    for layout in ["7.1.4", "9+10+3"] {
        let layout = Layout::builtin(layout).unwrap();
        for order in 1..=3 {
            let f = format(order, HoaNormalization::N3D);
            let d = decoder(&layout, &f);
            let mut powers_db = Vec::new();
            for i in 0..36 {
                for el in [-60.0, -30.0, 0.0, 30.0, 60.0, 90.0] {
                    let g = speaker_gains(&d, &f, i as f64 * 10.0 - 175.0, el);
                    powers_db.push(10.0 * g.iter().map(|v| v * v).sum::<f64>().log10());
                }
            }
            let max = powers_db.iter().copied().fold(f64::MIN, f64::max);
            let min = powers_db.iter().copied().fold(f64::MAX, f64::min);
            let mean = powers_db.iter().sum::<f64>() / powers_db.len() as f64;
            // Unit mean power (BS.2127's normalisation, within 0.5 dB); no direction lost
            // (a low-order AllRAD decode without maxRE varies by a few dB).
            assert!(
                mean.abs() < 0.5,
                "{} order {order}: mean {mean:.2} dB",
                layout.name
            );
            assert!(
                max - min < 4.5,
                "{} order {order}: {min:.2} … {max:.2} dB",
                layout.name
            );
        }
    }
}

#[test]
fn the_normalisations_decode_the_same_sound_field_alike() {
    let layout = Layout::builtin("7.1.4").unwrap();
    let fields: Vec<Vec<f64>> = [
        HoaNormalization::N3D,
        HoaNormalization::SN3D,
        HoaNormalization::FuMa,
    ]
    .into_iter()
    .map(|nm| {
        let f = format(3, nm);
        speaker_gains(&decoder(&layout, &f), &f, 40.0, 20.0)
    })
    .collect();
    for other in &fields[1..] {
        for (a, b) in fields[0].iter().zip(other) {
            assert!((a - b).abs() < 1e-9, "{:?} vs {:?}", fields[0], other);
        }
    }
}

#[test]
fn the_lfe_gets_nothing() {
    let layout = Layout::builtin("7.1.4").unwrap();
    let f = format(1, HoaNormalization::SN3D);
    let d = decoder(&layout, &f);
    for lfe in layout.lfe_indices() {
        assert!(d[lfe].iter().all(|&v| v == 0.0));
    }
}
