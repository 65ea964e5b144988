//! ITU-R BS.2127 §7.3.9–7.3.10 allocentric panning: Cartesian objects panned in the
//! cube between the speakers' allocentric positions, layer by layer (z), row by row (y)
//! and column by column (x) with sine/cosine pairs, and the allocentric extent (a
//! weighted sum over a 40 × 40 × (20 or 40) grid of virtual sources, separable per axis).

use super::geom::Vec3;

/// Virtual sources per axis of the extent grid.
const NUM_VS: usize = 40;
const NEG130DB_EXP: f64 = 6.5;
const NEG130DB: f64 = 3.162_277_660_168_379e-7; // 10^−6.5

/// `(cos, sin)` pan between two coordinates `lo` and `hi` (1,1 when they coincide).
#[inline]
fn balance(lo: f64, hi: f64, v: f64) -> (f64, f64) {
    if lo == hi {
        (1.0, 1.0)
    } else if v <= lo {
        (0.0, 1.0)
    } else if v >= hi {
        (1.0, 0.0)
    } else {
        // The quarter turn in degrees: `sin_cos_deg` reduces it exactly.
        let (s, c) = super::geom::sin_cos_deg((v - lo) / (hi - lo) * 90.0);
        (c, s)
    }
}

/// The bracketing pair of sorted values around `v`: equal indices on a value or
/// outside the range.
#[inline]
fn bracket(values: &[f64], v: f64) -> (usize, usize) {
    if v <= values[0] {
        return (0, 0);
    }
    for (i, &x) in values.iter().enumerate() {
        if x == v {
            return (i, i);
        } else if x > v {
            return (i - 1, i);
        }
    }
    (values.len() - 1, values.len() - 1)
}

/// One row of speakers (equal y and z): `(x, speaker)` sorted by x.
type Row = (f64, Vec<(f64, usize)>);
/// One layer of speakers (equal z): its rows sorted by y.
type Plane = (f64, Vec<Row>);

/// The point-source allocentric panner over a set of speaker positions (indices are
/// positions in the given slice, or the outputs given to
/// [`AllocentricPanner::with_outputs`]). The layers, rows and columns are flat sorted
/// tables, so a lookup brackets z, then y in the two layers, then x in up to four rows.
#[derive(Debug, Clone)]
pub struct AllocentricPanner {
    /// z of each layer, ascending.
    plane_z: Vec<f64>,
    /// Layer `l`'s rows are `plane_rows[l]..plane_rows[l + 1]`.
    plane_rows: Vec<usize>,
    /// y of each row (ascending within its layer).
    row_y: Vec<f64>,
    /// Row `r`'s speakers are `row_cols[r]..row_cols[r + 1]`.
    row_cols: Vec<usize>,
    /// x of each speaker (ascending within its row) and its output.
    col_x: Vec<f64>,
    col_out: Vec<usize>,
    /// Number of outputs.
    n: usize,
}

impl AllocentricPanner {
    pub fn new(positions: &[Vec3]) -> AllocentricPanner {
        let mut planes: Vec<Plane> = Vec::new();
        for (i, p) in positions.iter().enumerate() {
            let zi = match planes.iter().position(|pl| pl.0 >= p[2]) {
                Some(k) if planes[k].0 == p[2] => k,
                Some(k) => {
                    planes.insert(k, (p[2], Vec::new()));
                    k
                }
                None => {
                    planes.push((p[2], Vec::new()));
                    planes.len() - 1
                }
            };
            let rows = &mut planes[zi].1;
            let yi = match rows.iter().position(|r| r.0 >= p[1]) {
                Some(k) if rows[k].0 == p[1] => k,
                Some(k) => {
                    rows.insert(k, (p[1], Vec::new()));
                    k
                }
                None => {
                    rows.push((p[1], Vec::new()));
                    rows.len() - 1
                }
            };
            let cols = &mut rows[yi].1;
            let xi = cols.iter().position(|c| c.0 > p[0]).unwrap_or(cols.len());
            cols.insert(xi, (p[0], i));
        }
        let mut panner = AllocentricPanner {
            plane_z: Vec::new(),
            plane_rows: vec![0],
            row_y: Vec::new(),
            row_cols: vec![0],
            col_x: Vec::new(),
            col_out: Vec::new(),
            n: positions.len(),
        };
        for (z, rows) in planes {
            panner.plane_z.push(z);
            for (y, cols) in rows {
                panner.row_y.push(y);
                for (x, s) in cols {
                    panner.col_x.push(x);
                    panner.col_out.push(s);
                }
                panner.row_cols.push(panner.col_x.len());
            }
            panner.plane_rows.push(panner.row_y.len());
        }
        panner
    }

    /// The same panner writing position `s`'s gain to output `outputs[s]` of `width`
    /// (the others 0).
    pub fn with_outputs(&self, outputs: &[usize], width: usize) -> AllocentricPanner {
        let mut p = self.clone();
        p.col_out.iter_mut().for_each(|o| *o = outputs[*o]);
        p.n = width;
        p
    }

    /// Gains (one per position) of a point at `p` into `out[..n]`.
    pub fn handle(&self, p: Vec3, out: &mut [f64]) {
        out[..self.n].fill(0.0);
        if self.plane_z.is_empty() {
            return;
        }
        // Rows (and layers) often share their bracketing coordinates (every side row
        // of 7.1.4 spans x = −1…1): the last pan per axis is reused, the same numbers.
        let mut memo_y = (f64::NAN, f64::NAN, (0.0, 0.0));
        let mut memo_x = (f64::NAN, f64::NAN, (0.0, 0.0));
        let pan = |memo: &mut (f64, f64, (f64, f64)), lo: f64, hi: f64, v: f64| {
            if memo.0 != lo || memo.1 != hi {
                *memo = (lo, hi, balance(lo, hi, v));
            }
            memo.2
        };
        let (z0, z1) = bracket(&self.plane_z, p[2]);
        let zg = balance(self.plane_z[z0], self.plane_z[z1], p[2]);
        // On a layer (or outside) both ends are the same layer with gain 1: once.
        let layers = if z0 == z1 { 1 } else { 2 };
        for (zgain, zz) in [(zg.0, z0), (zg.1, z1)].into_iter().take(layers) {
            let rows = self.plane_rows[zz]..self.plane_rows[zz + 1];
            let row_y = &self.row_y[rows.clone()];
            let (y0, y1) = bracket(row_y, p[1]);
            let yg = pan(&mut memo_y, row_y[y0], row_y[y1], p[1]);
            let nrows = if y0 == y1 { 1 } else { 2 };
            for (ygain, yy) in [(yg.0, y0), (yg.1, y1)].into_iter().take(nrows) {
                let row = rows.start + yy;
                let cols = self.row_cols[row]..self.row_cols[row + 1];
                let col_x = &self.col_x[cols.clone()];
                let (x0, x1) = bracket(col_x, p[0]);
                let xg = pan(&mut memo_x, col_x[x0], col_x[x1], p[0]);
                let ncols = if x0 == x1 { 1 } else { 2 };
                for (xgain, xx) in [(xg.0, x0), (xg.1, x1)].into_iter().take(ncols) {
                    out[self.col_out[cols.start + xx]] = zgain * ygain * xgain;
                }
            }
        }
    }
}

/// Zone exclusion in allocentric space (§7.3.12): an excluded speaker on a side wall
/// (|x| = 1, not in a corner) also excludes its whole row; nothing is excluded if that
/// would leave no speaker.
pub fn allocentric_excluded(positions: &[Vec3], excluded: &mut [bool]) {
    if !excluded.iter().any(|&e| e) {
        return;
    }
    let mut orig = [false; super::MAX_SPEAKERS];
    let orig = &mut orig[..excluded.len()];
    orig.copy_from_slice(excluded);
    for (i, c) in positions.iter().enumerate() {
        if orig[i] && c[0].abs() == 1.0 && c[1].abs() != 1.0 {
            for (k, c2) in positions.iter().enumerate() {
                if c2[1] == c[1] && c2[2] == c[2] {
                    excluded[k] = true;
                }
            }
        }
    }
    if excluded.iter().all(|&e| e) {
        excluded.fill(false);
    }
}

fn scale_size(v: f64) -> f64 {
    super::geom::interp(
        v.min(1.0),
        &[0.0, 0.2, 0.5, 0.75, 1.0],
        &[0.0, 0.3, 1.0, 1.8, 2.8],
    )
}

fn h(s: f64, d_bound: f64) -> f64 {
    if d_bound >= 2.0 * s && d_bound >= 0.4 {
        let n = (2.0 * s).max(0.4);
        (n * n * n / (0.16 * 2.0 * s)).cbrt()
    } else {
        let a = d_bound / 0.4;
        (d_bound / 2.0 * a * a).cbrt()
    }
}

/// The per-axis point gains of the extent grid for one speaker set (BS.2127 §7.3.10),
/// precomputable per set.
#[derive(Debug, Clone)]
pub struct AlloExtent {
    positions: Vec<Vec3>,
    n: usize,
    xs: Vec<f64>,
    ys: Vec<f64>,
    zs: Vec<f64>,
    /// `n × len` per-axis gains of every speaker at every grid coordinate.
    gx: Vec<f64>,
    gy: Vec<f64>,
    gz: Vec<f64>,
    three_planes: bool,
    dim: usize,
    horizontal_line: bool,
    horizontal_plane: bool,
}

/// Per-axis gain of a speaker at `pos` for a grid coordinate `v`, among the speakers
/// `others` (coordinates on that axis, filtered as the standard's row/plane search).
fn axis_gain(pos: f64, lo: Option<f64>, hi: Option<f64>, v: f64) -> f64 {
    match (lo, hi) {
        (None, Some(h)) => (pos == h) as u8 as f64,
        (Some(l), None) => (pos == l) as u8 as f64,
        (Some(l), Some(h)) if l <= pos && pos <= h => {
            if l == h {
                1.0
            } else if l == pos {
                ((v - l) / (h - l) * std::f64::consts::FRAC_PI_2).cos()
            } else {
                ((v - l) / (h - l) * std::f64::consts::FRAC_PI_2).sin()
            }
        }
        _ => 0.0,
    }
}

fn bounds(v: f64, coords: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    for s in coords {
        if s <= v {
            lo = Some(lo.map_or(s, |l| l.max(s)));
        }
        if s >= v {
            hi = Some(hi.map_or(s, |x| x.min(s)));
        }
    }
    (lo, hi)
}

impl AlloExtent {
    pub fn new(positions: &[Vec3]) -> AlloExtent {
        let n = positions.len();
        let mut zset: Vec<f64> = positions.iter().map(|p| p[2]).collect();
        zset.sort_by(f64::total_cmp);
        zset.dedup();
        let three_planes = zset.len() >= 3;
        let lin = |a: f64, b: f64, k: usize| -> Vec<f64> {
            (0..k)
                .map(|i| a + (b - a) * i as f64 / (k - 1) as f64)
                .collect()
        };
        let xs = lin(-1.0, 1.0, NUM_VS);
        let ys = lin(-1.0, 1.0, NUM_VS);
        let zs = if three_planes {
            lin(-1.0, 1.0, NUM_VS)
        } else {
            lin(0.0, 1.0, NUM_VS / 2)
        };
        let mut e = AlloExtent {
            positions: positions.to_vec(),
            n,
            gx: vec![0.0; n * xs.len()],
            gy: vec![0.0; n * ys.len()],
            gz: vec![0.0; n * zs.len()],
            xs,
            ys,
            zs,
            three_planes,
            dim: (0..3)
                .filter(|&a| positions.iter().any(|p| p[a] != positions[0][a]))
                .count(),
            horizontal_line: positions
                .iter()
                .all(|p| p[1] == positions[0][1] && p[2] == positions[0][2]),
            horizontal_plane: positions.iter().all(|p| p[2] == positions[0][2]),
        };
        for s in 0..n {
            let (gx, gy, gz) = (
                e.point_gain_x_at(s),
                e.point_gain_y_at(s),
                e.point_gain_z_at(s),
            );
            let (lx, ly, lz) = (e.xs.len(), e.ys.len(), e.zs.len());
            e.gx[s * lx..(s + 1) * lx].copy_from_slice(&gx);
            e.gy[s * ly..(s + 1) * ly].copy_from_slice(&gy);
            e.gz[s * lz..(s + 1) * lz].copy_from_slice(&gz);
        }
        e
    }

    fn gain_z(&self, s: usize, z: f64) -> f64 {
        let p = self.positions[s];
        let (lo, hi) = bounds(z, self.positions.iter().map(|q| q[2]));
        axis_gain(p[2], lo, hi, z)
    }

    fn gain_y(&self, s: usize, y: f64) -> f64 {
        let p = self.positions[s];
        let (lo, hi) = bounds(
            y,
            self.positions.iter().filter(|q| q[2] == p[2]).map(|q| q[1]),
        );
        axis_gain(p[1], lo, hi, y)
    }

    fn gain_x(&self, s: usize, x: f64) -> f64 {
        let p = self.positions[s];
        let (lo, hi) = bounds(
            x,
            self.positions
                .iter()
                .filter(|q| q[2] == p[2] && q[1] == p[1])
                .map(|q| q[0]),
        );
        axis_gain(p[0], lo, hi, x)
    }

    fn point_gain_x_at(&self, s: usize) -> Vec<f64> {
        self.xs.iter().map(|&x| self.gain_x(s, x)).collect()
    }
    fn point_gain_y_at(&self, s: usize) -> Vec<f64> {
        self.ys.iter().map(|&y| self.gain_y(s, y)).collect()
    }
    fn point_gain_z_at(&self, s: usize) -> Vec<f64> {
        self.zs.iter().map(|&z| self.gain_z(s, z)).collect()
    }

    /// Gains of a Cartesian extent (`sx`, `sy`, `sz` = width, depth, height) at `p`.
    pub fn gains(&self, p: Vec3, size_x: f64, size_y: f64, size_z: f64, out: &mut [f64]) {
        let n = self.n;
        let (xo, yo) = (p[0], p[1]);
        let zo = if self.three_planes {
            p[2]
        } else {
            p[2].max(0.0)
        };
        let (nx, ny, nz) = (self.xs.len(), self.ys.len(), self.zs.len());
        let sx = scale_size(size_x).max(2.0 / (nx - 1) as f64);
        let sy = scale_size(size_y).max(2.0 / (ny - 1) as f64);
        let sz = scale_size(size_z).max(2.0 / (nz - 1) as f64);
        let s_eff = if self.horizontal_line {
            sx
        } else if self.horizontal_plane {
            let (a, b) = (sx.min(sy), sx.max(sy));
            0.75 * b + 0.25 * a
        } else {
            let mut v = [sx, sy, sz];
            v.sort_by(f64::total_cmp);
            6.0 / 9.0 * v[2] + 2.0 / 9.0 * v[1] + 1.0 / 9.0 * v[0]
        };
        let pw = if s_eff <= 0.5 {
            6.0
        } else {
            6.0 - 4.0 * ((s_eff - 0.5) / (2.8 - 0.5))
        };
        let d_bound = match self.dim {
            1 => (xo + 1.0).min(1.0 - xo),
            2 => (xo + 1.0).min(1.0 - xo).min(yo + 1.0).min(1.0 - yo),
            _ => (xo + 1.0)
                .min(1.0 - xo)
                .min(yo + 1.0)
                .min(1.0 - yo)
                .min(zo + 1.0)
                .min(1.0 - zo),
        };
        let mu = match self.dim {
            1 => h(sx, d_bound).powi(3),
            2 => (h(sx, d_bound) * h(sy, d_bound)).powf(1.5),
            _ => h(sx, d_bound) * h(sy, d_bound) * h(sz, d_bound),
        };
        let w =
            |v: f64, o: f64, s: f64| 10f64.powf(-((1.5 * (v - o) / s).powi(4)).min(NEG130DB_EXP));
        let wx: Vec<f64> = self.xs.iter().map(|&x| w(x, xo, 2.0 * sx)).collect();
        let wy: Vec<f64> = self.ys.iter().map(|&y| w(y, yo, 2.0 * sy)).collect();
        let wz: Vec<f64> = self
            .zs
            .iter()
            .map(|&z| w(z, zo, sz) * (z * std::f64::consts::PI * (3.0 / 7.0)).cos())
            .collect();
        let f = |g: &[f64], wv: &[f64], len: usize, s: usize| -> f64 {
            let mut acc = 0.0;
            for k in 0..len {
                acc += (g[s * len + k] * wv[k]).powf(pw);
            }
            if acc < NEG130DB { 0.0 } else { acc }
        };
        let mut g_inside = vec![0.0; n];
        let mut fxv = vec![0.0; n];
        let mut fyv = vec![0.0; n];
        let mut fzv = vec![0.0; n];
        for s in 0..n {
            fxv[s] = f(&self.gx, &wx, nx, s);
            fyv[s] = f(&self.gy, &wy, ny, s);
            fzv[s] = f(&self.gz, &wz, nz, s);
            g_inside[s] = fxv[s] * fyv[s] * fzv[s];
        }
        safe_norm(&mut g_inside);
        let mut g_size = vec![0.0; n];
        for s in 0..n {
            let b = |g: &[f64], wv: &[f64], len: usize, k: usize| (g[s * len + k] * wv[k]).powf(pw);
            let (fx, fy, fz) = (fxv[s], fyv[s], fzv[s]);
            let g_bound = b(&self.gx, &wx, nx, 0) * fy * fz
                + b(&self.gx, &wx, nx, nx - 1) * fy * fz
                + fx * b(&self.gy, &wy, ny, 0) * fz
                + fx * b(&self.gy, &wy, ny, ny - 1) * fz
                + fx * fy * b(&self.gz, &wz, nz, nz - 1)
                + fx * fy * b(&self.gz, &wz, nz, 0);
            g_size[s] = (g_bound + mu * g_inside[s]).powf(1.0 / pw);
        }
        safe_norm(&mut g_size);
        let s_fade = 0.2;
        let (alpha, beta) = if s_eff < s_fade {
            let a = s_eff * std::f64::consts::PI / (s_fade * 2.0);
            (a.cos(), a.sin())
        } else {
            (0.0, 1.0)
        };
        for s in 0..n {
            let gp = self.gain_x(s, xo) * self.gain_y(s, yo) * self.gain_z(s, zo);
            out[s] = alpha * gp + beta * g_size[s];
        }
        safe_norm(&mut out[..n]);
    }
}

fn safe_norm(v: &mut [f64]) {
    let len = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if len > 1e-16 {
        for x in v.iter_mut() {
            *x /= len;
        }
    } else {
        v.fill(0.0);
    }
}
