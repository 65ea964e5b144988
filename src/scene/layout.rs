//! Speaker layouts as data (ITU-R BS.2051 names and nominal positions): the built-in set
//! embedded from `layouts/*.ron`, user layout files with measured angles and distances,
//! channel order, LFE, and the WAVE_FORMAT_EXTENSIBLE channel mask.

use crate::scene::geometry::{Direction, RoomMap, SideAnchors};
use serde::Deserialize;
use thiserror::Error;

/// Speed of sound used for distance compensation, m/s (20 °C air).
pub const SPEED_OF_SOUND_M_S: f64 = 343.0;

/// The built-in layout files, embedded so that `halo` works from any directory.
const BUILTIN: &[(&str, &str)] = &[
    ("2.0", include_str!("../../layouts/2.0.ron")),
    ("5.1", include_str!("../../layouts/5.1.ron")),
    ("7.1", include_str!("../../layouts/7.1.ron")),
    ("5.1.2", include_str!("../../layouts/5.1.2.ron")),
    ("5.1.4", include_str!("../../layouts/5.1.4.ron")),
    ("7.1.2", include_str!("../../layouts/7.1.2.ron")),
    ("7.1.4", include_str!("../../layouts/7.1.4.ron")),
    ("9.1.6", include_str!("../../layouts/9.1.6.ron")),
    // Added after the original eight, so that a channel count still infers the layout it
    // did (6 → 5.1, 8 → 7.1); 1 → 1.0, 5 → 5.0 (EBU Tech 3341's L R C Ls Rs), 7 → 7.0.
    ("1.0", include_str!("../../layouts/1.0.ron")),
    ("5.0", include_str!("../../layouts/5.0.ron")),
    ("7.0", include_str!("../../layouts/7.0.ron")),
    ("5.0.2", include_str!("../../layouts/5.0.2.ron")),
    ("5.0.4", include_str!("../../layouts/5.0.4.ron")),
    ("7.0.2", include_str!("../../layouts/7.0.2.ron")),
    ("7.0.4", include_str!("../../layouts/7.0.4.ron")),
    ("4+5+1", include_str!("../../layouts/4+5+1.ron")),
    ("3+7+0", include_str!("../../layouts/3+7+0.ron")),
    ("4+9+0", include_str!("../../layouts/4+9+0.ron")),
    ("9+10+3", include_str!("../../layouts/9+10+3.ron")),
];

/// The ITU-R BS.2051 systems, by their ITU names, and the built-in layout each is (the
/// systems' letters in comments).
pub const ITU_SYSTEMS: &[(&str, &str)] = &[
    ("0+2+0", "2.0"),     // A
    ("0+5+0", "5.1"),     // B
    ("2+5+0", "5.1.2"),   // C
    ("4+5+0", "5.1.4"),   // D
    ("4+5+1", "4+5+1"),   // E
    ("3+7+0", "3+7+0"),   // F
    ("4+9+0", "4+9+0"),   // G
    ("9+10+3", "9+10+3"), // H
    ("0+7+0", "7.1"),     // I
    ("4+7+0", "7.1.4"),   // J
];

/// WAVE_FORMAT_EXTENSIBLE speaker positions (`dwChannelMask` bits), in bit order.
pub const WAV_POSITIONS: &[(&str, u32)] = &[
    ("FL", 0x1),
    ("FR", 0x2),
    ("FC", 0x4),
    ("LFE", 0x8),
    ("BL", 0x10),
    ("BR", 0x20),
    ("FLC", 0x40),
    ("FRC", 0x80),
    ("BC", 0x100),
    ("SL", 0x200),
    ("SR", 0x400),
    ("TC", 0x800),
    ("TFL", 0x1000),
    ("TFC", 0x2000),
    ("TFR", 0x4000),
    ("TBL", 0x8000),
    ("TBC", 0x10000),
    ("TBR", 0x20000),
];

/// Errors reading or looking up a speaker layout.
#[derive(Debug, Error)]
pub enum LayoutError {
    /// The layout text is not valid RON.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// The layout's file name or built-in name.
        origin: String,
        /// Line of the error, counted from 1.
        line: usize,
        /// Column of the error, counted from 1.
        column: usize,
        /// What the RON parser says.
        message: String,
    },
    /// A channel's fields are out of range or clash with another channel.
    #[error("{origin}: channel {channel} ({label}): {reason}")]
    InvalidChannel {
        /// The layout's file name or built-in name.
        origin: String,
        /// The channel's index, counted from 1.
        channel: usize,
        /// The channel's label.
        label: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The layout as a whole is invalid (no channels, duplicate names).
    #[error("{origin}: {reason}")]
    Invalid {
        /// The layout's file name or built-in name.
        origin: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// No built-in layout has this name and it is not a layout file.
    #[error(
        "unknown layout '{name}'; built-in layouts are {allowed} (or give a layout file path ending in .ron)"
    )]
    Unknown {
        /// The name given.
        name: String,
        /// The built-in layout names, comma-separated.
        allowed: String,
    },
}

/// One channel of a layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Short label used in channel orders and bed mapping (`L`, `Ltf`, …).
    pub label: String,
    /// ITU-R BS.2051 name (`M+030`, `U-135`, `LFE1`).
    pub name: String,
    pub azimuth_deg: f64,
    pub elevation_deg: f64,
    pub lfe: bool,
    /// Measured distance from the listening position, metres (user layouts).
    pub distance_m: Option<f64>,
    /// WAVE_FORMAT_EXTENSIBLE position bit, where the channel has one.
    pub wav_bit: Option<u32>,
}

impl Channel {
    pub fn direction(&self) -> Direction {
        Direction::new(self.azimuth_deg, self.elevation_deg)
    }
}

/// A speaker layout: named channels in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Name given in sessions (`"7.1.4"`) or the file's name.
    pub name: String,
    /// Other names the layout is known by (`"4+7+0"` for 7.1.4).
    pub aliases: Vec<String>,
    /// Channels in file (and WAV) order.
    pub channels: Vec<Channel>,
}

/// RON as halo reads and writes it: optional fields are written bare (`distance: 2.5`, not
/// `Some(2.5)`), and a variant holding a settings struct without inner parentheses
/// (`Limiter(ceiling_dbtp: -1)`, not `Limiter((ceiling_dbtp: -1))`).
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(
        ron::extensions::Extensions::IMPLICIT_SOME
            | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    channels: Vec<ChannelFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelFile {
    label: String,
    #[serde(default)]
    name: Option<String>,
    azimuth: f64,
    elevation: f64,
    #[serde(default)]
    lfe: bool,
    #[serde(default)]
    distance: Option<f64>,
    #[serde(default)]
    wav: Option<String>,
}

/// Delay and gain that align one speaker with the farthest one at the listening position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    pub delay_frames: usize,
    pub gain: f64,
}

impl Layout {
    /// Parses a layout file's text. `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Layout, LayoutError> {
        let file: LayoutFile = ron_options()
            .from_str(text)
            .map_err(|e| LayoutError::Syntax {
                origin: origin.to_string(),
                line: e.span.start.line,
                column: e.span.start.col,
                message: e.code.to_string(),
            })?;
        let invalid = |channel: usize, label: &str, reason: String| LayoutError::InvalidChannel {
            origin: origin.to_string(),
            channel: channel + 1,
            label: label.to_string(),
            reason,
        };
        if file.channels.is_empty() {
            return Err(LayoutError::Invalid {
                origin: origin.to_string(),
                reason: "a layout needs at least one channel".into(),
            });
        }
        if file.name.trim().is_empty() {
            return Err(LayoutError::Invalid {
                origin: origin.to_string(),
                reason: "the layout's name is empty".into(),
            });
        }
        let mut channels: Vec<Channel> = Vec::with_capacity(file.channels.len());
        for (i, c) in file.channels.into_iter().enumerate() {
            if c.label.trim().is_empty() {
                return Err(invalid(i, "", "empty label".into()));
            }
            if channels.iter().any(|o| o.label == c.label) {
                return Err(invalid(i, &c.label, "label used twice".into()));
            }
            if !c.azimuth.is_finite() || !(-360.0..=360.0).contains(&c.azimuth) {
                return Err(invalid(
                    i,
                    &c.label,
                    format!(
                        "azimuth {} is not a number of degrees in −360…360",
                        c.azimuth
                    ),
                ));
            }
            if !c.elevation.is_finite() || !(-90.0..=90.0).contains(&c.elevation) {
                return Err(invalid(
                    i,
                    &c.label,
                    format!("elevation {} is not in −90…90 degrees", c.elevation),
                ));
            }
            if let Some(d) = c.distance
                && (!d.is_finite() || d <= 0.0 || d > 100.0)
            {
                return Err(invalid(
                    i,
                    &c.label,
                    format!("distance {d} m is not in (0, 100] metres"),
                ));
            }
            let wav_bit = match &c.wav {
                None => None,
                Some(w) => Some(
                    WAV_POSITIONS
                        .iter()
                        .find(|(n, _)| n == w)
                        .map(|(_, b)| *b)
                        .ok_or_else(|| {
                            let allowed: Vec<&str> =
                                WAV_POSITIONS.iter().map(|(n, _)| *n).collect();
                            invalid(
                                i,
                                &c.label,
                                format!(
                                    "unknown wav position '{w}'; allowed: {}",
                                    allowed.join(" ")
                                ),
                            )
                        })?,
                ),
            };
            if let Some(b) = wav_bit
                && channels.iter().any(|o| o.wav_bit == Some(b))
            {
                return Err(invalid(i, &c.label, "wav position used twice".into()));
            }
            channels.push(Channel {
                name: c.name.unwrap_or_else(|| c.label.clone()),
                label: c.label,
                azimuth_deg: crate::scene::geometry::wrap_deg(c.azimuth),
                elevation_deg: c.elevation,
                lfe: c.lfe,
                distance_m: c.distance,
                wav_bit,
            });
        }
        let with_distance = channels.iter().filter(|c| c.distance_m.is_some()).count();
        if with_distance != 0 && with_distance != channels.len() {
            return Err(LayoutError::Invalid {
                origin: origin.to_string(),
                reason: "give a distance for every channel or for none".into(),
            });
        }
        if !channels.iter().any(|c| !c.lfe) {
            return Err(LayoutError::Invalid {
                origin: origin.to_string(),
                reason: "a layout needs at least one channel that is not LFE".into(),
            });
        }
        Ok(Layout {
            name: file.name,
            aliases: file.aliases,
            channels,
        })
    }

    /// A built-in layout by name or alias (`7.1.4`, `4+7+0`, `stereo`, …).
    pub fn builtin(name: &str) -> Result<Layout, LayoutError> {
        for layout in Layout::builtins() {
            if layout.name == name || layout.aliases.iter().any(|a| a == name) {
                return Ok(layout);
            }
        }
        if let Some((_, target)) = ITU_SYSTEMS.iter().find(|(itu, _)| *itu == name) {
            return Layout::builtin(target);
        }
        Err(LayoutError::Unknown {
            name: name.to_string(),
            allowed: Layout::builtin_names().join(", "),
        })
    }

    /// Every built-in layout, in a fixed order.
    pub fn builtins() -> Vec<Layout> {
        BUILTIN
            .iter()
            .map(|(name, text)| {
                // The embedded files are part of the program and parsed by a unit test.
                Layout::parse(text, &format!("layouts/{name}.ron"))
                    .unwrap_or_else(|e| panic!("built-in layout is invalid: {e}"))
            })
            .collect()
    }

    /// Names of the built-in layouts, in table order.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    /// Channel labels in channel order.
    pub fn labels(&self) -> Vec<&str> {
        self.channels.iter().map(|c| c.label.as_str()).collect()
    }

    /// Index of the channel with this label, if any.
    pub fn channel_index(&self, label: &str) -> Option<usize> {
        self.channels.iter().position(|c| c.label == label)
    }

    /// Indices of the LFE channels.
    pub fn lfe_indices(&self) -> Vec<usize> {
        (0..self.channels.len())
            .filter(|&i| self.channels[i].lfe)
            .collect()
    }

    /// Whether two layouts have the same channels in the same order (names may differ).
    pub fn same_channels(&self, other: &Layout) -> bool {
        self.channels.len() == other.channels.len()
            && self
                .channels
                .iter()
                .zip(&other.channels)
                .all(|(a, b)| a.label == b.label && a.lfe == b.lfe)
    }

    /// The WAVE_FORMAT_EXTENSIBLE channel mask, when every channel has a position bit.
    pub fn wav_channel_mask(&self) -> Option<u32> {
        self.channels
            .iter()
            .map(|c| c.wav_bit)
            .try_fold(0u32, |m, b| b.map(|b| m | b))
    }

    /// The order of channels in a WAV file: file channel `k` holds layout channel
    /// `wav_order()[k]`. WAVE_FORMAT_EXTENSIBLE requires the channels in the order of
    /// their mask bits (so a 7.1.4 file is L R C LFE Lrs Rrs Ls Rs Ltf Rtf Ltr Rtr);
    /// layouts without a full mask keep their own order.
    pub fn wav_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.channels.len()).collect();
        if self.wav_channel_mask().is_some() {
            order.sort_by_key(|&i| self.channels[i].wav_bit.unwrap_or(u32::MAX));
        }
        order
    }

    /// The built-in layout a WAV channel mask and count describe, if any.
    pub fn from_wav_mask(mask: u32, channels: usize) -> Option<Layout> {
        Layout::builtins()
            .into_iter()
            .find(|l| l.num_channels() == channels && l.wav_channel_mask() == Some(mask))
    }

    /// The room mapping anchored on this layout's speakers (see `geometry`).
    pub fn room_map(&self) -> RoomMap {
        let speakers: Vec<&Channel> = self.channels.iter().filter(|c| !c.lfe).collect();
        let side = |sign: f64| -> SideAnchors {
            let ear: Vec<f64> = speakers
                .iter()
                .filter(|c| c.elevation_deg.abs() <= 10.0)
                .map(|c| c.azimuth_deg * sign)
                .filter(|&a| a > 0.0 && a < 180.0)
                .collect();
            let top: Vec<f64> = speakers
                .iter()
                .filter(|c| (15.0..=70.0).contains(&c.elevation_deg))
                .map(|c| c.azimuth_deg * sign)
                .filter(|&a| a > 0.0 && a < 180.0)
                .collect();
            let closest = |set: &[f64], lo: f64, hi: f64, target: f64| -> Option<f64> {
                set.iter()
                    .copied()
                    .filter(|a| (lo..=hi).contains(a))
                    .min_by(|a, b| (a - target).abs().total_cmp(&(b - target).abs()))
            };
            let front = closest(&ear, 15.0, 50.0, 30.0).unwrap_or(30.0);
            let back = ear
                .iter()
                .copied()
                .filter(|a| (100.0..=160.0).contains(a))
                .max_by(f64::total_cmp)
                .unwrap_or(110.0);
            let side = closest(&ear, 75.0, 100.0, 90.0)
                .filter(|&s| s < back)
                .unwrap_or(0.5 * (front + back));
            SideAnchors {
                front_deg: front,
                side_deg: side,
                back_deg: back,
                top_front_deg: closest(&top, 15.0, 70.0, 45.0).unwrap_or(front),
                top_back_deg: closest(&top, 100.0, 170.0, 135.0).unwrap_or(back),
            }
        };
        let mean = |lo: f64, hi: f64, default: f64| {
            let els: Vec<f64> = speakers
                .iter()
                .map(|c| c.elevation_deg)
                .filter(|e| (lo..=hi).contains(e))
                .collect();
            if els.is_empty() {
                default
            } else {
                els.iter().sum::<f64>() / els.len() as f64
            }
        };
        RoomMap {
            left: side(1.0),
            right: side(-1.0),
            top_elevation_deg: mean(15.0, 70.0, 30.0),
            bottom_elevation_deg: mean(-70.0, -15.0, -30.0),
        }
    }

    /// Per-channel delay and gain that make every speaker arrive at the listening position
    /// aligned with the farthest one (inverse-distance gain, delay at 343 m/s). All ones
    /// and zeros for layouts without distances.
    pub fn alignment(&self, sample_rate: u32) -> Vec<Alignment> {
        let far = self
            .channels
            .iter()
            .filter_map(|c| c.distance_m)
            .fold(0.0f64, f64::max);
        self.channels
            .iter()
            .map(|c| match c.distance_m {
                Some(d) if far > 0.0 => Alignment {
                    delay_frames: ((far - d) / SPEED_OF_SOUND_M_S * sample_rate as f64).round()
                        as usize,
                    gain: d / far,
                },
                _ => Alignment {
                    delay_frames: 0,
                    gain: 1.0,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_resolve_aliases() {
        // The original eight, seven without LFE, BS.2051 systems E, F and H.
        assert_eq!(Layout::builtins().len(), 19);
        for (itu, name) in ITU_SYSTEMS {
            assert_eq!(Layout::builtin(itu).unwrap().name, *name, "{itu}");
        }
        assert_eq!(Layout::builtin("9+10+3").unwrap().num_channels(), 24);
        assert_eq!(Layout::builtin("4+7+0").unwrap().name, "7.1.4");
        assert_eq!(Layout::builtin("0+2+0").unwrap().name, "2.0");
        let err = Layout::builtin("11.1").unwrap_err().to_string();
        assert!(err.contains("11.1") && err.contains("7.1.4"), "{err}");
    }

    #[test]
    fn channel_order_714() {
        let l = Layout::builtin("7.1.4").unwrap();
        assert_eq!(
            l.labels(),
            [
                "L", "R", "C", "LFE", "Ls", "Rs", "Lrs", "Rrs", "Ltf", "Rtf", "Ltr", "Rtr"
            ]
        );
        assert_eq!(l.lfe_indices(), vec![3]);
    }

    #[test]
    fn channel_masks() {
        let mask = |n: &str| Layout::builtin(n).unwrap().wav_channel_mask();
        assert_eq!(mask("2.0"), Some(0x3));
        assert_eq!(mask("5.1"), Some(0x60F));
        assert_eq!(mask("7.1"), Some(0x63F));
        assert_eq!(mask("5.1.4"), Some(0x2D60F));
        assert_eq!(mask("7.1.4"), Some(0x2D63F));
        assert_eq!(mask("9.1.6"), None);
        let l = Layout::builtin("7.1.4").unwrap();
        let order: Vec<&str> = l
            .wav_order()
            .iter()
            .map(|&i| l.channels[i].label.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "L", "R", "C", "LFE", "Lrs", "Rrs", "Ls", "Rs", "Ltf", "Rtf", "Ltr", "Rtr"
            ]
        );
        assert_eq!(Layout::from_wav_mask(0x2D63F, 12).unwrap().name, "7.1.4");
    }

    #[test]
    fn user_layout_errors_name_the_place() {
        let e = Layout::parse("(name: \"x\", channels: [", "room.ron").unwrap_err();
        assert!(matches!(e, LayoutError::Syntax { .. }), "{e}");
        let e = Layout::parse(
            "(name: \"x\", channels: [(label: \"L\", azimuth: 30, elevation: 120)])",
            "room.ron",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("room.ron") && e.contains("elevation 120"), "{e}");
    }

    #[test]
    fn distance_alignment() {
        let l = Layout::parse(
            "(name: \"room\", channels: [
                (label: \"L\", azimuth: 30, elevation: 0, distance: 3.43),
                (label: \"R\", azimuth: -30, elevation: 0, distance: 1.715),
            ])",
            "room.ron",
        )
        .unwrap();
        let a = l.alignment(48000);
        assert_eq!(a[0].delay_frames, 0);
        assert_eq!(a[1].delay_frames, 240); // 1.715 m nearer = 5 ms
        assert!((a[1].gain - 0.5).abs() < 1e-12);
    }

    #[test]
    fn room_map_anchors_follow_the_layout() {
        let m = Layout::builtin("7.1.4").unwrap().room_map();
        assert_eq!(m.left.back_deg, 135.0);
        assert_eq!(m.left.side_deg, 90.0);
        assert_eq!(m.right.top_front_deg, 45.0);
        let m = Layout::builtin("5.1").unwrap().room_map();
        assert_eq!(m.left.back_deg, 110.0);
        assert_eq!(m.left.side_deg, 70.0);
    }
}
