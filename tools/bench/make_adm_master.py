#!/usr/bin/env python3
"""Writes the ADM speed check's master: N objects (default 128), each a mono track of its
own noise, moving round the listener in blocks of 0.1 s (BS.2076-1 times, interpolated
over each block as BS.2127 renders them), 48 kHz 24-bit BWF with chna and axml chunks.

Plain BS.2076-1 (decimal times, audioTrackFormat / audioStreamFormat references) so that
EAR 2.1.0's `ear-render` reads it as well as halo. Needs numpy (the reference venv has it).

    make_adm_master.py OUT.wav [--objects 128] [--seconds 20] [--block-ms 100]
"""
import argparse
import struct

import numpy as np

RATE = 48000


def adm_time(frames):
    s, rem = divmod(frames, RATE)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return "%02d:%02d:%02d.%05d" % (h, m, s, rem * 100000 // RATE)


def axml(n, seconds, block_ms):
    blocks = seconds * 1000 // block_ms
    block_frames = RATE * block_ms // 1000
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<ebuCoreMain xmlns="urn:ebu:metadata-schema:ebuCore_2015" '
           'xmlns:dc="http://purl.org/dc/elements/1.1/"><coreMetadata><format>'
           '<audioFormatExtended version="ITU-R_BS.2076-1">',
           '<audioProgramme audioProgrammeID="APR_1001" audioProgrammeName="speed" '
           'start="00:00:00.00000" end="%s">' % adm_time(seconds * RATE),
           '<audioContentIDRef>ACO_1001</audioContentIDRef></audioProgramme>',
           '<audioContent audioContentID="ACO_1001" audioContentName="objects">']
    out += ['<audioObjectIDRef>AO_%04X</audioObjectIDRef>' % (0x1001 + i) for i in range(n)]
    out.append('</audioContent>')
    for i in range(n):
        k = 0x1001 + i
        out.append('<audioObject audioObjectID="AO_%04X" audioObjectName="obj%d" '
                   'start="00:00:00.00000" duration="%s">'
                   '<audioPackFormatIDRef>AP_0003%04X</audioPackFormatIDRef>'
                   '<audioTrackUIDRef>ATU_%08X</audioTrackUIDRef></audioObject>'
                   % (k, i, adm_time(seconds * RATE), k, i + 1))
    for i in range(n):
        k = 0x1001 + i
        out.append('<audioPackFormat audioPackFormatID="AP_0003%04X" audioPackFormatName="obj%d" '
                   'typeLabel="0003" typeDefinition="Objects">'
                   '<audioChannelFormatIDRef>AC_0003%04X</audioChannelFormatIDRef>'
                   '</audioPackFormat>' % (k, i, k))
        out.append('<audioChannelFormat audioChannelFormatID="AC_0003%04X" '
                   'audioChannelFormatName="obj%d" typeLabel="0003" typeDefinition="Objects">'
                   % (k, i))
        period = 4.0 + i % 7  # seconds per revolution
        el = -10.0 + (i % 5) * 12.0
        for b in range(blocks):
            t_end = (b + 1) * block_ms / 1000.0
            az = (i * 17.0 + t_end / period * 360.0) % 360.0
            if az > 180.0:
                az -= 360.0
            out.append('<audioBlockFormat audioBlockFormatID="AB_0003%04X_%08X" rtime="%s" '
                       'duration="%s"><position coordinate="azimuth">%.3f</position>'
                       '<position coordinate="elevation">%.1f</position>'
                       '<position coordinate="distance">1.0</position>'
                       '<gain>0.125</gain></audioBlockFormat>'
                       % (k, b + 1, adm_time(b * block_frames), adm_time(block_frames), az, el))
        out.append('</audioChannelFormat>')
        out.append('<audioStreamFormat audioStreamFormatID="AS_0003%04X" '
                   'audioStreamFormatName="PCM_obj%d" formatLabel="0001" formatDefinition="PCM">'
                   '<audioChannelFormatIDRef>AC_0003%04X</audioChannelFormatIDRef>'
                   '<audioTrackFormatIDRef>AT_0003%04X_01</audioTrackFormatIDRef>'
                   '</audioStreamFormat>' % (k, i, k, k))
        out.append('<audioTrackFormat audioTrackFormatID="AT_0003%04X_01" '
                   'audioTrackFormatName="PCM_obj%d" formatLabel="0001" formatDefinition="PCM">'
                   '<audioStreamFormatIDRef>AS_0003%04X</audioStreamFormatIDRef>'
                   '</audioTrackFormat>' % (k, i, k))
        out.append('<audioTrackUID UID="ATU_%08X" sampleRate="%d" bitDepth="24">'
                   '<audioTrackFormatIDRef>AT_0003%04X_01</audioTrackFormatIDRef>'
                   '<audioPackFormatIDRef>AP_0003%04X</audioPackFormatIDRef>'
                   '</audioTrackUID>' % (i + 1, RATE, k, k))
    out.append('</audioFormatExtended></format></coreMetadata></ebuCoreMain>')
    return "\n".join(out).encode()


def chna(n):
    body = struct.pack("<HH", n, n)
    for i in range(n):
        k = 0x1001 + i
        body += struct.pack("<H12s14s11sx", i + 1, b"ATU_%08X" % (i + 1),
                            b"AT_0003%04X_01" % k, b"AP_0003%04X" % k)
    return body


def chunk(tag, body):
    pad = b"\0" if len(body) % 2 else b""
    return tag + struct.pack("<I", len(body)) + body + pad


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--objects", type=int, default=128)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--block-ms", type=int, default=100)
    a = p.parse_args()
    n = a.objects
    frames = a.seconds * RATE
    fmt = struct.pack("<HHIIHH", 1, n, RATE, RATE * n * 3, n * 3, 24)
    data_len = frames * n * 3
    head = chunk(b"fmt ", fmt) + chunk(b"chna", chna(n)) + chunk(b"axml", axml(n, a.seconds, a.block_ms))
    riff_len = 4 + len(head) + 8 + data_len + (data_len % 2)
    rng = np.random.default_rng(12345)
    with open(a.out, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", riff_len) + b"WAVE" + head)
        f.write(b"data" + struct.pack("<I", data_len))
        for _ in range(a.seconds):
            # Noise at about -15 dBFS RMS on every track, 24-bit little-endian.
            x = np.clip(rng.standard_normal((RATE, n)) * 0.18, -1.0, 1.0 - 2**-23)
            q = np.round(x * 2**23).astype("<i4").view(np.uint8).reshape(RATE, n, 4)
            f.write(q[:, :, :3].tobytes())
        if data_len % 2:
            f.write(b"\0")
    print("wrote %s: %d objects, %d s, blocks of %d ms" % (a.out, n, a.seconds, a.block_ms))


if __name__ == "__main__":
    main()
