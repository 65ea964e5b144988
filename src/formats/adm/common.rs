//! ITU-R BS.2094-1 common definitions halo knows without an axml copy: the DirectSpeakers
//! channel formats (`AC_00010001` …) with their BS.2051 speaker labels, the loudspeaker
//! packs (`AP_00010001` …) and the matching stream and track formats (`AS_000100xx`,
//! `AT_000100xx_01`), so that a file may refer to them in either reference form
//! (audioTrackUID → audioTrackFormat → audioStreamFormat → audioChannelFormat, BS.2076-1;
//! or audioTrackUID → audioChannelFormat, BS.2076-2) or through its `chna` alone.

/// BS.2094-1 Table 5 (audioChannelFormat, type DirectSpeakers): the last two hex digits of
/// `AC_000100xx` and the BS.2051 label of the speaker.
const CHANNELS: [(u8, &str); 40] = [
    (0x01, "M+030"),
    (0x02, "M-030"),
    (0x03, "M+000"),
    (0x04, "LFE1"),
    (0x05, "M+110"),
    (0x06, "M-110"),
    (0x07, "M+022"),
    (0x08, "M-022"),
    (0x09, "M+180"),
    (0x0a, "M+090"),
    (0x0b, "M-090"),
    (0x0c, "T+000"),
    (0x0d, "U+030"),
    (0x0e, "U+000"),
    (0x0f, "U-030"),
    (0x10, "U+110"),
    (0x11, "U+180"),
    (0x12, "U-110"),
    (0x13, "U+090"),
    (0x14, "U-090"),
    (0x15, "B+000"),
    (0x16, "B+045"),
    (0x17, "B-045"),
    (0x18, "M+060"),
    (0x19, "M-060"),
    (0x1a, "M+135_Diff"),
    (0x1b, "M-135_Diff"),
    (0x1c, "M+135"),
    (0x1d, "M-135"),
    (0x1e, "U+135"),
    (0x1f, "U-135"),
    (0x20, "LFEL"),
    (0x21, "LFER"),
    (0x22, "U+045"),
    (0x23, "U-045"),
    (0x24, "M+SC"),
    (0x25, "M-SC"),
    (0x26, "M+045"),
    (0x27, "M-045"),
    (0x28, "UH+180"),
];

/// BS.2094-1 Table 4 (audioPackFormat, type DirectSpeakers): `AP_000100xx` and its
/// channels (`AC_000100yy`, last two hex digits) in the standard's order.
const PACKS: [(u8, &[u8]); 22] = [
    // mono (0+1+0)
    (0x01, &[0x03]),
    // stereo (0+2+0)
    (0x02, &[0x01, 0x02]),
    // 3.0 (0+3+0)
    (0x0a, &[0x01, 0x02, 0x03]),
    // 4.0 (0+4+0)
    (0x0b, &[0x01, 0x02, 0x03, 0x09]),
    // 5.0 (0+5+0)
    (0x0c, &[0x01, 0x02, 0x03, 0x05, 0x06]),
    // 5.1 (0+5+0)
    (0x03, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06]),
    // 6.1 (0+6+0)
    (0x0d, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09]),
    // 7.1 front (0+7+0)
    (0x0e, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x26, 0x27]),
    // 7.1 back (0+7+0)
    (0x0f, &[0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x1c, 0x1d]),
    // 7.1 top (2+5+0)
    (0x04, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0d, 0x0f]),
    // 7.1 side: 5.1 + screen (0+7+0)
    (0x12, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x24, 0x25]),
    // 7.1 top side: 5.1.2 (2+5+0)
    (0x13, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x13, 0x14]),
    // 9.1 screen: 5.1.2 + screen (2+7+0)
    (
        0x14,
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x13, 0x14, 0x24, 0x25],
    ),
    // 9.1: 7.1.2 (2+7+0). The standard's side channels are M+090 / M-090 (0a, 0b); EAR
    // 2.1.0's copy lists 0b 0c (M-090, T+000) by mistake.
    (
        0x16,
        &[0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x1c, 0x1d, 0x13, 0x14],
    ),
    // 9.1: 5.1.4 (4+5+0)
    (
        0x05,
        &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0d, 0x0f, 0x10, 0x12],
    ),
    // 10.1 (4+5+1)
    (
        0x10,
        &[
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0d, 0x0f, 0x10, 0x12, 0x15,
        ],
    ),
    // 10.2 (3+7+0)
    (
        0x07,
        &[
            0x03, 0x01, 0x02, 0x22, 0x23, 0x0a, 0x0b, 0x1c, 0x1d, 0x28, 0x20, 0x21,
        ],
    ),
    // 11.1: 5.1.4 + screen (4+7+0)
    (
        0x15,
        &[
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0d, 0x0f, 0x10, 0x12, 0x24, 0x25,
        ],
    ),
    // 11.1: 7.1.4 (4+7+0)
    (
        0x17,
        &[
            0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x1c, 0x1d, 0x22, 0x23, 0x1e, 0x1f,
        ],
    ),
    // 13.1 (4+9+0)
    (
        0x08,
        &[
            0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x1c, 0x1d, 0x22, 0x23, 0x1e, 0x1f, 0x24, 0x25,
        ],
    ),
    // 22.2 (9+10+3)
    (
        0x09,
        &[
            0x18, 0x19, 0x03, 0x20, 0x1c, 0x1d, 0x01, 0x02, 0x09, 0x21, 0x0a, 0x0b, 0x22, 0x23,
            0x0e, 0x0c, 0x1e, 0x1f, 0x13, 0x14, 0x11, 0x15, 0x16, 0x17,
        ],
    ),
    // Auro-3D (9+9+0)
    (
        0x11,
        &[
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0b, 0x1a, 0x1b, 0x0d, 0x0f, 0x0e, 0x10,
            0x12, 0x13, 0x14, 0x1e, 0x1f,
        ],
    ),
];

/// The `xx` of an ID `<prefix>000100xx<rest>` (case-insensitive hex), if it has that form.
fn common_index(id: &str, prefix: &str, rest_len: usize) -> Option<u8> {
    let body = id.strip_prefix(prefix)?;
    if body.len() != 8 + rest_len || !body.is_char_boundary(8) || !body[..6].eq("000100") {
        return None;
    }
    u8::from_str_radix(&body[6..8], 16).ok()
}

/// Speaker label (BS.2051 name) of a common-definition DirectSpeakers channel format.
pub(super) fn common_channel(id: &str) -> Option<&'static str> {
    let n = common_index(id, "AC_", 0)?;
    CHANNELS.iter().find(|c| c.0 == n).map(|c| c.1)
}

/// The channel format a common-definition track format (`AT_000100xx_01`) or stream
/// format (`AS_000100xx`) carries (BS.2094-1: one PCM stream and track per channel).
pub(super) fn common_channel_of_track(id: &str) -> Option<String> {
    let n = common_index(id, "AT_", 3)
        .filter(|_| id.ends_with("_01"))
        .or_else(|| common_index(id, "AS_", 0))?;
    CHANNELS
        .iter()
        .any(|c| c.0 == n)
        .then(|| format!("AC_000100{n:02x}"))
}

/// Channel formats of a common-definition pack, in the standard's order.
pub(super) fn common_pack(id: &str) -> Option<Vec<String>> {
    let n = common_index(id, "AP_", 0)?;
    PACKS
        .iter()
        .find(|p| p.0 == n)
        .map(|p| p.1.iter().map(|c| format!("AC_000100{c:02x}")).collect())
}

/// Whether an ID is one of BS.2094-1's HOA common definitions (`AP_0004xxxx`,
/// `AC_0004xxxx`, `AS_0004xxxx`, `AT_0004xxxx_01`), which halo does not render.
pub(super) fn is_common_hoa(id: &str) -> bool {
    ["AP_0004", "AC_0004", "AS_0004", "AT_0004"]
        .iter()
        .any(|p| id.starts_with(p))
}
