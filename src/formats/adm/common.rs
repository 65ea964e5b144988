//! ITU-R BS.2094 common definitions halo knows without an axml copy.

/// Speaker label (BS.2051 name) of a common-definition DirectSpeakers channel format.
pub(super) fn common_channel(id: &str) -> Option<&'static str> {
    Some(match id {
        "AC_00010001" => "M+030",
        "AC_00010002" => "M-030",
        "AC_00010003" => "M+000",
        "AC_00010004" => "LFE1",
        "AC_00010005" => "M+110",
        "AC_00010006" => "M-110",
        _ => return None,
    })
}

/// Channel formats of a common-definition pack.
pub(super) fn common_pack(id: &str) -> Option<&'static [&'static str]> {
    Some(match id {
        "AP_00010001" => &["AC_00010003"],
        "AP_00010002" => &["AC_00010001", "AC_00010002"],
        "AP_0001000a" => &["AC_00010001", "AC_00010002", "AC_00010003"],
        "AP_0001000c" => &[
            "AC_00010001",
            "AC_00010002",
            "AC_00010003",
            "AC_00010005",
            "AC_00010006",
        ],
        "AP_00010003" => &[
            "AC_00010001",
            "AC_00010002",
            "AC_00010003",
            "AC_00010004",
            "AC_00010005",
            "AC_00010006",
        ],
        _ => return None,
    })
}
