#!/usr/bin/env python3
"""Reference figures for tests/bs2127_objects.rs: EAR 2.1.0 (ITU-R BS.2127) renders to 4+7+0
of one-object ADM documents, one per object feature (extent, Cartesian extent and points,
divergence, channelLock, zoneExclusion, screenRef, screenEdgeLock, block gain, jumpPosition
with interpolationLength, diffuse).

Each case is an axml document written to tests/data/bs2127_objects/<case>.xml (the Rust test
reads the same files). The audio is one track of 48000 frames at 48 kHz: a constant 0.5 for
the direct-only cases, so that every output sample is 0.5 × the object's gain on that channel
at that time (EAR interpolates gains linearly, so the mid-interpolation samples are checked
too); the test noise of tests/adm_corpus.rs for the diffuse case, whose figures are energies.
EAR's output is aligned by its reported delay (none with the ear-render CLI: it is checked).

Programme-level cases go to ear_programme.json: a programme with its own reference screen
(audioProgrammeReferenceScreen, polar and Cartesian) and screenRef objects, and block
importance rendered through EAR's `filter_by_importance` at several thresholds.

Per-block cases go to ear_perblock.json: blocks that change channelLock, zoneExclusion,
screenRef, screenEdgeLock and the divergence range (EAR renders each block with its own).

Run: /root/.cache/halo-ref-venv/bin/python tools/reference/bs2127_objects.py \
        tests/data/bs2127_objects [objects] [gains] [programme] [perblock]
(all four sets by default; name some to write only those files).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from ear.core import bs2051
from ear.fileio import openBw64
from ear.fileio.bw64 import Bw64Writer
from ear.fileio.bw64.chunks import AudioID, ChnaChunk, FormatInfoChunk

EAR_RENDER = os.path.join(os.path.dirname(sys.executable), "ear-render")
FRAMES = 48000
RATE = 48000
LEVEL = 0.5
# Frames sampled in the direct cases: inside block 1, through block 2's interpolation
# (0.1 s from 24000, or the whole block without jumpPosition) and after it.
SAMPLES = [12000, 24000, 25200, 26400, 27600, 30000, 36000, 47000]


def polar(az, el, extra=""):
    return (f'<position coordinate="azimuth">{az}</position>'
            f'<position coordinate="elevation">{el}</position>{extra}')


def cart(x, y, z, extra=""):
    return (f'<cartesian>1</cartesian><position coordinate="X">{x}</position>'
            f'<position coordinate="Y">{y}</position><position coordinate="Z">{z}</position>{extra}')


JUMP = '<jumpPosition interpolationLength="0.1">1</jumpPosition>'

CASES = {
    "polar_extent": [polar(30, 0, "<width>60</width><height>20</height>"),
                     polar(-110, 30, "<width>120</width><height>45</height>" + JUMP)],
    "polar_depth": [polar(45, 10, "<width>30</width><depth>0.5</depth>"),
                    polar(-45, 10, "<width>30</width><depth>1</depth>")],
    "cartesian_points": [cart(0.3, 0.4, 0.2), cart(-0.8, -0.5, 0.7)],
    "cartesian_extent": [cart(0.5, 0.5, 0.0, "<width>0.4</width><height>0.2</height><depth>0.6</depth>"),
                         cart(-0.2, -0.9, 0.5, "<width>1.2</width><height>0.8</height><depth>0.3</depth>" + JUMP)],
    "divergence_polar": [polar(0, 0, '<objectDivergence azimuthRange="60">0.5</objectDivergence>'),
                         polar(20, 15, '<objectDivergence azimuthRange="60">1</objectDivergence>')],
    "divergence_cartesian": [cart(0, 0.8, 0, '<objectDivergence positionRange="0.4">0.7</objectDivergence>'),
                             cart(0.2, -0.3, 0.4, '<objectDivergence positionRange="0.4">0.2</objectDivergence>')],
    "channel_lock_polar": [polar(20, 5, '<channelLock maxDistance="0.3">1</channelLock>'),
                           polar(70, 5, '<channelLock maxDistance="0.3">1</channelLock>')],
    "channel_lock_cartesian": [cart(-0.7, 0.8, 0, '<channelLock>1</channelLock>'),
                               cart(0.1, 0.1, 0.9, '<channelLock>1</channelLock>')],
    "zone_polar": [polar(30, 0, '<zoneExclusion><zone minElevation="-5" maxElevation="5" '
                               'minAzimuth="25" maxAzimuth="35">M+030</zone></zoneExclusion>'),
                   polar(100, 30, '<zoneExclusion><zone minElevation="-5" maxElevation="5" '
                                  'minAzimuth="25" maxAzimuth="35">M+030</zone></zoneExclusion>')],
    "zone_cartesian": [cart(-1, 1, 0, '<zoneExclusion><zone minX="-1" maxX="-0.5" minY="0.5" '
                                      'maxY="1" minZ="-1" maxZ="0.5">front left</zone></zoneExclusion>'),
                       cart(-0.5, 0.5, 0.5, '<zoneExclusion><zone minX="-1" maxX="-0.5" minY="0.5" '
                                            'maxY="1" minZ="-1" maxZ="0.5">front left</zone></zoneExclusion>')],
    "screen_ref": [polar(20, 10, "<screenRef>1</screenRef>"),
                   polar(-25, -5, "<screenRef>1</screenRef>")],
    "screen_edge_lock_right": [
        '<position coordinate="azimuth" screenEdgeLock="right">10</position>'
        '<position coordinate="elevation">10</position>',
        '<position coordinate="azimuth" screenEdgeLock="right">-10</position>'
        '<position coordinate="elevation">-10</position>'],
    "screen_edge_lock_top": [
        '<position coordinate="azimuth">25</position>'
        '<position coordinate="elevation" screenEdgeLock="top">0</position>',
        '<position coordinate="azimuth">-5</position>'
        '<position coordinate="elevation" screenEdgeLock="top">-20</position>'],
    "block_gain": [polar(30, 0, "<gain>0.5</gain>"), polar(30, 0, "<gain>0</gain>" + JUMP)],
    "jump": [polar(70, 0), polar(-70, 0, JUMP)],
    "diffuse": [polar(30, 0, "<width>30</width><diffuse>0.6</diffuse>"),
                polar(-30, 20, "<width>30</width><diffuse>0.6</diffuse>")],
}


# Programme-level cases (ear_programme.json): the programme's own reference screen
# (audioProgrammeReferenceScreen, polar and Cartesian, far from the default 58° 1.78:1
# screen straight ahead) with screenRef objects, and block importance rendered with EAR's
# importance filter (`filter_by_importance`) at several thresholds.
POLAR_SCREEN = ('<audioProgrammeReferenceScreen aspectRatio="1.25">'
                '<screenCentrePosition azimuth="15" elevation="8" distance="1.5"/>'
                '<screenWidth azimuth="40"/></audioProgrammeReferenceScreen>')
CARTESIAN_SCREEN = ('<audioProgrammeReferenceScreen aspectRatio="2.2">'
                    '<screenCentrePosition X="-0.2" Y="1" Z="0.15"/>'
                    '<screenWidth X="1.2"/></audioProgrammeReferenceScreen>')
SCREEN_CASES = {
    "screen_programme_polar": (POLAR_SCREEN, [polar(20, 10, "<screenRef>1</screenRef>"),
                                              polar(-25, -5, "<screenRef>1</screenRef>" + JUMP)]),
    "screen_programme_polar_cartesian_object": (
        POLAR_SCREEN, [cart(0.3, 0.8, 0.2, "<screenRef>1</screenRef>"),
                       cart(-0.4, 0.9, -0.1, "<screenRef>1</screenRef>" + JUMP)]),
    "screen_programme_cartesian": (
        CARTESIAN_SCREEN, [cart(0.3, 0.8, 0.2, "<screenRef>1</screenRef>"),
                           cart(-0.4, 0.9, -0.1, "<screenRef>1</screenRef>" + JUMP)]),
    "screen_programme_cartesian_polar_object": (
        CARTESIAN_SCREEN, [polar(20, 10, "<screenRef>1</screenRef>"),
                           polar(-40, 12, "<screenRef>1</screenRef>" + JUMP)]),
    "screen_programme_edge_lock": (
        POLAR_SCREEN,
        ['<screenRef>1</screenRef><position coordinate="azimuth" screenEdgeLock="left">10</position>'
         '<position coordinate="elevation">5</position>',
         '<screenRef>1</screenRef><position coordinate="azimuth" screenEdgeLock="left">-15</position>'
         '<position coordinate="elevation">-8</position>' + JUMP]),
}
# Block importance: block 1 of importance 7 (gain 0.8), block 2 of importance 3 moving with
# jumpPosition; rendered at thresholds 3 (nothing muted), 5 (block 2 muted: its gain 0
# reached over the interpolation) and 8 (both muted).
IMPORTANCE_BLOCKS = [polar(30, 0, "<gain>0.8</gain><importance>7</importance>"),
                     polar(-60, 15, "<importance>3</importance>" + JUMP)]
IMPORTANCE_THRESHOLDS = [3, 5, 8]


def document(blocks, programme_extra=""):
    bfs = []
    for i, b in enumerate(blocks):
        rtime = f"00:00:00.{i * 50000:05d}"
        bfs.append(f'<audioBlockFormat audioBlockFormatID="AB_00031001_{i + 1:08d}" '
                   f'rtime="{rtime}" duration="00:00:00.50000">{b}</audioBlockFormat>')
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ebuCoreMain xmlns="urn:ebu:metadata-schema:ebuCore_2017"><coreMetadata><format><audioFormatExtended>
<audioProgramme audioProgrammeID="APR_1001" audioProgrammeName="p"><audioContentIDRef>ACO_1001</audioContentIDRef>{programme_extra}</audioProgramme>
<audioContent audioContentID="ACO_1001" audioContentName="c"><audioObjectIDRef>AO_1001</audioObjectIDRef></audioContent>
<audioObject audioObjectID="AO_1001" audioObjectName="o"><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef><audioTrackUIDRef>ATU_00000001</audioTrackUIDRef></audioObject>
<audioPackFormat audioPackFormatID="AP_00031001" audioPackFormatName="p" typeLabel="0003" typeDefinition="Objects"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef></audioPackFormat>
<audioChannelFormat audioChannelFormatID="AC_00031001" audioChannelFormatName="c" typeLabel="0003" typeDefinition="Objects">
{chr(10).join(bfs)}
</audioChannelFormat>
<audioStreamFormat audioStreamFormatID="AS_00031001" audioStreamFormatName="s" formatLabel="0001" formatDefinition="PCM"><audioChannelFormatIDRef>AC_00031001</audioChannelFormatIDRef><audioTrackFormatIDRef>AT_00031001_01</audioTrackFormatIDRef></audioStreamFormat>
<audioTrackFormat audioTrackFormatID="AT_00031001_01" audioTrackFormatName="t" formatLabel="0001" formatDefinition="PCM"><audioStreamFormatIDRef>AS_00031001</audioStreamFormatIDRef></audioTrackFormat>
<audioTrackUID UID="ATU_00000001"><audioTrackFormatIDRef>AT_00031001_01</audioTrackFormatIDRef><audioPackFormatIDRef>AP_00031001</audioPackFormatIDRef></audioTrackUID>
</audioFormatExtended></format></coreMetadata></ebuCoreMain>
"""


def noise(track, frames):
    with np.errstate(over="ignore"):
        z = np.arange(frames, dtype=np.uint32) * np.uint32(0x9E3779B1) + np.uint32((track * 0x85EBCA77) & 0xFFFFFFFF)
        z ^= z >> np.uint32(16)
        z *= np.uint32(0x7FEB352D)
        z ^= z >> np.uint32(15)
        z *= np.uint32(0x846CA68B)
        z ^= z >> np.uint32(16)
    return (z.astype(np.float64) / 4294967296.0 - 0.5) * 0.5


def render(xml, samples, tmp):
    src, dst = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.wav")
    chna = ChnaChunk([AudioID(1, "ATU_00000001", "AT_00031001_01", "AP_00031001")])
    fmt = FormatInfoChunk(formatTag=3, channelCount=1, sampleRate=RATE, bitsPerSample=32)
    with open(src, "wb") as f:
        w = Bw64Writer(f, formatInfo=fmt, chna=chna, axml=xml.encode("utf-8"))
        w.write(samples.reshape(-1, 1))
        w.close()
    subprocess.run([EAR_RENDER, "-s", "4+7+0", src, dst], check=True, capture_output=True)
    with openBw64(dst) as r:
        return r.read(len(r)).astype(np.float64)


def render_with_importance(xml, samples, tmp, threshold):
    """EAR's render through its Python API with `filter_by_importance` at `threshold` (the
    ear-render CLI has no importance option); otherwise the CLI's steps."""
    from ear.cmdline.render_file import OfflineRenderDriver
    from ear.core.importance import filter_by_importance
    from ear.fileio import openBw64Adm
    src = os.path.join(tmp, "in.wav")
    chna = ChnaChunk([AudioID(1, "ATU_00000001", "AT_00031001_01", "AP_00031001")])
    fmt = FormatInfoChunk(formatTag=3, channelCount=1, sampleRate=RATE, bitsPerSample=32)
    with open(src, "wb") as f:
        w = Bw64Writer(f, formatInfo=fmt, chna=chna, axml=xml.encode("utf-8"))
        w.write(samples.reshape(-1, 1))
        w.close()

    class Driver(OfflineRenderDriver):
        def get_rendering_items(self, adm):
            return list(filter_by_importance(super().get_rendering_items(adm), threshold))

    driver = Driver(target_layout="4+7+0", speakers_file=None, output_gain_db=0.0,
                    fail_on_overload=False, enable_block_duration_fix=False)
    spk, upmix, _ = driver.load_output_layout()
    with openBw64Adm(src) as infile:
        infile.adm.validate()
        out = np.concatenate(list(driver.render_input_file(infile, spk, upmix)))
    return out.astype(np.float64)


def programme_cases(out_dir):
    """The programme-level cases, into ear_programme.json (ear.json is left as it is)."""
    spk = bs2051.get_layout("4+7+0")
    figures = {"labels": spk.channel_names, "level": LEVEL, "samples": SAMPLES, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (screen, blocks) in SCREEN_CASES.items():
            xml = document(blocks, screen)
            with open(os.path.join(out_dir, name + ".xml"), "w") as f:
                f.write(xml)
            out = render(xml, np.full(FRAMES, LEVEL), tmp)
            figures["cases"][name] = {
                "gains": [[float(v / LEVEL) for v in out[s]] for s in SAMPLES]}
        xml = document(IMPORTANCE_BLOCKS)
        with open(os.path.join(out_dir, "block_importance.xml"), "w") as f:
            f.write(xml)
        for t in IMPORTANCE_THRESHOLDS:
            out = render_with_importance(xml, np.full(FRAMES, LEVEL), tmp, t)
            figures["cases"][f"block_importance@{t}"] = {
                "file": "block_importance", "min_importance": t,
                "gains": [[float(v / LEVEL) for v in out[s]] for s in SAMPLES]}
    with open(os.path.join(out_dir, "ear_programme.json"), "w") as f:
        json.dump(figures, f, indent=1)


def main(out_dir):
    spk = bs2051.get_layout("4+7+0")
    names = spk.channel_names
    figures = {"labels": names, "level": LEVEL, "samples": SAMPLES, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, blocks in CASES.items():
            xml = document(blocks)
            with open(os.path.join(out_dir, name + ".xml"), "w") as f:
                f.write(xml)
            if name == "diffuse":
                out = render(xml, noise(0, FRAMES), tmp)
                e = (out.astype(np.float64) ** 2).sum(axis=0)
                figures["cases"][name] = {
                    "energy_db": [float(10 * np.log10(max(v, 1e-30))) for v in e]}
            else:
                out = render(xml, np.full(FRAMES, LEVEL), tmp)
                figures["cases"][name] = {
                    "gains": [[float(v / LEVEL) for v in out[s]] for s in SAMPLES]}
    with open(os.path.join(out_dir, "ear.json"), "w") as f:
        json.dump(figures, f, indent=1)


# Per-block controls (ear_perblock.json): blocks that change channelLock (on/off and
# maxDistance), zoneExclusion, screenRef, screenEdgeLock and the objectDivergence range,
# polar and Cartesian, with interpolationLength > 0 (JUMP), a jump (interpolationLength 0)
# and the whole-block interpolation of jumpPosition 0. EAR renders each block with its own
# values and interpolates the gains between them.
SNAP = '<jumpPosition>1</jumpPosition>'
PERBLOCK_SAMPLES = [12000, 23999, 24000, 25200, 26400, 27600, 28800, 30000, 36000, 47000]
LOCK = '<channelLock maxDistance="{}">1</channelLock>'
ZONE_M030 = ('<zoneExclusion><zone minElevation="-5" maxElevation="5" minAzimuth="25" '
             'maxAzimuth="35">M+030</zone></zoneExclusion>')
ZONE_REAR = ('<zoneExclusion><zone minElevation="-5" maxElevation="5" minAzimuth="100" '
             'maxAzimuth="150">rear left</zone></zoneExclusion>')
ZONE_CART = ('<zoneExclusion><zone minX="-1" maxX="-0.5" minY="0.5" maxY="1" minZ="-1" '
             'maxZ="0.5">front left</zone></zoneExclusion>')
PERBLOCK_CASES = {
    # The same position: only the lock changes, over the interpolation length.
    "perblock_lock_on": [polar(20, 5), polar(20, 5, LOCK.format(0.3) + JUMP)],
    # The lock goes off while the object moves, over the whole block (jumpPosition 0).
    "perblock_lock_off": [polar(20, 5, LOCK.format(0.3)), polar(40, 5)],
    "perblock_lock_distance": [polar(45, 20, LOCK.format(0.1)),
                               polar(45, 20, LOCK.format(0.6) + JUMP)],
    "perblock_lock_cartesian": [cart(-0.6, 0.7, 0.1), cart(-0.6, 0.7, 0.1, '<channelLock>1</channelLock>' + SNAP)],
    # A zone added with a jump (interpolationLength 0), then one swapped for another.
    "perblock_zone_jump": [polar(30, 0), polar(30, 0, ZONE_M030 + SNAP)],
    "perblock_zone_swap": [polar(60, 0, ZONE_M030), polar(110, 0, ZONE_REAR + JUMP)],
    "perblock_zone_cartesian": [cart(-1, 1, 0, ZONE_CART), cart(-1, 1, 0, JUMP)],
    # screenRef off and on, under a programme reference screen (POLAR_SCREEN) far from
    # the default one (the default screen scales nothing).
    "perblock_screen_ref": (POLAR_SCREEN, [polar(20, 10, "<screenRef>1</screenRef>"),
                                           polar(20, 10, JUMP)]),
    "perblock_screen_ref_on": (POLAR_SCREEN, [polar(-25, -5),
                                              polar(-25, -5, "<screenRef>1</screenRef>")]),
    "perblock_edge_lock": [
        '<position coordinate="azimuth" screenEdgeLock="right">10</position>'
        '<position coordinate="elevation">10</position>',
        '<position coordinate="azimuth">10</position>'
        '<position coordinate="elevation" screenEdgeLock="top">10</position>' + JUMP],
    "perblock_divergence_range": [
        polar(0, 0, '<objectDivergence azimuthRange="20">0.6</objectDivergence>'),
        polar(0, 0, '<objectDivergence azimuthRange="70">0.6</objectDivergence>' + JUMP)],
}


def perblock_cases(out_dir):
    """The per-block control cases, into ear_perblock.json."""
    spk = bs2051.get_layout("4+7+0")
    figures = {"labels": spk.channel_names, "level": LEVEL, "samples": PERBLOCK_SAMPLES,
               "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in PERBLOCK_CASES.items():
            screen, blocks = case if isinstance(case, tuple) else ("", case)
            xml = document(blocks, screen)
            with open(os.path.join(out_dir, name + ".xml"), "w") as f:
                f.write(xml)
            out = render(xml, np.full(FRAMES, LEVEL), tmp)
            figures["cases"][name] = {
                "gains": [[float(v / LEVEL) for v in out[s]] for s in PERBLOCK_SAMPLES]}
    with open(os.path.join(out_dir, "ear_perblock.json"), "w") as f:
        json.dump(figures, f, indent=1)


# Which sets to write: all by default, or the ones named after the folder ("programme"
# writes only ear_programme.json and its documents).
SETS = sys.argv[2:] or ["objects", "gains", "programme", "perblock"]

if __name__ == "__main__" and "objects" in SETS:
    main(sys.argv[1])

if __name__ == "__main__" and "programme" in SETS:
    programme_cases(sys.argv[1])

if __name__ == "__main__" and "perblock" in SETS:
    perblock_cases(sys.argv[1])


# ---- `halo gains --controls` cases: EAR's gain calculation on 4+7+0 (direct and diffuse) ----

def gains_cli(out_dir):
    from ear.core.geom import PolarPosition
    from ear.core.metadata_input import ObjectTypeMetadata
    from ear.core.objectbased.gain_calc import GainCalc
    from ear.fileio.adm.elements import (AudioBlockFormatObjects, ChannelLock, ObjectDivergence,
                                         PolarZone, CartesianZone, ScreenEdgeLock,
                                         ObjectPolarPosition, ObjectCartesianPosition)
    layout = bs2051.get_layout("4+7+0")
    calc = GainCalc(layout)
    names = layout.channel_names
    cases = [
        ("30,10", False,
         "(extent: (width: 60, height: 20, depth: 0.2), divergence: 0.5, divergence_range: 40, "
         "diffuse: 0.3)",
         dict(position=ObjectPolarPosition(30.0, 10.0, 1.0), width=60.0, height=20.0, depth=0.2,
              objectDivergence=ObjectDivergence(0.5, azimuthRange=40.0), diffuse=0.3)),
        ("0.2,-0.4,0.3", True,
         "(extent: (width: 0.4, height: 0.3, depth: 0.2), snap: Within(0.5))",
         dict(position=ObjectCartesianPosition(0.2, -0.4, 0.3), cartesian=True, width=0.4,
              height=0.3, depth=0.2, channelLock=ChannelLock(maxDistance=0.5))),
        ("-100,0", False,
         "(zones: [Speaker(\"M-090\"), Cart(min_x: 0.5, max_x: 1, min_y: -1, max_y: 0, min_z: 0, "
         "max_z: 1)], screen_ref: true)",
         dict(position=ObjectPolarPosition(-100.0, 0.0, 1.0), screenRef=True,
              zoneExclusion=[PolarZone(minElevation=0.0, maxElevation=0.0, minAzimuth=-90.0,
                                       maxAzimuth=-90.0),
                             CartesianZone(minX=0.5, maxX=1.0, minY=-1.0, maxY=0.0, minZ=0.0,
                                           maxZ=1.0)])),
        ("20,0", False, "(screen_edge_lock: [Left, Top], snap: Any)",
         dict(position=ObjectPolarPosition(
             20.0, 0.0, 1.0, screenEdgeLock=ScreenEdgeLock(horizontal="left", vertical="top")),
              channelLock=ChannelLock())),
        ("-0.6,0.3,0", True, "(divergence: 0.7, divergence_range: 0.3, diffuse: 0.5)",
         dict(position=ObjectCartesianPosition(-0.6, 0.3, 0.0), cartesian=True,
              objectDivergence=ObjectDivergence(0.7, positionRange=0.3), diffuse=0.5)),
    ]
    result = []
    for pos, cart_, controls, kw in cases:
        g = calc.render(ObjectTypeMetadata(block_format=AudioBlockFormatObjects(**kw)))
        result.append({
            "position": pos, "cart": cart_, "controls": controls,
            "direct": {n: float(v) for n, v in zip(names, g.direct)},
            "diffuse": {n: float(v) for n, v in zip(names, g.diffuse)},
        })
    with open(os.path.join(out_dir, "gains_cli.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__" and "gains" in SETS:
    gains_cli(sys.argv[1])
