//! The BW64 `chna` chunk (ITU-R BS.2088-1 §6): parsing and writing.

use super::*;

/// Parses a `chna` chunk's body (BS.2088: `numTracks` u16, `numUIDs` u16, then per entry
/// `trackIndex` u16, `UID` 12 bytes, `trackRef` 14 bytes, `packRef` 11 bytes, 1 pad byte;
/// little-endian). Entries with track index 0 are unused slots and skipped.
pub fn parse_chna(bytes: &[u8]) -> Result<Chna, AdmError> {
    const ALLOWED: &str = "a chna chunk: numTracks (u16), numUIDs (u16), then numUIDs entries \
                           of 40 bytes (trackIndex u16, UID 12, trackRef 14, packRef 11, pad 1)";
    if bytes.len() > MAX_CHNA_BYTES {
        return Err(AdmError::TooLarge {
            what: "the chna chunk's size in bytes".into(),
            value: bytes.len() as u64,
            max: MAX_CHNA_BYTES as u64,
        });
    }
    if bytes.len() < 4 {
        return Err(AdmError::Chna {
            problem: format!(
                "the chunk has {} bytes, less than its 4-byte header",
                bytes.len()
            ),
            allowed: ALLOWED.into(),
        });
    }
    let num_tracks = u16::from_le_bytes([bytes[0], bytes[1]]);
    let num_uids = u16::from_le_bytes([bytes[2], bytes[3]]) as usize;
    let needed = 4 + 40 * num_uids;
    if bytes.len() < needed {
        return Err(AdmError::Chna {
            problem: format!(
                "numUIDs = {num_uids} needs {needed} bytes, but the chunk has {} (cut short?)",
                bytes.len()
            ),
            allowed: ALLOWED.into(),
        });
    }
    let text = |b: &[u8], what: &str, index: usize| -> Result<String, AdmError> {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        let s = std::str::from_utf8(&b[..end]).ok().filter(|s| s.is_ascii());
        s.map(|s| s.trim().to_string())
            .ok_or_else(|| AdmError::Chna {
                problem: format!("entry {index}: the {what} is not ASCII text ({b:02x?})"),
                allowed: ALLOWED.into(),
            })
    };
    let mut entries = Vec::with_capacity(num_uids);
    let mut tracks: Vec<u16> = Vec::new();
    for i in 0..num_uids {
        let e = &bytes[4 + 40 * i..4 + 40 * (i + 1)];
        let track_index = u16::from_le_bytes([e[0], e[1]]);
        if track_index == 0 {
            continue;
        }
        let uid = text(&e[2..14], "UID", i + 1)?;
        if !uid.starts_with("ATU_") {
            return Err(AdmError::Chna {
                problem: format!("entry {}: UID {uid:?} is not an audioTrackUID", i + 1),
                allowed: "UIDs of the form ATU_xxxxxxxx".into(),
            });
        }
        if !tracks.contains(&track_index) {
            tracks.push(track_index);
        }
        entries.push(ChnaEntry {
            track_index,
            uid,
            track_ref: text(&e[14..28], "trackRef", i + 1)?,
            pack_ref: text(&e[28..39], "packRef", i + 1)?,
        });
    }
    if usize::from(num_tracks) < tracks.len() {
        return Err(AdmError::Chna {
            problem: format!(
                "numTracks = {num_tracks}, but the entries name {} different tracks",
                tracks.len()
            ),
            allowed: "numTracks = the number of distinct track indices".into(),
        });
    }
    Ok(Chna { entries })
}

/// Writes a `chna` chunk's body (see [`parse_chna`]).
pub fn write_chna(chna: &Chna) -> Vec<u8> {
    let mut tracks: Vec<u16> = chna.entries.iter().map(|e| e.track_index).collect();
    tracks.sort_unstable();
    tracks.dedup();
    let n = chna.entries.len().min(65535);
    let mut out = Vec::with_capacity(4 + 40 * n);
    out.extend_from_slice(&(tracks.len() as u16).to_le_bytes());
    out.extend_from_slice(&(n as u16).to_le_bytes());
    let field = |out: &mut Vec<u8>, s: &str, len: usize| {
        let b = s.as_bytes();
        for i in 0..len {
            out.push(b.get(i).copied().unwrap_or(0));
        }
    };
    for e in &chna.entries[..n] {
        out.extend_from_slice(&e.track_index.to_le_bytes());
        field(&mut out, &e.uid, 12);
        field(&mut out, &e.track_ref, 14);
        field(&mut out, &e.pack_ref, 11);
        out.push(0);
    }
    out
}
