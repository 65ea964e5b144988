"""Rigid-sphere head model (Duda & Martens 1998, JASA 104(5) 3048-3058): the pressure at a
point on a rigid sphere of radius a from a point source at distance r, relative to the
free-field pressure at the sphere's centre. Prints the low-frequency interaural level
difference at 90 degrees (ears at +-90 degrees) for the near distance halo's `Near` mode
uses and for a far source, and their difference: the figure tests/binaural_modes.rs checks.

Run: /root/.cache/halo-ref-venv/bin/python tools/reference/sphere_ild.py
"""
import numpy as np
from scipy.special import spherical_jn, spherical_yn, eval_legendre

A_M = 0.0875
C_MPS = 343.0


def h(m, x, derivative=False):
    return spherical_jn(m, x, derivative) + 1j * spherical_yn(m, x, derivative)


def sphere(r_m, theta_rad, f_hz, terms=80):
    mu = 2 * np.pi * f_hz * A_M / C_MPS
    rho = r_m / A_M
    s = 0j
    for m in range(terms):
        s += (2 * m + 1) * eval_legendre(m, np.cos(theta_rad)) * h(m, mu * rho) / h(m, mu, True)
    return -(rho / mu) * np.exp(-1j * mu * rho) * s


def ild_db(r_m, f_hz):
    ipsi = sphere(r_m, 0.0, f_hz)
    contra = sphere(r_m, np.pi, f_hz)
    return 20 * np.log10(abs(ipsi) / abs(contra))


if __name__ == "__main__":
    bands = np.geomspace(200.0, 500.0, 9)
    for r in (0.25, 100.0):
        print(r, [round(ild_db(r, f), 2) for f in (50, 100, 200, 300, 500, 1000, 2000, 4000)])
    # Band figure: mean of power ratios over 200-500 Hz, in dB.
    def band(r):
        ipsi = np.mean([abs(sphere(r, 0.0, f)) ** 2 for f in bands])
        contra = np.mean([abs(sphere(r, np.pi, f)) ** 2 for f in bands])
        return 10 * np.log10(ipsi / contra)
    near, far = band(0.25), band(100.0)
    print(f"ILD 200-500 Hz at 90 deg: near (0.25 m) {near:.2f} dB, far {far:.2f} dB, difference {near - far:.2f} dB")
