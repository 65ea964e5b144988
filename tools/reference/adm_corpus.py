#!/usr/bin/env python3
"""Reference figures for tests/adm_corpus.rs: EAR 2.1.0 (ITU-R BS.2127) renders of the public
ADM corpus to 4+7+0 (7.1.4), as per-channel energies in dB.

EAR runs with --enable-block-duration-fix (the EBU ADM toolbox rule halo follows).
Each input is prepared the way tests/adm_corpus.rs prepares it for halo:
- a .wav file keeps its chna and axml chunks; every track that is all zeros gets test noise;
- a .xml file (an axml document without audio) is wrapped in a BW64 file of 48000 frames at
  48 kHz, one noise track per audioTrackUID in document order, with a chna built from the
  audioTrackUIDs (trackRef: the UID's audioTrackFormatIDRef, or AC_<channel digits>_00 when the
  UID names a channel format; packRef: its audioPackFormatIDRef);
- in every file, an audioStreamFormat that names both a pack and a channel (Pro Tools, the
  Dolby Atmos Conversion Tool) loses its audioPackFormatIDRef, which EAR 2.1.0 refuses.
The noise is a counter-based hash of (frame, track), uniform in [-0.25, 0.25): the same
generator as the Rust test, so both renderers get the same samples.

Run: /root/.cache/halo-ref-venv/bin/python tools/reference/adm_corpus.py \
        ../shared/adm-corpus/public tests/data/adm/ear_reference.json
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from ear.core import bs2051
from ear.fileio import openBw64
from ear.fileio.bw64 import Bw64Writer
from ear.fileio.bw64.chunks import AudioID, ChnaChunk, FormatInfoChunk

EAR_RENDER = os.path.join(os.path.dirname(sys.executable), "ear-render")
XML_FRAMES = 48000
XML_RATE = 48000


def noise(track, frames):
    """Counter-based hash noise (lowbias32 of frame * 0x9E3779B1 + track * 0x85EBCA77),
    uniform in [-0.25, 0.25)."""
    with np.errstate(over="ignore"):
        z = np.arange(frames, dtype=np.uint32) * np.uint32(0x9E3779B1) + np.uint32((track * 0x85EBCA77) & 0xFFFFFFFF)
        z ^= z >> np.uint32(16)
        z *= np.uint32(0x7FEB352D)
        z ^= z >> np.uint32(15)
        z *= np.uint32(0x846CA68B)
        z ^= z >> np.uint32(16)
    return (z.astype(np.float64) / 4294967296.0 - 0.5) * 0.5


def chna_from_xml(xml):
    ids = []
    for m in re.finditer(r"<audioTrackUID\b[^>]*?UID=\"([^\"]+)\"[^>]*?(/>|>(.*?)</audioTrackUID>)", xml, re.S):
        uid, body = m.group(1), m.group(3) or ""
        tf = re.search(r"<audioTrackFormatIDRef>\s*([^<\s]+)", body)
        cf = re.search(r"<audioChannelFormatIDRef>\s*([^<\s]+)", body)
        pf = re.search(r"<audioPackFormatIDRef>\s*([^<\s]+)", body)
        track = tf.group(1) if tf else (cf.group(1)[:11] + "_00" if cf else "AT_00000000_00")
        ids.append((uid, track, pf.group(1) if pf else "AP_00000000"))
    return ids


def strip_stream_pack_refs(axml):
    text = axml.decode("utf-8")

    def strip(m):
        body = m.group(0)
        if "<audioChannelFormatIDRef>" in body:
            body = re.sub(r"<audioPackFormatIDRef>[^<]*</audioPackFormatIDRef>\s*", "", body)
        return body

    return re.sub(r"<audioStreamFormat\b.*?</audioStreamFormat>", strip, text, flags=re.S).encode("utf-8")


def prepare(src, dst):
    if src.endswith(".xml"):
        xml = open(src, "rb").read()
        ids = chna_from_xml(xml.decode("utf-8"))
        n = max(len(ids), 1)
        samples = np.stack([noise(t, XML_FRAMES) for t in range(n)], axis=1)
        chna = ChnaChunk()
        chna.audioIDs = [AudioID(i + 1, u, t, p) for i, (u, t, p) in enumerate(ids)]
        rate = XML_RATE
        axml = xml
    else:
        with openBw64(src) as r:
            rate = r.sampleRate
            chna = r.chna
            axml = r.axml
            samples = r.read(r.countFrames if hasattr(r, "countFrames") else len(r)).astype(np.float64)
        for t in range(samples.shape[1]):
            if not np.any(samples[:, t]):
                samples[:, t] = noise(t, samples.shape[0])
    axml = strip_stream_pack_refs(axml)
    fmt = FormatInfoChunk(formatTag=1, channelCount=samples.shape[1], sampleRate=rate, bitsPerSample=24)
    with open(dst, "wb") as f:
        w = Bw64Writer(f, formatInfo=fmt, chna=chna, axml=axml)
        w.write(samples)
        w.close()


def main():
    corpus, out_json = sys.argv[1], sys.argv[2]
    labels = [c.name for c in bs2051.get_layout("4+7+0").channels]
    result = {"layout": "4+7+0", "labels": labels, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(corpus)):
            if not (name.endswith(".wav") or name.endswith(".xml")):
                continue
            src = os.path.join(corpus, name)
            prepared = os.path.join(tmp, "in.wav")
            rendered = os.path.join(tmp, "out.wav")
            entry = {}
            try:
                prepare(src, prepared)
            except Exception as e:  # noqa: BLE001 - recorded as the reference's outcome
                entry["ear_error"] = "prepare: " + str(e)[:300]
                result["files"][name] = entry
                continue
            p = subprocess.run([EAR_RENDER, "-s", "4+7+0", "--enable-block-duration-fix", prepared, rendered], capture_output=True, text=True)
            if p.returncode != 0:
                entry["ear_error"] = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1][:300]
            else:
                with openBw64(rendered) as r:
                    out = r.read(len(r)).astype(np.float64)
                energy = np.sum(out * out, axis=0)
                entry["energy_db"] = [round(float(10 * np.log10(e)), 3) if e > 0 else None for e in energy]
                entry["total_db"] = round(float(10 * np.log10(np.sum(energy))), 3) if np.sum(energy) > 0 else None
            result["files"][name] = entry
            print(name, entry.get("ear_error", entry.get("total_db")), flush=True)
            with open(out_json, "w") as f:
                json.dump(result, f, indent=1)
                f.write("\n")
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
