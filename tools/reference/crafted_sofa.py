"""Make the crafted SOFA files of tests/hostile_sofa.rs (issue 15: hostile HRTF sets).

Each file is the embedded MIT KEMAR set (hrtf/) with one thing broken, edited in place
with h5py, so everything else is byte for byte the embedded set (git stores each as a small
delta of it):

    /root/.cache/halo-ref-venv/bin/pip install h5py   # once
    /root/.cache/halo-ref-venv/bin/python tools/reference/crafted_sofa.py

Writes tests/data/sofa/*.sofa. Not repacked: sofar's HDF5 reader refuses what h5repack
and h5py's copy write (object headers it does not parse), so a smaller file built anew
would test sofar's limits, not halo's checks.
"""
import os
import shutil

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
KEMAR = os.path.join(ROOT, "hrtf", "MIT_KEMAR_normal_pinna.sofa")
OUT = os.path.join(ROOT, "tests", "data", "sofa")


def rate(hz):
    def edit(f):
        f["Data.SamplingRate"][...] = hz
    return edit


def ir_all_nan(f):
    f["Data.IR"][...] = np.nan


def position_nan(f):
    pos = f["SourcePosition"][...]
    pos[5, 1] = np.nan
    f["SourcePosition"][...] = pos


CASES = {
    "rate_1hz.sofa": rate(1.0),
    "rate_1e12hz.sofa": rate(1.0e12),
    "ir_all_nan.sofa": ir_all_nan,
    "position_nan.sofa": position_nan,
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, edit in CASES.items():
        path = os.path.join(OUT, name)
        shutil.copyfile(KEMAR, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        print(name, os.path.getsize(path), "bytes")
