#!/usr/bin/env python3
"""EAR 2.1.0's BS.2127 §8 DirectSpeakers gains for the channels of the ITU common-definition
packs (the label mapping rules apply) rendered to other layouts, written to
tests/data/adm/ear_direct_speakers.json for tests/adm_direct_speakers.rs.

Run with the reference venv: /root/.cache/halo-ref-venv/bin/python tools/reference/direct_speakers.py
"""
import json
import os
import warnings

from ear.core import bs2051
from ear.core.direct_speakers.panner import DirectSpeakersPanner
from ear.core.metadata_input import DirectSpeakersTypeMetadata, ExtraData
from ear.fileio.adm.elements import (AudioBlockFormatDirectSpeakers, AudioPackFormat,
                                     BoundCoordinate, DirectSpeakerPolarPosition,
                                     Frequency, TypeDefinition)

# (common pack, ITU layout of the pack) → output layouts
CASES = [
    ("AP_00010003", "0+5+0", ["4+7+0", "2+5+0", "0+2+0", "4+5+0"]),
    ("AP_00010002", "0+2+0", ["0+5+0", "4+7+0"]),
    ("AP_00010017", "4+7+0", ["0+5+0", "4+5+0", "2+5+0", "0+2+0"]),
    ("AP_00010009", "9+10+3", ["4+7+0", "0+5+0", "3+7+0"]),
    ("AP_00010005", "4+5+0", ["4+7+0", "0+2+0"]),
]


def gains(pack_id, in_name, out_name):
    layout = bs2051.get_layout(out_name)
    panner = DirectSpeakersPanner(layout)
    pack = AudioPackFormat(audioPackFormatName=in_name, type=TypeDefinition.DirectSpeakers,
                           id=pack_id, is_common_definition=True)
    out = {}
    for ch in bs2051.get_layout(in_name).channels:
        pos = ch.polar_nominal_position
        bf = AudioBlockFormatDirectSpeakers(
            position=DirectSpeakerPolarPosition(
                bounded_azimuth=BoundCoordinate(pos.azimuth),
                bounded_elevation=BoundCoordinate(pos.elevation),
                bounded_distance=BoundCoordinate(1.0)),
            speakerLabel=[ch.name])
        freq = Frequency(lowPass=120.0) if ch.is_lfe else Frequency()
        tm = DirectSpeakersTypeMetadata(block_format=bf, audioPackFormats=[pack],
                                        extra_data=ExtraData(channel_frequency=freq))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pv = panner.handle(tm)
        out[ch.name] = {name: round(float(g), 9) for name, g in zip(layout.channel_names, pv)
                        if abs(g) > 1e-9}
    return out


def main():
    result = {"ear": "2.1.0", "cases": []}
    for pack_id, in_name, outs in CASES:
        for out_name in outs:
            result["cases"].append({"pack": pack_id, "input": in_name, "output": out_name,
                                    "gains": gains(pack_id, in_name, out_name)})
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "tests", "data", "adm", "ear_direct_speakers.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
