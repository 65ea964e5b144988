//! The virtual listening room of the binaural `Near`, `Mid` and `Far` modes, shared by all
//! sources: early reflections by the image-source method (Allen & Berkley 1979), each
//! reflection through the HRTF at its own direction, and a late reverb by a feedback delay
//! network (Jot & Chaigne 1991) whose two ear outputs have the interaural coherence of a
//! diffuse field falling with frequency (after Menzer & Faller 2009).
//!
//! # The room
//!
//! A shoebox [`ROOM_M`] (7.5 m wide, 8 m long, 3.5 m high; 210 m³), every surface
//! absorbing [`WALL_ABSORPTION`] of the incident energy (reflection factor √0.5), the
//! listener in the middle of the floor plan with the ears 1.2 m above the floor. Sabine's
//! reverberation time of that room is 0.161·V/(α·S) = 0.30 s, the late reverb's
//! [`RT60_S`].
//!
//! Sources do not each get their own reflections: the room is fed by [`N_INPUTS`] virtual
//! loudspeakers ([`INPUT_DIRECTIONS`]: a horizontal ring at 0°, ±60°, ±120°, 180°, the
//! zenith and the nadir), placed at the mode's distance — `Mid` 1.5 m, `Far` 3 m
//! (moved inwards to stay 0.2 m inside the room) — and a source sends to the virtual
//! loudspeakers within [`SEND_SPREAD_DEG`] of its direction (gains `(cos γ − cos 65°)²`,
//! normalised to sum 1, as amplitude panning). Each virtual loudspeaker has a fixed binaural
//! early-reflection response: its image sources up to second order (6 first-order, 18
//! second-order reflections) that arrive within [`ER_WINDOW_S`] of the direct sound, each an
//! HRIR (truncated to 2.7 ms) at the image's direction, delayed by the extra path and scaled
//! by the distance ratio and the surfaces' reflection factors. The direct sound itself is
//! the source's own HRTF path. The cost of the room is therefore fixed (`2 × N_INPUTS`
//! static convolutions, one network) whatever the number of sources; a source adds only its
//! sends (two or three multiply-adds per frame).
//!
//! # Late reverb
//!
//! Eight delay lines (12.5 … 24.7 ms), a Hadamard feedback matrix, per-line attenuation for
//! [`RT60_S`] at all frequencies; fed by the sum of all sends, from the first delay onwards
//! (12.5 ms after the direct sound). Two orthogonal output combinations give two
//! uncorrelated signals; their sum goes to both ears and their difference, through a
//! second-order high-pass at [`COHERENCE_HZ`], with opposite signs: the interaural
//! coherence is 1 at low frequencies and falls as `fc⁴ / (2 f⁴ + fc⁴)` (0.5 at 590 Hz,
//! 0.1 at 1 kHz), as in a diffuse field at a head (zero near 1 kHz).
//!
//! # Modes
//!
//! | mode | direct path | room input | early reflections | late reverb | DRR (source ahead) |
//! |---|---|---|---|---|---|
//! | `Near` | HRTF + near-field shelves (0.25 m) | `Mid` loudspeakers, −12 dB | as `Mid`, −12 dB | 0.30 s, −12 dB | [`NEAR_DRR_DB`] |
//! | `Mid` | HRTF | loudspeakers at 1.5 m | first at +3.9 ms (floor) | 0.30 s | [`MID_DRR_DB`] |
//! | `Far` | HRTF | loudspeakers at 3 m | first at +2.5 ms (floor) | 0.30 s | [`FAR_DRR_DB`] |
//!
//! The DRR (direct-to-reverberant energy ratio, both ears) is that of a source straight
//! ahead: direct = the HRTF path, reverberant = everything the room adds. The late reverb's
//! level is set at construction so that the DRR is the documented figure (the early
//! reflections' share follows from the geometry).

use realfft::RealToComplex;
use realfft::num_complex::Complex;

use super::HrtfSet;
use crate::scene::geometry::Direction;

/// Room size (x: width, y: length, z: height), metres.
pub const ROOM_M: [f64; 3] = [7.5, 8.0, 3.5];
/// Height of the ears above the floor, metres.
pub const EAR_HEIGHT_M: f64 = 1.2;
/// Energy absorbed at every reflection.
pub const WALL_ABSORPTION: f64 = 0.5;
/// Reverberation time of the late reverb (Sabine's figure for the room), seconds.
pub const RT60_S: f64 = 0.30;
/// Virtual loudspeaker distance of `Mid`, metres.
pub const MID_DISTANCE_M: f64 = 1.5;
/// Virtual loudspeaker distance of `Far`, metres.
pub const FAR_DISTANCE_M: f64 = 3.0;
/// Reflections arriving later than this after the direct sound are left to the late reverb.
pub const ER_WINDOW_S: f64 = 0.018;
/// Length of the HRIR of one reflection, seconds.
const REFLECTION_HRIR_S: f64 = 0.0027;
/// Direct-to-reverberant ratio of `Mid` for a source ahead, dB.
pub const MID_DRR_DB: f64 = 6.0;
/// Direct-to-reverberant ratio of `Far` for a source ahead, dB.
pub const FAR_DRR_DB: f64 = 0.0;
/// `Near` sends to the `Mid` room this much lower (dB).
pub const NEAR_SHARE_DB: f64 = -12.0;
/// Direct-to-reverberant ratio of `Near` for a source ahead (the `Mid` figure plus the
/// share, less the near-field shelves' high-frequency loss straight ahead), dB.
pub const NEAR_DRR_DB: f64 = 16.0;
/// The interaural coherence of the late reverb is 0.5 at `COHERENCE_HZ / 2^¼`.
pub const COHERENCE_HZ: f64 = 700.0;
/// A source sends to the virtual loudspeakers within this angle.
pub const SEND_SPREAD_DEG: f64 = 65.0;
/// A source's sends are those of its direction snapped to a grid of `1/SEND_GRID` steps of
/// each unit-vector component (about 3.6°), renormalised: a moving source's sends change
/// (ramped over a partition) only when it crosses into another cell, which saves most of
/// the per-source cost of the room (a held send is one multiply-add per frame, a ramped one
/// four). The sends spread over 65°, so a cell changes them by a few per cent. The snapped
/// direction depends only on where the source is, so the output never depends on its past.
pub const SEND_GRID: f64 = 16.0;

/// The direction a source's sends are computed for: `u` snapped to the send grid.
pub fn send_cell(u: [f64; 3]) -> [f64; 3] {
    let q = u.map(|c| (c * SEND_GRID).round() / SEND_GRID);
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt();
    if n > 0.0 {
        q.map(|c| c / n)
    } else {
        [0.0, 1.0, 0.0]
    }
}
/// Virtual loudspeakers per distance.
pub const N_INPUTS: usize = 8;
/// Directions (azimuth, elevation) of the virtual loudspeakers.
pub const INPUT_DIRECTIONS: [(f64, f64); N_INPUTS] = [
    (0.0, 0.0),
    (60.0, 0.0),
    (-60.0, 0.0),
    (120.0, 0.0),
    (-120.0, 0.0),
    (180.0, 0.0),
    (0.0, 90.0),
    (0.0, -90.0),
];
/// Delay-line lengths of the late reverb at 48 kHz (scaled with the rate).
const FDN_DELAYS_48K: [usize; 8] = [601, 683, 751, 839, 929, 1013, 1097, 1187];

/// Room distance of a binaural source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distance {
    /// The HRTF alone (no room): halo's anechoic render.
    #[default]
    Anechoic,
    /// Close to the head: near-field HRTF, a small share of the `Mid` room.
    Near,
    /// Loudspeakers about 1.5 m away in the room.
    Mid,
    /// Loudspeakers 3 m away in the same room.
    Far,
}

impl Distance {
    /// The documented direct-to-reverberant ratio of a source ahead (dB; infinite for
    /// `Anechoic`).
    pub fn drr_db(self) -> f64 {
        match self {
            Distance::Anechoic => f64::INFINITY,
            Distance::Near => NEAR_DRR_DB,
            Distance::Mid => MID_DRR_DB,
            Distance::Far => FAR_DRR_DB,
        }
    }

    /// The room distance whose DRR is nearest to `drr_db` (ADM `headphoneVirtualise`
    /// `DRR`): Near, Mid or Far; NaN gives Mid.
    pub fn nearest_to_drr(drr_db: f64) -> Distance {
        if drr_db.is_nan() {
            return Distance::Mid;
        }
        [Distance::Near, Distance::Mid, Distance::Far]
            .into_iter()
            .min_by(|a, b| {
                (a.drr_db() - drr_db)
                    .abs()
                    .total_cmp(&(b.drr_db() - drr_db).abs())
            })
            .unwrap_or(Distance::Mid)
    }
}

/// One source's sends: gains to the `2 × N_INPUTS` room inputs (`Mid`, then `Far`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sends {
    pub gains: [f32; 2 * N_INPUTS],
    /// Bit `k`: `gains[k] != 0`.
    pub mask: u32,
}

impl Sends {
    pub const ZERO: Sends = Sends {
        gains: [0.0; 2 * N_INPUTS],
        mask: 0,
    };
}

/// The shared room: early-reflection convolutions of the virtual loudspeakers and the late
/// reverb, processed one partition at a time by the binaural renderer.
pub(super) struct Room {
    block: usize,
    bins: usize,
    parts: usize,
    input_units: [[f64; 3]; N_INPUTS],
    cos_spread: f64,
    /// Time-domain room inputs of the partition being filled (`2 × N_INPUTS` × `B`).
    pub(super) input: Vec<Vec<f32>>,
    /// Previous partition of every input (overlap-save).
    prev: Vec<Vec<f32>>,
    /// Per input: frequency-domain delay line (`parts` × `bins`), head, silent run.
    fdl_re: Vec<Vec<f32>>,
    fdl_im: Vec<Vec<f32>>,
    head: usize,
    silent_run: Vec<usize>,
    /// Per input: filter spectra, ear-major then partition then bin (scaled by 1/2B).
    filt_re: Vec<Vec<f32>>,
    filt_im: Vec<Vec<f32>>,
    /// Late reverb.
    fdn: Fdn,
    late_gain: [f32; 2],
    late_in: Vec<f32>,
    late_out: [Vec<f32>; 2],
}

impl Room {
    /// Builds the room for `hrtf`'s rate and the renderer's partitions of `block` frames.
    pub(super) fn new(hrtf: &HrtfSet, block: usize, fft: &dyn RealToComplex<f32>) -> Room {
        let rate = hrtf.sample_rate();
        let fs = rate as f64;
        let bins = block + 1;
        let refl_taps = ((REFLECTION_HRIR_S * fs).round() as usize).max(8);
        let window = (ER_WINDOW_S * fs).round() as usize;
        let parts = (window + refl_taps).div_ceil(block).max(1);
        let len = parts * block;
        let input_units = INPUT_DIRECTIONS.map(|(az, el)| Direction::new(az, el).to_unit());
        let cos_spread = SEND_SPREAD_DEG.to_radians().cos();
        let front_sends = send_gains(&input_units, cos_spread, [0.0, 1.0, 0.0]);
        let mut filt_re = Vec::new();
        let mut filt_im = Vec::new();
        let mut er_energy = [0.0f64; 2];
        let (mut hl, mut hr) = (vec![0.0f32; hrtf.len_taps()], vec![0.0f32; hrtf.len_taps()]);
        let mut fft_in = fft.make_input_vec();
        let mut fft_out = fft.make_output_vec();
        let mut scratch = fft.make_scratch_vec();
        let scale = 1.0 / (2 * block) as f32;
        for (set, distance) in [MID_DISTANCE_M, FAR_DISTANCE_M].into_iter().enumerate() {
            // The early reflections of a source ahead (its sends' mix), for calibration.
            let mut front = [vec![0.0f64; len], vec![0.0f64; len]];
            for (k, unit) in input_units.iter().enumerate() {
                let brir = early_reflections(hrtf, *unit, distance, window, refl_taps, len);
                let ears = [&brir.0, &brir.1];
                for (acc, ir) in front.iter_mut().zip(ears) {
                    for (a, &v) in acc.iter_mut().zip(ir.iter()) {
                        *a += front_sends[k] * v as f64;
                    }
                }
                let mut re = vec![0.0f32; 2 * parts * bins];
                let mut im = vec![0.0f32; 2 * parts * bins];
                for (ear, ir) in ears.iter().enumerate() {
                    for p in 0..parts {
                        fft_in.fill(0.0);
                        fft_in[..block].copy_from_slice(&ir[p * block..(p + 1) * block]);
                        let _ = fft.process_with_scratch(&mut fft_in, &mut fft_out, &mut scratch);
                        let off = (ear * parts + p) * bins;
                        for (b, c) in fft_out.iter().enumerate() {
                            re[off + b] = c.re * scale;
                            im[off + b] = c.im * scale;
                        }
                    }
                }
                filt_re.push(re);
                filt_im.push(im);
            }
            er_energy[set] = front.iter().flatten().map(|v| v * v).sum();
        }
        // Calibration: direct energy of a source ahead, late energy per unit input.
        hrtf.hrir(Direction::new(0.0, 0.0), &mut hl, &mut hr);
        let direct: f64 = hl.iter().chain(&hr).map(|&v| (v as f64) * (v as f64)).sum();
        let mut fdn = Fdn::new(rate);
        let late_unit = fdn.impulse_energy((RT60_S * 3.0 * fs) as usize);
        let late_gain =
            [(MID_DRR_DB, er_energy[0]), (FAR_DRR_DB, er_energy[1])].map(|(drr, er)| {
                let reverb = direct / 10f64.powf(drr / 10.0);
                ((reverb - er).max(0.0) / late_unit).sqrt() as f32
            });
        let n_in = 2 * N_INPUTS;
        Room {
            block,
            bins,
            parts,
            input_units,
            cos_spread,
            input: vec![vec![0.0; block]; n_in],
            prev: vec![vec![0.0; block]; n_in],
            fdl_re: vec![vec![0.0; parts * bins]; n_in],
            fdl_im: vec![vec![0.0; parts * bins]; n_in],
            head: 0,
            silent_run: vec![parts; n_in],
            filt_re,
            filt_im,
            fdn,
            late_gain,
            late_in: vec![0.0; block],
            late_out: [vec![0.0; block], vec![0.0; block]],
        }
    }

    /// The sends of a source at unit vector `u` in `distance` (no room: none).
    pub(super) fn sends(&self, distance: Distance, u: [f64; 3]) -> Sends {
        let (base, level) = match distance {
            Distance::Anechoic => return Sends::ZERO,
            Distance::Near => (0, 10f64.powf(NEAR_SHARE_DB / 20.0)),
            Distance::Mid => (0, 1.0),
            Distance::Far => (N_INPUTS, 1.0),
        };
        let raw = send_gains(&self.input_units, self.cos_spread, u);
        let mut s = Sends::ZERO;
        for (k, r) in raw.iter().enumerate() {
            if *r > 0.0 {
                s.gains[base + k] = (level * r) as f32;
                s.mask |= 1 << (base + k);
            }
        }
        s
    }

    /// Whether the last [`Room::process`] added early reflections (some input, or the
    /// tail of one, was sounding).
    pub(super) fn early_active(&self) -> bool {
        self.silent_run.iter().any(|&r| r < self.parts)
    }

    /// Clears all audio history.
    pub(super) fn reset(&mut self) {
        for v in self
            .input
            .iter_mut()
            .chain(&mut self.prev)
            .chain(&mut self.fdl_re)
            .chain(&mut self.fdl_im)
        {
            v.fill(0.0);
        }
        self.silent_run.fill(self.parts);
        self.fdn.reset();
    }

    /// Processes the partition in `input`: adds the early reflections' spectra to the ear
    /// buses `a` and the late reverb to the time-domain ear buffers `td`; clears `input`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn process(
        &mut self,
        fft: &dyn RealToComplex<f32>,
        fft_in: &mut [f32],
        fft_out: &mut [Complex<f32>],
        scratch: &mut [Complex<f32>],
        a_re: &mut [Vec<f32>; 2],
        a_im: &mut [Vec<f32>; 2],
        td: &mut [Vec<f32>; 2],
        avx: bool,
    ) {
        let (b, bins, parts) = (self.block, self.bins, self.parts);
        self.head = (self.head + 1) % parts;
        let slot = self.head * bins;
        self.late_in.fill(0.0);
        for k in 0..2 * N_INPUTS {
            let x = &self.input[k];
            // Overlap-save: the slot is zero only when the previous input was silent too.
            let silent = x.iter().all(|&v| v == 0.0) && self.prev[k].iter().all(|&v| v == 0.0);
            if silent {
                if self.silent_run[k] < parts {
                    self.fdl_re[k][slot..slot + bins].fill(0.0);
                    self.fdl_im[k][slot..slot + bins].fill(0.0);
                }
                self.silent_run[k] = (self.silent_run[k] + 1).min(parts);
            } else {
                let g = self.late_gain[k / N_INPUTS];
                for (l, &v) in self.late_in.iter_mut().zip(x) {
                    *l += g * v;
                }
                fft_in[..b].copy_from_slice(&self.prev[k]);
                fft_in[b..].copy_from_slice(x);
                let _ = fft.process_with_scratch(fft_in, fft_out, scratch);
                for ((c, re), im) in fft_out
                    .iter()
                    .zip(&mut self.fdl_re[k][slot..slot + bins])
                    .zip(&mut self.fdl_im[k][slot..slot + bins])
                {
                    *re = c.re;
                    *im = c.im;
                }
                self.silent_run[k] = 0;
            }
            if self.silent_run[k] >= parts {
                self.prev[k].fill(0.0);
                continue;
            }
            // Multiply-accumulate over all partitions of the filter.
            for ear in 0..2 {
                let (ar, ai) = (&mut a_re[ear][..bins], &mut a_im[ear][..bins]);
                for p in 0..parts {
                    let s = ((self.head + parts - p) % parts) * bins;
                    let (xr, xi) = (&self.fdl_re[k][s..s + bins], &self.fdl_im[k][s..s + bins]);
                    let off = (ear * parts + p) * bins;
                    let (hr, hi) = (
                        &self.filt_re[k][off..off + bins],
                        &self.filt_im[k][off..off + bins],
                    );
                    super::add_product(ar, ai, xr, xi, hr, hi, avx);
                }
            }
            // The current partition becomes the previous one.
            let (prev, input) = (&mut self.prev[k], &mut self.input[k]);
            std::mem::swap(prev, input);
        }
        for x in &mut self.input {
            x.fill(0.0);
        }
        let [l, r] = &mut self.late_out;
        if self.fdn.process(&self.late_in, l, r, avx) {
            for (t, &v) in td[0].iter_mut().zip(l.iter()) {
                *t += v;
            }
            for (t, &v) in td[1].iter_mut().zip(r.iter()) {
                *t += v;
            }
        }
    }
}

/// Amplitude-panning gains (sum 1) of a source at unit vector `u` to the virtual
/// loudspeakers within the spread; all zero only if none is (never, for this set).
fn send_gains(units: &[[f64; 3]; N_INPUTS], cos_spread: f64, u: [f64; 3]) -> [f64; N_INPUTS] {
    let mut raw = [0.0f64; N_INPUTS];
    let mut sum = 0.0;
    for (r, v) in raw.iter_mut().zip(units) {
        let c = u[0] * v[0] + u[1] * v[1] + u[2] * v[2] - cos_spread;
        if c > 0.0 {
            *r = c * c;
            sum += *r;
        }
    }
    if sum > 0.0 {
        for r in &mut raw {
            *r /= sum;
        }
    }
    raw
}

/// The binaural early reflections (no direct sound) of a virtual loudspeaker at unit
/// vector `u`, `distance` metres away: `len` frames per ear.
fn early_reflections(
    hrtf: &HrtfSet,
    u: [f64; 3],
    distance: f64,
    window: usize,
    refl_taps: usize,
    len: usize,
) -> (Vec<f32>, Vec<f32>) {
    let fs = hrtf.sample_rate() as f64;
    // Room coordinates: origin at the floor corner; listener in the middle at ear height.
    let listener = [ROOM_M[0] / 2.0, ROOM_M[1] / 2.0, EAR_HEIGHT_M];
    // Keep the loudspeaker 0.2 m inside the room.
    let mut d = distance;
    for axis in 0..3 {
        let room_limit = if u[axis] > 1e-9 {
            (ROOM_M[axis] - 0.2 - listener[axis]) / u[axis]
        } else if u[axis] < -1e-9 {
            (listener[axis] - 0.2) / -u[axis]
        } else {
            f64::INFINITY
        };
        d = d.min(room_limit);
    }
    let src = [0, 1, 2].map(|a| listener[a] + d * u[a]);
    let beta = (1.0 - WALL_ABSORPTION).sqrt();
    let (mut out_l, mut out_r) = (vec![0.0f32; len], vec![0.0f32; len]);
    let (mut hl, mut hr) = (vec![0.0f32; hrtf.len_taps()], vec![0.0f32; hrtf.len_taps()]);
    // Per axis: (image coordinate, reflections) up to second order.
    let images = |a: usize| {
        let (s, l) = (src[a], ROOM_M[a]);
        [
            (s, 0),
            (-s, 1),
            (2.0 * l - s, 1),
            (s - 2.0 * l, 2),
            (s + 2.0 * l, 2),
        ]
    };
    let taps = refl_taps.min(hrtf.len_taps());
    let fade = (taps / 4).max(1);
    for (x, ox) in images(0) {
        for (y, oy) in images(1) {
            for (z, oz) in images(2) {
                let order = ox + oy + oz;
                if order == 0 || order > 2 {
                    continue;
                }
                let v = [x - listener[0], y - listener[1], z - listener[2]];
                let r = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
                let delay = ((r - d) / super::near_field::SPEED_OF_SOUND_MPS * fs).round() as usize;
                if delay > window {
                    continue;
                }
                let gain = (d / r) * beta.powi(order);
                hrtf.hrir(Direction::from_vector(v), &mut hl, &mut hr);
                for n in 0..taps {
                    let w = if n + fade >= taps {
                        let t = (taps - n) as f64 / fade as f64;
                        (0.5 - 0.5 * (std::f64::consts::PI * t).cos()) as f32
                    } else {
                        1.0
                    };
                    if delay + n < len {
                        out_l[delay + n] += gain as f32 * w * hl[n];
                        out_r[delay + n] += gain as f32 * w * hr[n];
                    }
                }
            }
        }
    }
    (out_l, out_r)
}

/// Feedback delay network with binaural outputs (see the module documentation).
struct Fdn {
    lines: [Vec<f32>; 8],
    pos: [usize; 8],
    gains: [f32; 8],
    /// Second-order high-pass (direct form I) on the side signal: b0, b1, b2, a1, a2.
    hp: [f32; 5],
    hp_state: [f32; 4],
    /// Frames since the last non-zero input; the state is cleared after `idle_limit`.
    idle: usize,
    idle_limit: usize,
}

impl Fdn {
    fn new(rate: u32) -> Fdn {
        let fs = rate as f64;
        let lens = FDN_DELAYS_48K.map(|d| ((d as f64 * fs / 48_000.0).round() as usize).max(1));
        let gains = lens.map(|l| 10f64.powf(-3.0 * l as f64 / (fs * RT60_S)) as f32);
        // RBJ high-pass, Q = 1/√2 (Butterworth).
        let w0 = 2.0 * std::f64::consts::PI * COHERENCE_HZ / fs;
        let alpha = w0.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let cw = w0.cos();
        let a0 = 1.0 + alpha;
        let hp = [
            ((1.0 + cw) / 2.0 / a0) as f32,
            (-(1.0 + cw) / a0) as f32,
            ((1.0 + cw) / 2.0 / a0) as f32,
            (-2.0 * cw / a0) as f32,
            ((1.0 - alpha) / a0) as f32,
        ];
        Fdn {
            lines: lens.map(|l| vec![0.0; l]),
            pos: [0; 8],
            gains,
            hp,
            hp_state: [0.0; 4],
            idle: usize::MAX / 2,
            idle_limit: (8.0 * RT60_S * fs) as usize,
        }
    }

    fn reset(&mut self) {
        for l in &mut self.lines {
            l.fill(0.0);
        }
        self.hp_state = [0.0; 4];
        self.idle = usize::MAX / 2;
    }

    /// Energy (both ears) of the response to a unit impulse over `frames` (from reset).
    fn impulse_energy(&mut self, frames: usize) -> f64 {
        self.reset();
        let mut x = vec![0.0f32; 256];
        let (mut l, mut r) = (vec![0.0f32; 256], vec![0.0f32; 256]);
        let mut e = 0.0;
        let mut done = 0;
        x[0] = 1.0;
        while done < frames {
            self.process(&x, &mut l, &mut r, false);
            x[0] = 0.0;
            e += l
                .iter()
                .chain(&r)
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>();
            done += 256;
        }
        self.reset();
        e
    }

    /// Renders `x.len()` frames into `l`, `r` (overwritten). False (outputs untouched)
    /// while the network is idle: no input for long enough that its state is cleared.
    /// Rendered in runs of up to [`FDN_RUN`] frames (see [`fdn_run`]): the same
    /// operations per frame as one frame at a time, so the same output.
    fn process(&mut self, x: &[f32], l: &mut [f32], r: &mut [f32], avx: bool) -> bool {
        if x.iter().any(|&v| v != 0.0) {
            self.idle = 0;
        } else if self.idle >= self.idle_limit {
            return false;
        } else {
            self.idle += x.len();
            if self.idle >= self.idle_limit {
                self.reset();
                self.idle = self.idle_limit;
                return false;
            }
        }
        let run = FDN_RUN.min(self.lines.iter().map(Vec::len).min().unwrap_or(1));
        let mut done = 0;
        while done < x.len() {
            let m = run.min(x.len() - done);
            let (x, l, r) = (
                &x[done..done + m],
                &mut l[done..done + m],
                &mut r[done..done + m],
            );
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            if avx {
                // SAFETY: `avx` is only true when the CPU reported AVX.
                unsafe { fdn_run_avx(self, x, l, r) };
            } else {
                fdn_run(self, x, l, r);
            }
            #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
            {
                let _ = avx;
                fdn_run(self, x, l, r);
            }
            done += m;
        }
        true
    }
}

/// Frames the feedback network renders in one run. Every delay line is longer than a run
/// (or the run is shortened to the shortest line), so no frame of a run reads a sample
/// written in the same run, and the frames' arithmetic can go side by side.
const FDN_RUN: usize = 64;

/// Inputs of the network's eight lines, and two orthogonal rows of a Hadamard matrix
/// (uncorrelated ear signals).
const FDN_IN: [f32; 8] = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0];
const FDN_OUT_A: [f32; 8] = [1.0; 8];
const FDN_OUT_B: [f32; 8] = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0];

/// One run of `x.len()` (≤ [`FDN_RUN`], ≤ the shortest line) frames of [`Fdn::process`]:
/// per frame, the lines' outputs (times their decay gains), the two ear mixes, the fast
/// Walsh–Hadamard transform fed back with the input, and the side signal's high-pass.
/// Each step runs over the whole run before the next, in the order and with the
/// operations of one frame at a time; only the high-pass is a recurrence over frames.
#[inline(always)]
fn fdn_run_body(fdn: &mut Fdn, x: &[f32], l: &mut [f32], r: &mut [f32]) {
    let m = x.len().min(FDN_RUN);
    let (x, l, r) = (&x[..m], &mut l[..m], &mut r[..m]);
    let norm = 1.0 / 8f32.sqrt();
    let mut y = [[0.0f32; FDN_RUN]; 8];
    for (i, y) in y.iter_mut().enumerate() {
        let (line, pos, g) = (&fdn.lines[i], fdn.pos[i], fdn.gains[i]);
        let first = m.min(line.len() - pos);
        for (y, &v) in y[..first].iter_mut().zip(&line[pos..pos + first]) {
            *y = v * g;
        }
        for (y, &v) in y[first..m].iter_mut().zip(&line[..m - first]) {
            *y = v * g;
        }
    }
    let (mut oa, mut ob) = ([0.0f32; FDN_RUN], [0.0f32; FDN_RUN]);
    for (i, y) in y.iter().enumerate() {
        let (a, b) = (FDN_OUT_A[i], FDN_OUT_B[i]);
        for ((oa, ob), &v) in oa[..m].iter_mut().zip(&mut ob[..m]).zip(&y[..m]) {
            *oa += a * v;
            *ob += b * v;
        }
    }
    // Fast Walsh–Hadamard transform of each frame's eight values (normalised below:
    // orthogonal feedback).
    let mut h = 1;
    while h < 8 {
        let mut i = 0;
        while i < 8 {
            for j in i..i + h {
                let (lo, hi) = y.split_at_mut(j + h);
                for (p, q) in lo[j][..m].iter_mut().zip(&mut hi[0][..m]) {
                    let (a, b) = (*p, *q);
                    *p = a + b;
                    *q = a - b;
                }
            }
            i += 2 * h;
        }
        h *= 2;
    }
    for (i, y) in y.iter().enumerate() {
        let (line, pos) = (&mut fdn.lines[i], fdn.pos[i]);
        let first = m.min(line.len() - pos);
        let input = FDN_IN[i];
        let (wrapped, from_pos) = line.split_at_mut(pos);
        let (head, tail) = (&mut from_pos[..first], &mut wrapped[..m - first]);
        let (y_head, y_tail) = y[..m].split_at(first);
        let (x_head, x_tail) = x.split_at(first);
        for (d, (&v, &xin)) in head.iter_mut().zip(y_head.iter().zip(x_head)) {
            *d = v * norm + input * xin * norm;
        }
        for (d, (&v, &xin)) in tail.iter_mut().zip(y_tail.iter().zip(x_tail)) {
            *d = v * norm + input * xin * norm;
        }
        fdn.pos[i] = (pos + m) % line.len();
    }
    let [b0, b1, b2, a1, a2] = fdn.hp;
    let [mut x1, mut x2, mut y1, mut y2] = fdn.hp_state;
    for (k, (lo, ro)) in l.iter_mut().zip(r.iter_mut()).enumerate() {
        let (a, b) = (oa[k] * norm, ob[k] * norm);
        let (s, d) = (
            (a + b) * std::f32::consts::FRAC_1_SQRT_2,
            (a - b) * std::f32::consts::FRAC_1_SQRT_2,
        );
        let dh = b0 * d + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
        (x2, x1, y2, y1) = (x1, d, y1, dh);
        *lo = s + dh;
        *ro = s - dh;
    }
    fdn.hp_state = [x1, x2, y1, y2];
}

fn fdn_run(fdn: &mut Fdn, x: &[f32], l: &mut [f32], r: &mut [f32]) {
    fdn_run_body(fdn, x, l, r);
}

/// [`fdn_run`] compiled for AVX: eight frames per register, the same operations.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx")]
fn fdn_run_avx(fdn: &mut Fdn, x: &[f32], l: &mut [f32], r: &mut [f32]) {
    fdn_run_body(fdn, x, l, r);
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Fdn {
        /// The network one frame at a time, as first written: the reference for the runs.
        fn process_frame_by_frame(&mut self, x: &[f32], l: &mut [f32], r: &mut [f32]) {
            let norm = 1.0 / 8f32.sqrt();
            let [b0, b1, b2, a1, a2] = self.hp;
            for ((&xin, lo), ro) in x.iter().zip(l.iter_mut()).zip(r.iter_mut()) {
                let mut y: [f32; 8] =
                    std::array::from_fn(|i| self.lines[i][self.pos[i]] * self.gains[i]);
                let (mut oa, mut ob) = (0.0f32, 0.0f32);
                for ((&a, &b), &v) in FDN_OUT_A.iter().zip(&FDN_OUT_B).zip(&y) {
                    oa += a * v;
                    ob += b * v;
                }
                let mut h = 1;
                while h < 8 {
                    let mut i = 0;
                    while i < 8 {
                        for j in i..i + h {
                            let (p, q) = (y[j], y[j + h]);
                            y[j] = p + q;
                            y[j + h] = p - q;
                        }
                        i += 2 * h;
                    }
                    h *= 2;
                }
                for i in 0..8 {
                    let line = &mut self.lines[i];
                    line[self.pos[i]] = y[i] * norm + FDN_IN[i] * xin * norm;
                    self.pos[i] = (self.pos[i] + 1) % line.len();
                }
                let (a, b) = (oa * norm, ob * norm);
                let (s, d) = (
                    (a + b) * std::f32::consts::FRAC_1_SQRT_2,
                    (a - b) * std::f32::consts::FRAC_1_SQRT_2,
                );
                let [x1, x2, y1, y2] = self.hp_state;
                let dh = b0 * d + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
                self.hp_state = [d, x1, dh, y1];
                *lo = s + dh;
                *ro = s - dh;
            }
        }
    }

    /// The network in runs equals it one frame at a time, bit for bit, in the portable and
    /// the AVX build, at 8 kHz (lines barely longer than a run) and 48 kHz, at block
    /// sizes from 1 to longer than every line, over bursts and silence.
    #[test]
    fn runs_equal_frame_by_frame() {
        for rate in [8_000u32, 48_000] {
            let frames = rate as usize;
            let x: Vec<f32> = (0..frames)
                .map(|i| {
                    let burst = (i / 700) % 3 != 2;
                    if burst {
                        ((i * 7919) % 1000) as f32 / 500.0 - 1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut want_l = vec![0.0f32; frames];
            let mut want_r = vec![0.0f32; frames];
            let mut reference = Fdn::new(rate);
            reference.reset();
            reference.process_frame_by_frame(&x, &mut want_l, &mut want_r);
            for avx in [false, crate::dsp::has_avx()] {
                for block in [1, 37, 64, 100, 256, 1500] {
                    let mut fdn = Fdn::new(rate);
                    fdn.reset();
                    fdn.idle_limit = usize::MAX;
                    let (mut l, mut r) = (vec![0.0f32; frames], vec![0.0f32; frames]);
                    let mut start = 0;
                    while start < frames {
                        let n = block.min(frames - start);
                        fdn.process(
                            &x[start..start + n],
                            &mut l[start..start + n],
                            &mut r[start..start + n],
                            avx,
                        );
                        start += n;
                    }
                    for (k, ((a, b), (c, d))) in
                        l.iter().zip(&r).zip(want_l.iter().zip(&want_r)).enumerate()
                    {
                        assert!(
                            a.to_bits() == c.to_bits() && b.to_bits() == d.to_bits(),
                            "{rate} Hz, block {block}, avx {avx}, frame {k}: {a} {b} vs {c} {d}"
                        );
                    }
                    assert!(l.iter().any(|&v| v.abs() > 1e-3), "the network rings");
                }
            }
        }
    }
}
