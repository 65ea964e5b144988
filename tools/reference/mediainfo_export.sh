#!/bin/sh
# MediaInfo's reading of halo's Dolby Atmos Master profile export (tests/adm_profile.rs checks
# it: Dolby Atmos metadata, the ADM profile and each object's binaural render mode).
# The export is made by the ignored test `write_mediainfo_fixture`; MediaInfo from Debian's
# `mediainfo` package (MediaInfoLib v23.04 when this was made).
# Run from the repository root: sh tools/reference/mediainfo_export.sh
set -e
dir=$(mktemp -d)
HALO_MEDIAINFO_FIXTURE="$dir" cargo test --test adm_profile -- --ignored write_mediainfo_fixture
mediainfo --Version | tail -1 > tests/data/mediainfo/profile_export.txt
(cd "$dir" && mediainfo master.wav) | grep -v "^Complete name" >> tests/data/mediainfo/profile_export.txt
rm -rf "$dir"
