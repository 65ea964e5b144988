//! The built-in demo: a short (20 s) musical session synthesised from scratch — a drum
//! loop and bass in a 5.1 bed, a pad, a melody circling overhead and a voice-like tone
//! flying from front to back — so `halo demo` needs no material from anywhere.
//!
//! Everything here is deterministic (a fixed-seed noise generator), so the demo renders
//! identically on every machine.

use std::f64::consts::TAU;

/// Length of the demo, seconds.
pub const DEMO_SECONDS: f64 = 20.0;
/// Tempo, beats per minute (a bar of 4/4 is 2 s).
const BPM: f64 = 120.0;

/// One generated stem: a file name under `stems/`, its channel count and its samples
/// (interleaved).
pub struct Stem {
    /// File name under `stems/` (`"pad.wav"`, …).
    pub file: &'static str,
    /// Channel count.
    pub channels: usize,
    /// Samples, interleaved, at the rate given to [`stems`].
    pub samples: Vec<f32>,
}

/// A tiny deterministic noise source (xorshift64*); a crate would add a dependency for
/// one line of arithmetic.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A resonant band-pass (RBJ, constant 0 dB peak) for formants and snare colour.
struct BandPass {
    b0: f64,
    b2: f64,
    a1: f64,
    a2: f64,
    z1: f64,
    z2: f64,
}

impl BandPass {
    fn new(rate: f64, freq_hz: f64, q: f64) -> Self {
        let w = TAU * freq_hz / rate;
        let alpha = w.sin() / (2.0 * q);
        let a0 = 1.0 + alpha;
        BandPass {
            b0: alpha / a0,
            b2: -alpha / a0,
            a1: -2.0 * w.cos() / a0,
            a2: (1.0 - alpha) / a0,
            z1: 0.0,
            z2: 0.0,
        }
    }

    fn run(&mut self, x: f64) -> f64 {
        let y = self.b0 * x + self.z1;
        self.z1 = -self.a1 * y + self.z2;
        self.z2 = self.b2 * x - self.a2 * y;
        y
    }
}

fn midi_hz(note: f64) -> f64 {
    440.0 * 2f64.powf((note - 69.0) / 12.0)
}

/// A band-limited-ish sawtooth: a few harmonics, enough for a pad and a bass.
fn saw(phase: f64, harmonics: usize) -> f64 {
    (1..=harmonics)
        .map(|k| (TAU * phase * k as f64).sin() / k as f64)
        .sum::<f64>()
        * 0.6
}

/// Chord roots per bar (A minor, F, C, G), as MIDI notes.
const ROOTS: [f64; 4] = [57.0, 53.0, 60.0, 55.0];

fn bar_of(t: f64) -> usize {
    (t / (240.0 / BPM)) as usize
}

/// Generates all stems at `sample_rate`.
pub fn stems(sample_rate: u32) -> Vec<Stem> {
    let rate = sample_rate as f64;
    let n = (DEMO_SECONDS * rate) as usize;
    let beat = 60.0 / BPM;
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);

    // 5.1 bed (L R C LFE Ls Rs): kick in C + LFE, snare in L/R, hats alternating in the
    // surrounds, bass in C with a little L/R.
    let mut bed = vec![0.0f32; n * 6];
    let mut snare_bp = BandPass::new(rate, 1800.0, 0.8);
    let mut hat_bp = BandPass::new(rate, 9000.0, 1.5);
    let mut lfe_lp = 0.0f64;
    let mut bass_phase = 0.0f64;
    let mut kick_phase = 0.0f64;
    for i in 0..n {
        let t = i as f64 / rate;
        let in_beat = t % beat;
        let beat_index = (t / beat) as usize;
        // Kick on every beat: a falling sine with a fast decay.
        let kick_f = 45.0 + 90.0 * (-in_beat * 30.0).exp();
        kick_phase += kick_f / rate;
        let kick = (TAU * kick_phase).sin() * (-in_beat * 9.0).exp() * 0.9;
        // Snare on beats 2 and 4: noise through a band-pass plus a short tone.
        let snare = if beat_index % 2 == 1 {
            let env = (-in_beat * 22.0).exp();
            snare_bp.run(noise.next()) * env * 1.6 + (TAU * 185.0 * t).sin() * env * 0.25
        } else {
            snare_bp.run(0.0)
        };
        // Hats on eighth notes.
        let eighth = beat / 2.0;
        let in_eighth = t % eighth;
        let hat = hat_bp.run(noise.next()) * (-in_eighth * 60.0).exp() * 0.5;
        let hat_left = ((t / eighth) as usize).is_multiple_of(2);
        // Bass: the chord root an octave down, eighth-note pulse.
        let root = ROOTS[bar_of(t) % 4] - 24.0;
        bass_phase += midi_hz(root) / rate;
        let bass = saw(bass_phase, 6) * (0.35 + 0.65 * (-in_eighth * 8.0).exp()) * 0.45;
        lfe_lp += (kick + bass - lfe_lp) * (TAU * 120.0 / rate);
        let frame = &mut bed[i * 6..i * 6 + 6];
        frame[0] = (snare * 0.5 + bass * 0.3) as f32;
        frame[1] = (snare * 0.5 + bass * 0.3) as f32;
        frame[2] = (kick * 0.7 + bass * 0.6) as f32;
        frame[3] = (lfe_lp * 0.5) as f32;
        frame[4] = if hat_left { hat as f32 } else { 0.0 };
        frame[5] = if hat_left { 0.0 } else { hat as f32 };
    }

    // Pad: the chord (root, third, fifth) of detuned saws with a slow swell per bar.
    let mut pad = vec![0.0f32; n];
    let mut phases = [0.0f64; 6];
    for (i, out) in pad.iter_mut().enumerate() {
        let t = i as f64 / rate;
        let root = ROOTS[bar_of(t) % 4];
        let minor = bar_of(t).is_multiple_of(4);
        let notes = [root, root + if minor { 3.0 } else { 4.0 }, root + 7.0];
        let mut s = 0.0;
        for (k, p) in phases.iter_mut().enumerate() {
            let detune = if k % 2 == 0 { 1.003 } else { 0.997 };
            *p += midi_hz(notes[k / 2]) * detune / rate;
            s += saw(*p, 4);
        }
        let in_bar = t % (240.0 / BPM);
        let swell = 0.5 - 0.5 * (TAU * in_bar / (240.0 / BPM)).cos();
        *out = (s * 0.08 * (0.4 + 0.6 * swell)) as f32;
    }

    // Melody: a bright triangle-ish lead, an arpeggio over the chords, with vibrato.
    let mut melody = vec![0.0f32; n];
    let pattern = [0.0, 7.0, 12.0, 15.0, 12.0, 7.0, 3.0, 7.0];
    let mut mel_phase = 0.0f64;
    for (i, out) in melody.iter_mut().enumerate() {
        let t = i as f64 / rate;
        let eighth = beat / 2.0;
        let step = (t / eighth) as usize;
        let note = ROOTS[bar_of(t) % 4] + 12.0 + pattern[step % 8];
        let vibrato = 1.0 + 0.004 * (TAU * 5.5 * t).sin();
        mel_phase += midi_hz(note) * vibrato / rate;
        let tri = (2.0 / std::f64::consts::PI) * (TAU * mel_phase).sin().asin();
        let env = (-(t % eighth) * 5.0).exp();
        let fade_in = (t / 2.0).min(1.0);
        *out = (tri * env * 0.3 * fade_in) as f32;
    }

    // Voice: a glottal-like pulse train through three vowel formants ("ah" → "oh").
    let mut voice = vec![0.0f32; n];
    let mut formants = [
        BandPass::new(rate, 730.0, 8.0),
        BandPass::new(rate, 1090.0, 10.0),
        BandPass::new(rate, 2440.0, 12.0),
    ];
    let mut f2 = BandPass::new(rate, 570.0, 8.0);
    let mut glottal_phase = 0.0f64;
    for (i, out) in voice.iter_mut().enumerate() {
        let t = i as f64 / rate;
        let pitch = midi_hz(ROOTS[bar_of(t) % 4] + 7.0) * (1.0 + 0.01 * (TAU * 5.0 * t).sin());
        glottal_phase += pitch / rate;
        let ph = glottal_phase.fract();
        let pulse = if ph < 0.4 {
            (std::f64::consts::PI * ph / 0.4).sin().powi(2)
        } else {
            0.0
        };
        let x = pulse - 0.25 + 0.02 * noise.next();
        let vowel_mix = 0.5 + 0.5 * (TAU * t / 4.0).sin();
        let y = formants[0].run(x) * (1.0 - vowel_mix)
            + f2.run(x) * vowel_mix
            + formants[1].run(x) * 0.5
            + formants[2].run(x) * 0.25;
        // Phrases: two bars on, one bar off.
        let phrase = ((t / 2.0) as usize % 3 != 2) as u8 as f64;
        *out = (y * 0.9 * phrase) as f32;
    }

    vec![
        Stem {
            file: "drums_bass_5.1.wav",
            channels: 6,
            samples: bed,
        },
        Stem {
            file: "pad.wav",
            channels: 1,
            samples: pad,
        },
        Stem {
            file: "melody.wav",
            channels: 1,
            samples: melody,
        },
        Stem {
            file: "voice.wav",
            channels: 1,
            samples: voice,
        },
    ]
}

/// The demo session, written beside its stems; `outputs` lists the layouts to render.
pub fn session_text(sample_rate: u32, speaker_layouts: &[&str]) -> String {
    let mut outputs: Vec<String> = speaker_layouts
        .iter()
        .map(|l| {
            if *l == "7.1.4" {
                // The immersive master: true-peak limited, checked against Atmos music.
                format!(
                    "        Speakers(layout: \"{l}\", chain: [Limiter(ceiling_dbtp: -1)], target: \"atmos-music\"),"
                )
            } else {
                format!("        Speakers(layout: \"{l}\"),")
            }
        })
        .collect();
    // Headphones (the built-in MIT KEMAR set; LFE at −6 dB in both ears) and the stereo
    // fold-down of the 7.1.4 render with its own master chain.
    outputs.push("        Binaural(lfe_db: -6, chain: [Limiter(ceiling_dbtp: -1)]),".into());
    outputs.push(
        "        Stereo(from: \"7.1.4\", fold: (matrix: LoRo), chain: [\n            Eq(bands: [(kind: HighPass, freq_hz: 30)]),\n            Compressor(threshold_db: -20, ratio: 2, attack_ms: 20, release_ms: 200),\n            Limiter(ceiling_dbtp: -1),\n        ], target: \"apple-music\"),".into(),
    );
    format!(
        r#"// halo demo session — generated by `halo demo`. Edit it and re-render with
//   halo render session.ron --out .
// Positions: Cart(x, y, z) in the room (x −1 left … +1 right, y −1 back … +1 front,
// z 0 ear level … 1 ceiling) or Polar(az, el) in degrees, azimuth positive to the left.
Session(
    sample_rate: {sample_rate},
    duration: {DEMO_SECONDS},
    beds: [
        // Drum loop and bass, mixed as a 5.1 stem (L R C LFE Ls Rs).
        (name: "drums+bass", source: "stems/drums_bass_5.1.wav", layout: "5.1", gain: -5.0),
    ],
    objects: [
        // A wide pad, slightly above and in front of the listener.
        (name: "pad", source: "stems/pad.wav", gain: -2.0,
         position: Cart(x: 0.0, y: 0.3, z: 0.5), size: 0.5),
        // The melody circles overhead once every 8 seconds.
        (name: "melody", source: "stems/melody.wav", gain: -3.0,
         position: [
            (time: 0.0, value: Polar(az: 0.0, el: 45.0)),
            (time: 2.0, value: Polar(az: 90.0, el: 45.0)),
            (time: 4.0, value: Polar(az: 180.0, el: 45.0)),
            (time: 6.0, value: Polar(az: -90.0, el: 45.0)),
            (time: 8.0, value: Polar(az: 0.0, el: 45.0)),
            (time: 10.0, value: Polar(az: 90.0, el: 45.0)),
            (time: 12.0, value: Polar(az: 180.0, el: 45.0)),
            (time: 14.0, value: Polar(az: -90.0, el: 45.0)),
            (time: 16.0, value: Polar(az: 0.0, el: 45.0)),
            (time: 18.0, value: Polar(az: 90.0, el: 45.0)),
            (time: 20.0, value: Polar(az: 180.0, el: 45.0)),
         ]),
        // The voice flies from the front wall to the back of the ceiling and returns.
        (name: "voice", source: "stems/voice.wav", gain: -4.0,
         position: [
            (time: 0.0, value: Cart(x: 0.0, y: 1.0, z: 0.0), interp: Smooth),
            (time: 8.0, value: Cart(x: 0.0, y: -1.0, z: 0.6), interp: Smooth),
            (time: 14.0, value: Cart(x: -1.0, y: -1.0, z: 0.0), interp: Smooth),
            (time: 20.0, value: Cart(x: 0.0, y: 1.0, z: 0.0)),
         ]),
    ],
    outputs: [
{outputs}
    ],
)
"#,
        outputs = outputs.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_sane() {
        for stem in stems(48000) {
            let frames = stem.samples.len() / stem.channels;
            assert_eq!(frames, (DEMO_SECONDS * 48000.0) as usize, "{}", stem.file);
            let peak = stem.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(peak > 0.05 && peak < 1.0, "{}: peak {peak}", stem.file);
            assert!(stem.samples.iter().all(|x| x.is_finite()));
        }
    }
}
