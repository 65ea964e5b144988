//! Keyframed parameters: a value that changes over time, given at keyframes (in sample
//! frames) and interpolated between them by step, linear or smoothstep (`3t² − 2t³`)
//! curves, as in DAW automation lanes and ADM `audioBlockFormat` interpolation.
//!
//! Each keyframe says how the value travels **from it to the next keyframe**. Before the
//! first keyframe the value is the first keyframe's; after the last, the last one's.
//! Lookup is a binary search over the keyframes (`O(log n)`, no allocation), so the engine
//! may call [`Automation::value_at`] per block or per sample; a caller moving forward
//! through time keeps a cursor ([`Automation::value_at_cursor`], `O(1)`).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How a keyframe's value travels to the next keyframe's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum Interpolation {
    /// Hold the value until the next keyframe's frame, then jump.
    Step,
    /// Straight line.
    #[default]
    Linear,
    /// Smoothstep `3t² − 2t³`: starts and ends with zero slope (no kink at the keys).
    Smooth,
}

impl Interpolation {
    /// The curve's progress (0…1) at the fraction `t` (0…1) of the way to the next key.
    pub fn shape(self, t: f64) -> f64 {
        match self {
            Interpolation::Step => 0.0,
            Interpolation::Linear => t,
            Interpolation::Smooth => t * t * (3.0 - 2.0 * t),
        }
    }
}

/// A value that can be blended between two keyframes (`t` in 0…1).
pub trait Interpolate: Copy + PartialEq {
    fn interpolate(a: Self, b: Self, t: f64) -> Self;
}

impl Interpolate for f64 {
    fn interpolate(a: f64, b: f64, t: f64) -> f64 {
        a + (b - a) * t
    }
}

impl Interpolate for f32 {
    fn interpolate(a: f32, b: f32, t: f64) -> f32 {
        (a as f64 + (b as f64 - a as f64) * t) as f32
    }
}

/// One point of an automation lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe<T> {
    /// Position in sample frames from the start of the session.
    pub frame: u64,
    pub value: T,
    /// How the value travels from this keyframe to the next one.
    pub interpolation: Interpolation,
}

/// A keyframed parameter: at least one keyframe, frames strictly increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Automation<T> {
    keys: Vec<Keyframe<T>>,
}

#[derive(Debug, Error)]
pub enum AutomationError {
    #[error("an automation needs at least one keyframe")]
    Empty,
    #[error(
        "keyframe {index} is at frame {frame}, not after the previous keyframe's frame \
         {previous_frame}; keyframe frames must strictly increase"
    )]
    OutOfOrder {
        index: usize,
        frame: u64,
        previous_frame: u64,
    },
}

impl<T: Interpolate> Automation<T> {
    /// A parameter that never changes (one keyframe at frame 0).
    pub fn constant(value: T) -> Self {
        Automation {
            keys: vec![Keyframe {
                frame: 0,
                value,
                interpolation: Interpolation::Step,
            }],
        }
    }

    /// An automation from keyframes: there must be at least one, and their frames must
    /// strictly increase.
    pub fn new(keys: Vec<Keyframe<T>>) -> Result<Self, AutomationError> {
        if keys.is_empty() {
            return Err(AutomationError::Empty);
        }
        for (index, pair) in keys.windows(2).enumerate() {
            if pair[1].frame <= pair[0].frame {
                return Err(AutomationError::OutOfOrder {
                    index: index + 1,
                    frame: pair[1].frame,
                    previous_frame: pair[0].frame,
                });
            }
        }
        Ok(Automation { keys })
    }

    pub fn keyframes(&self) -> &[Keyframe<T>] {
        &self.keys
    }

    /// Whether every keyframe has the same value (the parameter never moves).
    pub fn is_constant(&self) -> bool {
        let first = self.keys[0].value;
        self.keys.iter().all(|k| k.value == first)
    }

    /// The value at a (fractional) frame. Before the first keyframe: the first value;
    /// after the last: the last value; a `Step` key holds its value until the next key's
    /// frame exactly. A NaN frame gives the first value.
    pub fn value_at(&self, frame: f64) -> T {
        // `keys` is never empty (checked in `new`, one key in `constant`).
        let first = &self.keys[0];
        if frame.is_nan() || frame <= first.frame as f64 {
            return first.value;
        }
        // Number of keys at or before `frame` (≥ 1 here).
        let after = self.keys.partition_point(|k| k.frame as f64 <= frame);
        self.segment_value(after, frame)
    }

    /// [`Automation::value_at`] for a caller moving forward through time: `cursor` (start
    /// with 0) remembers the keyframe segment of the last lookup, which is tried first
    /// (then the next one) before a binary search. Same value as `value_at`, in `O(1)` for
    /// sequential lookups.
    pub fn value_at_cursor(&self, frame: f64, cursor: &mut usize) -> T {
        let first = &self.keys[0];
        if frame.is_nan() || frame <= first.frame as f64 {
            return first.value;
        }
        let n = self.keys.len();
        // `after` = number of keys at or before `frame` (as in `value_at`).
        let covers = |i: usize| {
            i < n
                && self.keys[i].frame as f64 <= frame
                && self.keys.get(i + 1).is_none_or(|k| k.frame as f64 > frame)
        };
        let after = if covers(*cursor) {
            *cursor + 1
        } else if covers(cursor.saturating_add(1)) {
            *cursor + 2
        } else {
            self.keys.partition_point(|k| k.frame as f64 <= frame)
        };
        *cursor = after - 1;
        self.segment_value(after, frame)
    }

    /// The value at `frame` given `after`, the number of keys at or before it (≥ 1).
    #[inline]
    fn segment_value(&self, after: usize, frame: f64) -> T {
        if after >= self.keys.len() {
            return self.keys[self.keys.len() - 1].value;
        }
        let a = &self.keys[after - 1];
        let b = &self.keys[after];
        if a.interpolation == Interpolation::Step {
            return a.value;
        }
        let span = (b.frame - a.frame) as f64;
        let t = ((frame - a.frame as f64) / span).clamp(0.0, 1.0);
        T::interpolate(a.value, b.value, a.interpolation.shape(t))
    }

    /// The first keyframe frame strictly after `frame`, if any (where the engine must
    /// start following the curve again).
    pub fn next_key_after(&self, frame: u64) -> Option<u64> {
        let i = self.keys.partition_point(|k| k.frame <= frame);
        self.keys.get(i).map(|k| k.frame)
    }

    /// The value at the first keyframe.
    pub fn first_value(&self) -> T {
        self.keys[0].value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(frame: u64, value: f64, interpolation: Interpolation) -> Keyframe<f64> {
        Keyframe {
            frame,
            value,
            interpolation,
        }
    }

    /// Naive reference: scan every segment.
    fn reference(keys: &[Keyframe<f64>], f: f64) -> f64 {
        if f <= keys[0].frame as f64 {
            return keys[0].value;
        }
        for w in keys.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if f >= a.frame as f64 && f < b.frame as f64 {
                let t = (f - a.frame as f64) / (b.frame - a.frame) as f64;
                return match a.interpolation {
                    Interpolation::Step => a.value,
                    Interpolation::Linear => a.value + (b.value - a.value) * t,
                    Interpolation::Smooth => {
                        a.value + (b.value - a.value) * (3.0 * t * t - 2.0 * t * t * t)
                    }
                };
            }
        }
        keys[keys.len() - 1].value
    }

    #[test]
    fn rejects_empty_and_unordered() {
        assert!(matches!(
            Automation::<f64>::new(vec![]),
            Err(AutomationError::Empty)
        ));
        let e = Automation::new(vec![
            key(0, 0.0, Interpolation::Linear),
            key(10, 1.0, Interpolation::Linear),
            key(10, 2.0, Interpolation::Linear),
        ])
        .unwrap_err();
        assert!(matches!(
            e,
            AutomationError::OutOfOrder {
                index: 2,
                frame: 10,
                previous_frame: 10
            }
        ));
        assert!(e.to_string().contains("strictly increase"), "{e}");
    }

    #[test]
    fn matches_naive_reference() {
        let keys = vec![
            key(100, -6.0, Interpolation::Linear),
            key(300, 0.0, Interpolation::Step),
            key(400, 3.0, Interpolation::Smooth),
            key(1000, -20.0, Interpolation::Linear),
            key(1001, 1.0, Interpolation::Linear),
        ];
        let a = Automation::new(keys.clone()).unwrap();
        let mut f = -10.0;
        while f < 1100.0 {
            let got = a.value_at(f);
            let want = reference(&keys, f);
            assert!((got - want).abs() < 1e-12, "frame {f}: {got} vs {want}");
            f += 0.37;
        }
        // Exactly at the keys: the key's value (Step jumps exactly at the next key).
        for k in &keys {
            assert_eq!(a.value_at(k.frame as f64), k.value);
        }
        assert_eq!(a.value_at(399.999), 0.0);
        assert_eq!(a.value_at(200.0), -3.0);
        assert_eq!(a.value_at(f64::NAN), -6.0);
        assert_eq!(a.value_at(f64::INFINITY), 1.0);
    }

    #[test]
    fn smoothstep_is_symmetric_and_flat_at_the_ends() {
        let a = Automation::new(vec![
            key(0, 0.0, Interpolation::Smooth),
            key(1000, 1.0, Interpolation::Linear),
        ])
        .unwrap();
        assert!((a.value_at(500.0) - 0.5).abs() < 1e-12);
        for f in [10.0, 137.0, 333.0] {
            let s = a.value_at(f) + a.value_at(1000.0 - f);
            assert!((s - 1.0).abs() < 1e-12);
        }
        // Slope at the ends is ~0: the first step changes far less than a linear ramp's.
        assert!(a.value_at(1.0) < 1e-5);
        assert!(1.0 - a.value_at(999.0) < 1e-5);
    }

    #[test]
    fn constant_and_next_key() {
        let c = Automation::constant(2.5);
        assert!(c.is_constant());
        assert_eq!(c.value_at(1e9), 2.5);
        assert_eq!(c.next_key_after(0), None);
        let a = Automation::new(vec![
            key(0, 1.0, Interpolation::Linear),
            key(48, 1.0, Interpolation::Linear),
            key(96, 2.0, Interpolation::Linear),
        ])
        .unwrap();
        assert!(!a.is_constant());
        assert_eq!(a.next_key_after(0), Some(48));
        assert_eq!(a.next_key_after(47), Some(48));
        assert_eq!(a.next_key_after(48), Some(96));
        assert_eq!(a.next_key_after(96), None);
        let flat = Automation::new(vec![
            key(0, 1.0, Interpolation::Linear),
            key(48, 1.0, Interpolation::Smooth),
        ])
        .unwrap();
        assert!(flat.is_constant());
    }

    #[test]
    fn cursor_lookup_equals_binary_search() {
        let keys: Vec<_> = (0..40u64)
            .map(|i| {
                let interp = [
                    Interpolation::Linear,
                    Interpolation::Step,
                    Interpolation::Smooth,
                ][(i % 3) as usize];
                key(100 + i * i * 7, (i as f64 * 1.7).sin(), interp)
            })
            .collect();
        let a = Automation::new(keys.clone()).unwrap();
        let mut cursor = 0;
        // Forward in 64-frame steps, then a seek back, random jumps, frames on keys,
        // before the first and after the last key.
        let mut frames: Vec<f64> = (0..200).map(|i| i as f64 * 64.0).collect();
        frames.extend([
            500.0,
            99.0,
            100.0,
            107.0,
            11_000.0,
            3.5,
            1e9,
            800.25,
            f64::NAN,
        ]);
        frames.extend((0..300).map(|i| ((i * 7919) % 12_000) as f64 + 0.5));
        for &f in &frames {
            let want = a.value_at(f);
            let got = a.value_at_cursor(f, &mut cursor);
            assert_eq!(got.to_bits(), want.to_bits(), "frame {f}");
            if !f.is_nan() {
                assert!((got - reference(&keys, f)).abs() < 1e-12, "frame {f}");
            }
        }
        // A stale cursor beyond the keys is harmless.
        let mut far = 1000;
        assert_eq!(a.value_at_cursor(5000.0, &mut far), a.value_at(5000.0));
    }
}
