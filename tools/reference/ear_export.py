#!/usr/bin/env python3
"""Reference figures for tests/ear_export.rs: EAR 2.1.0 (ITU-R BS.2127) renders of halo's
exported masters (the Dolby Atmos Master ADM profile) of the demo, examples/showcase.ron and
a session of a 5.1 bed and 118 moving objects, to 4+7+0 (7.1.4), as RMS levels per channel
(whole file and 2 s windows, dBFS).

The sessions and masters come from halo itself: this script runs the ignored test
`write_ear_fixtures` (cargo test --test ear_export -- --ignored) with HALO_EAR_FIXTURES set,
which writes each session with its stems, exports it (with --bake-bed-gains: EAR ignores
audioObject gain and mute) and records halo's own 7.1.4 render figures (halo.json). Then
`ear-render -s 4+7+0` renders each master and the figures are measured the same way.

Run from the repository root:
    /root/.cache/halo-ref-venv/bin/python tools/reference/ear_export.py \
        tests/data/ear_export/figures.json
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from ear.core import bs2051
from ear.fileio import openBw64

WINDOW_S = 2.0
NAMES = ["demo", "showcase", "many"]


def level_db(x):
    e = float(np.sum(x.astype(np.float64) ** 2)) / max(len(x), 1)
    return 10.0 * np.log10(max(e, 1e-20))


def figures(path):
    with openBw64(path) as f:
        rate = f.sampleRate
        samples = f.read(len(f))  # frames x channels
    window = int(WINDOW_S * rate)
    layout = bs2051.get_layout("4+7+0")
    out = []
    for c, ch in enumerate(layout.channels):
        x = samples[:, c]
        windows = [level_db(x[i:i + window]) for i in range(0, len(x), window)]
        out.append({"channel": ch.name, "rms_db": level_db(x), "windows_db": windows})
    return out


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "tests/data/ear_export/figures.json"
    bin_dir = os.path.dirname(sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HALO_EAR_FIXTURES=tmp)
        subprocess.run(
            ["cargo", "test", "--test", "ear_export", "--", "--ignored",
             "write_ear_fixtures", "--nocapture"],
            check=True, env=env)
        halo = json.load(open(os.path.join(tmp, "halo.json")))
        sessions = {}
        for name in NAMES:
            master = os.path.join(tmp, name + "-master.wav")
            rendered = os.path.join(tmp, name + "-ear.wav")
            subprocess.run([os.path.join(bin_dir, "ear-render"), "-s", "4+7+0",
                            master, rendered], check=True)
            ear = figures(rendered)
            diffs = [abs(h["rms_db"] - e["rms_db"]) for h, e in zip(halo[name], ear)
                     if e["rms_db"] > -70.0]
            print(f"{name}: worst channel difference {max(diffs):.2f} dB")
            sessions[name] = {"ear": ear, "halo": halo[name]}
    doc = {
        "what": "RMS level per 7.1.4 channel (BS.2051 names), whole file and 2 s windows, "
                "dBFS: EAR 2.1.0 `ear-render -s 4+7+0` of halo's exported master ('ear') and "
                "halo's own 7.1.4 render of the session without master chain ('halo', for "
                "the record: the test renders it again)",
        "made_by": "tools/reference/ear_export.py",
        "window_s": WINDOW_S,
        "sessions": sessions,
    }
    with open(target, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
