#!/bin/sh
# MediaInfo's reading of the dbmd chunks of the public ADM samples (tests/dbmd.rs checks
# halo's parser against these files). MediaInfoLib v23.04 (`apt-get install mediainfo`).
# Run from the repository root: sh tools/reference/dbmd_mediainfo.sh [CORPUS_DIR]
set -e
corpus=${1:-../shared/adm-corpus/public}
[ -d "$corpus" ] || corpus=../../shared/adm-corpus/public
for f in dolby_sample_adm_file_6 wavinfo_Test_ADM_ProTools; do
    (cd "$corpus" && mediainfo --Full "$f.wav") > "tests/data/dbmd/$f.mediainfo.txt"
done
