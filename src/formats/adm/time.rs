//! ADM time values (BS.2076-2 §5.2 `hh:mm:ss.fffff` and `hh:mm:ss.nnnnnSddddd`): parsing,
//! exact comparison and conversion to sample frames.

use super::*;

/// An ADM time: whole seconds plus the fraction `num/den` (`den` is `10^digits` for the
/// decimal form `hh:mm:ss.fffff`, the sample rate for the BS.2076-2 form
/// `hh:mm:ss.nnnnnSddddd`).
#[derive(Debug, Clone, Copy)]
pub struct AdmTime {
    pub seconds: u64,
    pub num: u64,
    pub den: u64,
}

impl AdmTime {
    pub const ZERO: AdmTime = AdmTime {
        seconds: 0,
        num: 0,
        den: 100_000,
    };

    /// A time of `frames` samples at `rate`: the decimal form when it is exact in five
    /// digits, the sample form otherwise.
    pub fn from_frames(frames: u64, rate: u32) -> AdmTime {
        let rate = u64::from(rate.max(1));
        let seconds = frames / rate;
        let rem = frames % rate;
        if (rem * 100_000).is_multiple_of(rate) {
            AdmTime {
                seconds,
                num: rem * 100_000 / rate,
                den: 100_000,
            }
        } else {
            AdmTime {
                seconds,
                num: rem,
                den: rate,
            }
        }
    }

    /// Parses `hh:mm:ss.fffff` (any number of fraction digits up to 18) or
    /// `hh:mm:ss.nnnnnSddddd` (`n` samples at `d` Hz, `n < d`).
    pub fn parse(s: &str) -> Option<AdmTime> {
        let s = s.trim();
        let mut parts = s.splitn(3, ':');
        let (h, m, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) || m.len() != 2 {
            return None;
        }
        let (sec, frac) = rest.split_once('.')?;
        if !digits(sec) || sec.len() != 2 {
            return None;
        }
        let (h, m, sec): (u64, u64, u64) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
        if h > 1_000_000 || m >= 60 || sec >= 60 {
            return None;
        }
        let seconds = h * 3600 + m * 60 + sec;
        if let Some((n, d)) = frac.split_once('S') {
            if !digits(n) || !digits(d) || d.len() > 9 {
                return None;
            }
            let (num, den): (u64, u64) = (n.parse().ok()?, d.parse().ok()?);
            if den == 0 || num >= den {
                return None;
            }
            Some(AdmTime { seconds, num, den })
        } else {
            if !digits(frac) {
                return None;
            }
            Some(AdmTime {
                seconds,
                num: frac.parse().ok()?,
                den: 10u64.pow(frac.len() as u32),
            })
        }
    }

    /// The time in sample frames at `rate`, rounded to the nearest frame (exact when the
    /// time falls on a sample).
    pub fn to_frames(self, rate: u32) -> u64 {
        let total = u128::from(self.seconds) * u128::from(self.den) + u128::from(self.num);
        let f = (total * 2 * u128::from(rate) + u128::from(self.den)) / (2 * u128::from(self.den));
        u64::try_from(f).unwrap_or(u64::MAX)
    }

    /// A BS.2076-1 time `hh:mm:ss.fffff` of `frames` samples at `rate`: rounded to the
    /// nearest 10 µs tick (the Dolby Atmos Master ADM profile's resolution). Below 100 kHz a
    /// tick is shorter than a sample, so [`AdmTime::to_frames`] gives `frames` back.
    pub fn from_frames_decimal(frames: u64, rate: u32) -> AdmTime {
        Self::from_ticks(Self::ticks_of(frames, rate))
    }

    /// The 10 µs ticks nearest to `frames` samples at `rate`.
    pub fn ticks_of(frames: u64, rate: u32) -> u64 {
        let rate = u128::from(rate.max(1));
        let t = (u128::from(frames) * 200_000 + rate) / (2 * rate);
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// The time of `ticks` 10 µs ticks, in the five-decimal form.
    pub fn from_ticks(ticks: u64) -> AdmTime {
        AdmTime {
            seconds: ticks / 100_000,
            num: ticks % 100_000,
            den: 100_000,
        }
    }

    /// Whether the time is a sample's time at `rate` rounded to the 10 µs of the
    /// five-decimal form (as halo and Dolby tools write BS.2076-1 times).
    pub fn is_rounded_sample(self, rate: u32) -> bool {
        self.den == 100_000 && Self::from_frames_decimal(self.to_frames(rate), rate) == self
    }

    /// Whether the time falls exactly on a sample at `rate`.
    pub fn is_on_sample(self, rate: u32) -> bool {
        (u128::from(self.num) * u128::from(rate)) % u128::from(self.den) == 0
    }

    pub fn seconds_f64(self) -> f64 {
        self.seconds as f64 + self.num as f64 / self.den as f64
    }

    pub(super) fn add(self, other: AdmTime) -> AdmTime {
        // Common denominator (both at most 10^18; the lcm may overflow: fall back to
        // nanoseconds, which is exact for every decimal time of up to 9 digits).
        let l = lcm(self.den, other.den);
        let (den, a, b) = match l {
            Some(l) if l <= 1_000_000_000_000_000_000 => (
                l,
                u128::from(self.num) * u128::from(l / self.den),
                u128::from(other.num) * u128::from(l / other.den),
            ),
            _ => {
                let ns = |t: AdmTime| u128::from(t.num) * 1_000_000_000 / u128::from(t.den);
                (1_000_000_000, ns(self), ns(other))
            }
        };
        let sum = a + b;
        let carry = (sum / u128::from(den)) as u64;
        AdmTime {
            seconds: self
                .seconds
                .saturating_add(other.seconds)
                .saturating_add(carry),
            num: (sum % u128::from(den)) as u64,
            den,
        }
    }

    pub(super) fn cmp_time(self, other: AdmTime) -> std::cmp::Ordering {
        let a = (u128::from(self.seconds) * u128::from(self.den) + u128::from(self.num))
            * u128::from(other.den);
        let b = (u128::from(other.seconds) * u128::from(other.den) + u128::from(other.num))
            * u128::from(self.den);
        a.cmp(&b)
    }
}

pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

pub(super) fn lcm(a: u64, b: u64) -> Option<u64> {
    (a / gcd(a, b).max(1)).checked_mul(b)
}

impl PartialEq for AdmTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_time(*other) == std::cmp::Ordering::Equal
    }
}

impl fmt::Display for AdmTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (
            self.seconds / 3600,
            self.seconds / 60 % 60,
            self.seconds % 60,
        );
        let mut p = 1u64;
        let mut digits = 0usize;
        while p < self.den && digits < 19 {
            p = p.saturating_mul(10);
            digits += 1;
        }
        if p == self.den {
            write!(f, "{h:02}:{m:02}:{s:02}.{:0digits$}", self.num)
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}.{:05}S{}", self.num, self.den)
        }
    }
}
