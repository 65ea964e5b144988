"""Make halo's BS.2127 gain test data from the EAR reference renderer (EAR 2.1.0).

Run with the reference venv's python (see /work/shared/tools/reference-setup.sh):

    /root/.cache/halo-ref-venv/bin/python tools/reference/bs2127_vectors.py

Writes
  tests/data/bs2127/gain_calc_pvs.json  EAR's own 1,072 gain-calculation test vectors
      (ear/core/objectbased/test/data/gain_calc_pvs, 4+5+0): every object metadata field
      the gain calculator reads, with EAR's direct and diffuse gains (recomputed here and
      checked against the shipped outputs.npz).
  tests/data/bs2127/point_sources.json  polar and Cartesian point sources on several
      BS.2051 layouts, with EAR's gains.
  tests/data/bs2127/point_sources_4+9+0.json  the same for System G (4+9+0), whose screen
      speakers M+SC/M-SC sit between the front speakers (its own file and seed, so the
      seven layouts' data above stays as it was).
"""
import json
import os
import pickle
import random
import warnings

import numpy as np

warnings.simplefilter("ignore")

import ear.core.objectbased.gain_calc as gc  # noqa: E402
from ear.core import bs2051  # noqa: E402
from ear.core.metadata_input import ObjectTypeMetadata, ExtraData  # noqa: E402
from ear.fileio.adm.elements import (  # noqa: E402
    AudioBlockFormatObjects,
    CartesianZone,
    ObjectCartesianPosition,
    ObjectPolarPosition,
    PolarZone,
)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "data", "bs2127")
PVS = os.path.join(os.path.dirname(gc.__file__), "test", "data", "gain_calc_pvs")


def r(x):
    return None if x is None else float(x)


def gains(v):
    return [float("%.10f" % g) for g in v]


def block_to_dict(meta):
    bf = meta.block_format
    p = bf.position
    d = {}
    if isinstance(p, ObjectPolarPosition):
        d["polar"] = [r(p.azimuth), r(p.elevation), r(p.distance)]
    else:
        d["cart"] = [r(p.X), r(p.Y), r(p.Z)]
    d["edge_h"] = p.screenEdgeLock.horizontal
    d["edge_v"] = p.screenEdgeLock.vertical
    d["cartesian"] = bool(bf.cartesian)
    d["whd"] = [r(bf.width), r(bf.height), r(bf.depth)]
    d["gain"] = r(bf.gain)
    d["diffuse"] = r(bf.diffuse)
    if bf.channelLock is not None:
        d["lock"] = r(bf.channelLock.maxDistance)
        d["locked"] = True
    else:
        d["locked"] = False
    if bf.objectDivergence is not None:
        od = bf.objectDivergence
        d["divergence"] = [r(od.value), r(od.azimuthRange), r(od.positionRange)]
    d["screen_ref"] = bool(bf.screenRef)
    zones = []
    for z in bf.zoneExclusion:
        if isinstance(z, CartesianZone):
            zones.append({"cart": [r(z.minX), r(z.maxX), r(z.minY), r(z.maxY), r(z.minZ), r(z.maxZ)]})
        else:
            zones.append({"polar": [r(z.minElevation), r(z.maxElevation), r(z.minAzimuth), r(z.maxAzimuth)]})
    d["zones"] = zones
    s = meta.extra_data.reference_screen
    if s is not None:
        c = s.centrePosition
        d["ref_screen"] = [r(s.aspectRatio), r(c.azimuth), r(c.elevation), r(s.widthAzimuth)]
    return d


def layout_dict(layout):
    return {
        "name": layout.name,
        "channels": [
            [c.name, c.polar_position.azimuth, c.polar_position.elevation, bool(c.is_lfe)]
            for c in layout.channels
        ],
    }


def pvs():
    with open(os.path.join(PVS, "inputs.pickle"), "rb") as f:
        inputs = pickle.load(f)
    loaded = np.load(os.path.join(PVS, "outputs.npz"))
    layout = bs2051.get_layout("4+5+0")
    calc = gc.GainCalc(layout)
    vectors = []
    for i, meta in enumerate(inputs):
        out = calc.render(meta)
        assert np.allclose(out.direct, loaded["direct"][i], atol=1e-10)
        assert np.allclose(out.diffuse, loaded["diffuse"][i], atol=1e-10)
        v = block_to_dict(meta)
        v["direct"] = gains(out.direct)
        v["diffuse_gains"] = gains(out.diffuse)
        vectors.append(v)
    return {"source": "EAR 2.1.0 ear/core/objectbased/test/data/gain_calc_pvs",
            "layout": layout_dict(layout), "vectors": vectors}


def point_sources(names=("0+2+0", "0+5+0", "2+5+0", "4+5+0", "4+7+0", "9+10+3", "0+7+0"),
                  seed=2127):
    rng = random.Random(seed)
    layouts = []
    for name in names:
        layout = bs2051.get_layout(name)
        calc = gc.GainCalc(layout)
        vectors = []
        for k in range(150):
            if k < 12:  # on the horizon, every 30 degrees
                pos = ObjectPolarPosition(azimuth=-180.0 + 30.0 * k, elevation=0.0, distance=1.0)
            else:
                pos = ObjectPolarPosition(azimuth=rng.uniform(-180, 180),
                                          elevation=np.degrees(np.arcsin(rng.uniform(-1, 1))),
                                          distance=1.0)
            bf = AudioBlockFormatObjects(position=pos, cartesian=False)
            out = calc.render(ObjectTypeMetadata(block_format=bf, extra_data=ExtraData()))
            vectors.append({"polar": [r(pos.azimuth), r(pos.elevation)], "gains": gains(out.direct)})
        for k in range(150):
            if k < 27:  # the cube's lattice points
                x, y, z = [(-1.0, 0.0, 1.0)[(k // m) % 3] for m in (1, 3, 9)]
            else:
                x, y, z = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)
            pos = ObjectCartesianPosition(X=x, Y=y, Z=z)
            bf = AudioBlockFormatObjects(position=pos, cartesian=True)
            out = calc.render(ObjectTypeMetadata(block_format=bf, extra_data=ExtraData()))
            vectors.append({"cart": [r(x), r(y), r(z)], "gains": gains(out.direct)})
        d = layout_dict(layout)
        d["vectors"] = vectors
        layouts.append(d)
    return {"source": "EAR 2.1.0 GainCalc, point sources (no extent)", "layouts": layouts}


def write(name, data):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write("gain_calc_pvs.json", pvs())
    write("point_sources.json", point_sources())
    write("point_sources_4+9+0.json", point_sources(names=("4+9+0",), seed=2051))
