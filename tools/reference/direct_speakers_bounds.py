#!/usr/bin/env python3
"""EAR 2.1.0's BS.2127 §8 DirectSpeakers gains for channels of an own (non-common) pack
whose label the output layout lacks, with azimuth/elevation/distance bounds: the channel
goes to the speaker inside the bounds nearest its position when exactly one is nearest,
else it is panned at its position. Written to tests/data/adm/ear_direct_speakers_bounds.json
for tests/adm_direct_speakers_bounds.rs.

Run with the reference venv:
/root/.cache/halo-ref-venv/bin/python tools/reference/direct_speakers_bounds.py
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

# label, (azimuth, min, max), (elevation, min, max), (distance, min, max); None: no bound
CASES = [
    ("X1", (100.0, 80.0, 120.0), (0.0, None, None), (1.0, None, None)),
    ("X2", (0.0, -180.0, 180.0), (0.0, None, None), (1.0, None, None)),
    ("X3", (45.0, -180.0, 180.0), (30.0, 0.0, 90.0), (1.0, None, None)),
    ("X4", (180.0, 90.0, -90.0), (0.0, None, None), (1.0, None, None)),
    ("X5", (180.0, 170.0, -170.0), (0.0, None, None), (1.0, None, None)),
    ("X6", (150.0, 120.0, -120.0), (0.0, None, None), (1.0, None, None)),
    ("X7", (20.0, -30.0, 60.0), (0.0, None, None), (0.5, 0.4, 0.6)),
    ("X8", (20.0, -30.0, 60.0), (0.0, None, None), (0.5, 0.0, 1.0)),
    ("X9", (0.0, -60.0, 60.0), (60.0, 20.0, 90.0), (1.0, None, None)),
    ("M+090", (100.0, 80.0, 120.0), (0.0, None, None), (1.0, None, None)),
    ("X10", (180.0, 30.0, -30.0), (0.0, None, None), (1.0, None, None)),
    ("X11", (110.0, 100.0, 120.0), (80.0, 60.0, 90.0), (1.0, None, None)),
    ("X12", (-70.0, -100.0, -60.0), (10.0, -10.0, 40.0), (1.0, None, None)),
    ("X13", (30.0, 20.0, 40.0), (0.0, -5.0, 5.0), (1.0, None, None)),
]
OUTPUTS = ["4+7+0", "0+5+0", "0+2+0", "9+10+3", "4+5+0"]


def bound(c):
    value, lo, hi = c
    return BoundCoordinate(value=value, min=lo, max=hi)


def gains(out_name):
    layout = bs2051.get_layout(out_name)
    panner = DirectSpeakersPanner(layout)
    pack = AudioPackFormat(audioPackFormatName="own", type=TypeDefinition.DirectSpeakers,
                           id="AP_00011001", is_common_definition=False)
    out = {}
    for label, az, el, dist in CASES:
        bf = AudioBlockFormatDirectSpeakers(
            position=DirectSpeakerPolarPosition(bounded_azimuth=bound(az),
                                                bounded_elevation=bound(el),
                                                bounded_distance=bound(dist)),
            speakerLabel=[label])
        tm = DirectSpeakersTypeMetadata(block_format=bf, audioPackFormats=[pack],
                                        extra_data=ExtraData(channel_frequency=Frequency()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pv = panner.handle(tm)
        out[label] = {name: round(float(g), 9) for name, g in zip(layout.channel_names, pv)
                      if abs(g) > 1e-9}
    return out


def main():
    result = {"ear": "2.1.0",
              "channels": [{"label": l, "azimuth": list(a), "elevation": list(e),
                            "distance": list(d)} for l, a, e, d in CASES],
              "cases": [{"output": o, "gains": gains(o)} for o in OUTPUTS]}
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "tests", "data", "adm",
                        "ear_direct_speakers_bounds.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
