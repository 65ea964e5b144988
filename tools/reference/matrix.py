#!/usr/bin/env python3
"""EAR 2.1.0's render of the hand-written ADM Matrix documents in tests/data/adm/matrix/
(an M/S decode pack whose tracks carry M and S, the same with other coefficients, M/S
encode then decode on L/R tracks, a 2→2 identity direct matrix): each document is wrapped
in a BW64 file with test noise on its tracks (tools/reference/adm_corpus.py's `prepare`),
rendered with ear-render to a few layouts, and the static gain from each track to each
output channel found by least squares. Written to tests/data/adm/ear_matrix.json for
tests/adm_matrix.rs.

Run with the reference venv: /root/.cache/halo-ref-venv/bin/python tools/reference/matrix.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from ear.core import bs2051
from ear.fileio import openBw64

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from adm_corpus import EAR_RENDER, prepare  # noqa: E402

DOCS = os.path.join(HERE, "..", "..", "tests", "data", "adm", "matrix")
LAYOUTS = ["0+2+0", "0+5+0", "4+7+0"]


def main():
    result = {"ear": "2.1.0", "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(DOCS)):
            prepared = os.path.join(tmp, "in.wav")
            prepare(os.path.join(DOCS, name), prepared)
            with openBw64(prepared) as r:
                x = r.read(len(r)).astype(np.float64)
            for layout in LAYOUTS:
                out = os.path.join(tmp, "out.wav")
                subprocess.run([EAR_RENDER, "-s", layout, prepared, out], check=True,
                               capture_output=True)
                with openBw64(out) as r:
                    y = r.read(len(r)).astype(np.float64)
                g, *_ = np.linalg.lstsq(x, y, rcond=None)
                names = [c.name for c in bs2051.get_layout(layout).channels]
                gains = [{n: round(float(v), 5) for n, v in zip(names, row) if abs(v) > 1e-4}
                         for row in g]
                result["cases"].append({"document": name, "layout": layout, "gains": gains})
                print(name, layout, gains, flush=True)
    path = os.path.join(HERE, "..", "..", "tests", "data", "adm", "ear_matrix.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
