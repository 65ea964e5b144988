//! ITU-R BS.2127 §7.3.9–7.3.10 allocentric panning: Cartesian objects panned in the
//! cube between the speakers' allocentric positions, layer by layer (z), row by row (y)
//! and column by column (x) with sine/cosine pairs, and the allocentric extent (a
//! weighted sum over a 40 × 40 × (20 or 40) grid of virtual sources, separable per axis).

use super::MAX_SPEAKERS;
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
        quarter_turn((v - lo) / (hi - lo) * 90.0)
    }
}

/// `(cos a, sin a)` of an angle `a` of 0…90 degrees (or NaN): bit for bit what
/// [`super::geom::sin_cos_deg`] gives, without its general range reduction (the
/// nearest whole quarter turn is 0 or 1 here).
#[inline(always)]
fn quarter_turn(a: f64) -> (f64, f64) {
    if !(0.0..=90.0).contains(&a) {
        let (s, c) = super::geom::sin_cos_deg(a);
        return (c, s);
    }
    // `sin_cos_deg` takes q = ⌊a/90 + 1/2⌋ (0 or 1 here) and reduces to a − 90q.
    let upper = a * (1.0 / 90.0) + 0.5 >= 1.0;
    let r = if upper { a - 90.0 } else { a };
    let (s, c) = super::geom::sin_cos_reduced_deg(r);
    // Quadrant 0: (sin, cos) = (s, c); quadrant 1: (c, −s).
    if upper { (-s, c) } else { (c, s) }
}

/// A pan memo of one axis, kept per object between calls (a cache only: each entry is
/// `balance(lo, hi, v)` for its key). Two entries: a point meets at most two distinct
/// brackets per axis on the standard's layouts (e.g. 7.1.4's front row −1…0…1 and its
/// side and rear rows −1…1).
#[derive(Debug, Clone, Copy)]
struct PanMemo {
    key: [[f64; 3]; 2],
    value: [(f64, f64); 2],
    next: usize,
}

impl Default for PanMemo {
    fn default() -> Self {
        PanMemo {
            key: [[f64::NAN; 3]; 2], // matches nothing: the first calls compute
            value: [(0.0, 0.0); 2],
            next: 0,
        }
    }
}

impl PanMemo {
    /// `balance(lo, hi, v)` for `lo < v < hi`.
    #[inline]
    fn interior(&mut self, lo: f64, hi: f64, v: f64) -> (f64, f64) {
        let key = [lo, hi, v];
        if self.key[0] == key {
            return self.value[0];
        }
        if self.key[1] == key {
            return self.value[1];
        }
        let g = quarter_turn((v - lo) / (hi - lo) * 90.0);
        let k = self.next;
        self.key[k] = key;
        self.value[k] = g;
        self.next = k ^ 1;
        g
    }

    #[inline]
    fn pan(&mut self, lo: f64, hi: f64, v: f64) -> (f64, f64) {
        if lo == hi {
            return (1.0, 1.0);
        } else if v <= lo {
            return (0.0, 1.0);
        } else if v >= hi {
            return (1.0, 0.0);
        }
        let key = [lo, hi, v];
        if self.key[0] == key {
            return self.value[0];
        }
        if self.key[1] == key {
            return self.value[1];
        }
        let g = balance(lo, hi, v);
        let k = self.next;
        self.key[k] = key;
        self.value[k] = g;
        self.next = k ^ 1;
        g
    }
}

/// Per-object lookup state of the allocentric panner kept between calls (a cache only:
/// it never changes gains): the last pans of each axis, so an object at a constant
/// height (or depth, or width) computes its pan on that axis once.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlloHint {
    z: PanMemo,
    y: PanMemo,
    x: PanMemo,
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
    /// The distinct x, y and z of the speakers, ascending: the grid of [`Cell`]s.
    grid: [Vec<f64>; 3],
    /// Every cell's work (see [`Cell`]), x fastest then y then z; empty when the grid
    /// would be too large (custom rooms with many distinct coordinates), or for more
    /// than 64 outputs: the lookup then brackets layer by layer.
    cells: Vec<Cell>,
}

/// Most cells the panner precomputes (about 150 bytes each).
const MAX_CELLS: usize = 4096;

/// Where a coordinate lies among an axis's distinct speaker coordinates `d`: `2k` on
/// `d[k]` (and below the first or above the last: on the end values), `2k + 1` strictly
/// between `d[k]` and `d[k + 1]`. Every row's bracket is the same within one state.
#[inline]
fn axis_state(d: &[f64], v: f64) -> usize {
    for (k, &x) in d.iter().enumerate() {
        if v <= x {
            return if v == x || k == 0 { 2 * k } else { 2 * k - 1 };
        }
    }
    2 * (d.len() - 1)
}

/// One gain of a cell: output `out` gets `(z[z] · y[y]) · x[x]` of the cell's factors
/// (per axis: index 0 is 1, then the cosine and sine of each of the cell's pans).
#[derive(Debug, Clone, Copy, Default)]
struct Term {
    out: u8,
    z: u8,
    y: u8,
    x: u8,
}

/// The panner's work for every point in one cell of the grid of speaker coordinates
/// (each axis on a coordinate or strictly between two): the brackets of the layers,
/// rows and columns are the same for all of them, so are the distinct pans `(lo, hi)`
/// to compute per axis and which product of them feeds which output.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    z: [(f64, f64); 1],
    y: [(f64, f64); 2],
    x: [(f64, f64); 4],
    nz: u8,
    ny: u8,
    nx: u8,
    n_terms: u8,
    terms: [Term; 8],
}

impl Cell {
    /// The factor index of the pan `(lo, hi)` on an axis (added if new): its cosine for
    /// the lower end, its sine for the upper; 0 (the factor 1) when `lo == hi`.
    fn factor(pans: &mut [(f64, f64)], n: &mut u8, lo: f64, hi: f64, upper: bool) -> u8 {
        if lo == hi {
            return 0;
        }
        let j = match pans[..*n as usize].iter().position(|&q| q == (lo, hi)) {
            Some(j) => j,
            None => {
                pans[*n as usize] = (lo, hi);
                *n += 1;
                *n as usize - 1
            }
        };
        1 + 2 * j as u8 + upper as u8
    }
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
            grid: [Vec::new(), Vec::new(), Vec::new()],
            cells: Vec::new(),
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
        for (a, g) in panner.grid.iter_mut().enumerate() {
            *g = positions.iter().map(|p| p[a]).collect();
            g.sort_by(f64::total_cmp);
            g.dedup_by(|x, y| x == y);
        }
        panner.cells = panner.build_cells();
        panner
    }

    /// Every cell's pans and terms, found by bracketing a point inside it (see
    /// [`Cell`]); empty when the grid is too large or an output is 64 or more.
    fn build_cells(&self) -> Vec<Cell> {
        let states = |g: &Vec<f64>| 2 * g.len() - 1;
        if self.plane_z.is_empty()
            || self.col_out.iter().any(|&o| o >= 64)
            || self.grid.iter().map(states).product::<usize>() > MAX_CELLS
        {
            return Vec::new();
        }
        // A point of each state: the coordinate itself, or halfway to the next.
        let point = |g: &[f64], s: usize| {
            if s.is_multiple_of(2) {
                g[s / 2]
            } else {
                0.5 * (g[s / 2] + g[s / 2 + 1])
            }
        };
        let [gx, gy, gz] = &self.grid;
        let mut cells = Vec::new();
        for sz in 0..states(gz) {
            for sy in 0..states(gy) {
                for sx in 0..states(gx) {
                    let p = [point(gx, sx), point(gy, sy), point(gz, sz)];
                    let mut c = Cell::default();
                    let (z0, z1) = bracket(&self.plane_z, p[2]);
                    for (l, upper) in [(z0, false), (z1, true)]
                        .into_iter()
                        .take(1 + (z1 != z0) as usize)
                    {
                        let zi = Cell::factor(
                            &mut c.z,
                            &mut c.nz,
                            self.plane_z[z0],
                            self.plane_z[z1],
                            upper,
                        );
                        let first = self.plane_rows[l];
                        let row_y = &self.row_y[first..self.plane_rows[l + 1]];
                        let (y0, y1) = bracket(row_y, p[1]);
                        for (yy, upper) in [(y0, false), (y1, true)]
                            .into_iter()
                            .take(1 + (y1 != y0) as usize)
                        {
                            let yi = Cell::factor(&mut c.y, &mut c.ny, row_y[y0], row_y[y1], upper);
                            let r = first + yy;
                            let cols = self.row_cols[r]..self.row_cols[r + 1];
                            let col_x = &self.col_x[cols.clone()];
                            let (x0, x1) = bracket(col_x, p[0]);
                            for (xx, upper) in [(x0, false), (x1, true)]
                                .into_iter()
                                .take(1 + (x1 != x0) as usize)
                            {
                                let xi =
                                    Cell::factor(&mut c.x, &mut c.nx, col_x[x0], col_x[x1], upper);
                                c.terms[c.n_terms as usize] = Term {
                                    out: self.col_out[cols.start + xx] as u8,
                                    z: zi,
                                    y: yi,
                                    x: xi,
                                };
                                c.n_terms += 1;
                            }
                        }
                    }
                    cells.push(c);
                }
            }
        }
        cells
    }

    /// The same panner writing position `s`'s gain to output `outputs[s]` of `width`
    /// (the others 0).
    pub fn with_outputs(&self, outputs: &[usize], width: usize) -> AllocentricPanner {
        let mut p = self.clone();
        p.col_out.iter_mut().for_each(|o| *o = outputs[*o]);
        p.n = width;
        p.cells = p.build_cells();
        p
    }

    /// Gains (one per position) of a point at `p` into `out[..n]`.
    pub fn handle(&self, p: Vec3, out: &mut [f64]) {
        out[..self.n].fill(0.0);
        self.handle_into_zeroed(p, &mut AlloHint::default(), out);
    }

    /// [`AllocentricPanner::handle`] into `out[..n]` that is all zero on entry, for one
    /// of many moving objects (its pans kept in `hint`): writes only the (at most eight)
    /// outputs of the speakers around `p` and returns their mask (bit `o` for output
    /// `o`; outputs are below 64). The same gains as `handle`.
    #[inline]
    pub fn handle_into_zeroed(&self, p: Vec3, hint: &mut AlloHint, out: &mut [f64]) -> u64 {
        if self.cells.is_empty() || p.iter().any(|v| v.is_nan()) {
            return self.handle_bracketed(p, hint, out);
        }
        let [gx, gy, gz] = &self.grid;
        let (sx, sy, sz) = (
            axis_state(gx, p[0]),
            axis_state(gy, p[1]),
            axis_state(gz, p[2]),
        );
        let cell = &self.cells[(sz * (2 * gy.len() - 1) + sy) * (2 * gx.len() - 1) + sx];
        // Strictly inside each pan's range: `balance` is the quarter turn.
        // Factor tables sized to powers of two: the masked indices need no bounds check.
        let mut zf = [1.0; 4];
        if cell.nz > 0 {
            let (lo, hi) = cell.z[0];
            (zf[1], zf[2]) = hint.z.interior(lo, hi, p[2]);
        }
        let mut yf = [1.0; 8];
        for (j, &(lo, hi)) in cell.y[..cell.ny as usize].iter().enumerate() {
            (yf[1 + 2 * j], yf[2 + 2 * j]) = hint.y.interior(lo, hi, p[1]);
        }
        let mut xf = [1.0; 16];
        for (j, &(lo, hi)) in cell.x[..cell.nx as usize].iter().enumerate() {
            (xf[1 + 2 * j], xf[2 + 2 * j]) = quarter_turn((p[0] - lo) / (hi - lo) * 90.0);
        }
        let mut mask = 0;
        for t in &cell.terms[..cell.n_terms as usize] {
            let g = zf[t.z as usize & 3] * yf[t.y as usize & 7] * xf[t.x as usize & 15];
            out[t.out as usize] = g;
            mask |= 1u64 << (t.out & 63);
        }
        mask
    }

    /// [`AllocentricPanner::handle_into_zeroed`] by bracketing layer by layer, row by
    /// row (no cells, or a NaN coordinate).
    fn handle_bracketed(&self, p: Vec3, hint: &mut AlloHint, out: &mut [f64]) -> u64 {
        if self.plane_z.is_empty() {
            return 0;
        }
        let (z0, z1) = bracket(&self.plane_z, p[2]);
        let zg = hint.z.pan(self.plane_z[z0], self.plane_z[z1], p[2]);
        // On a layer (or outside) both ends are the same layer with gain 1: once.
        let mut mask = self.layer(z0, zg.0, p, hint, out);
        if z1 != z0 {
            mask |= self.layer(z1, zg.1, p, hint, out);
        }
        mask
    }

    /// The rows of layer `l` (gain `zgain`) around `p`.
    #[inline(always)]
    fn layer(&self, l: usize, zgain: f64, p: Vec3, hint: &mut AlloHint, out: &mut [f64]) -> u64 {
        let first = self.plane_rows[l];
        let row_y = &self.row_y[first..self.plane_rows[l + 1]];
        let (y0, y1) = bracket(row_y, p[1]);
        let yg = hint.y.pan(row_y[y0], row_y[y1], p[1]);
        let mut mask = self.row(first + y0, zgain * yg.0, p[0], hint, out);
        if y1 != y0 {
            mask |= self.row(first + y1, zgain * yg.1, p[0], hint, out);
        }
        mask
    }

    /// The speakers of row `r` (gain `zy`, the layer's times the row's) around `x`.
    #[inline(always)]
    fn row(&self, r: usize, zy: f64, x: f64, hint: &mut AlloHint, out: &mut [f64]) -> u64 {
        let first = self.row_cols[r];
        let col_x = &self.col_x[first..self.row_cols[r + 1]];
        let col_out = &self.col_out[first..self.row_cols[r + 1]];
        let (x0, x1) = bracket(col_x, x);
        let xg = hint.x.pan(col_x[x0], col_x[x1], x);
        let o0 = col_out[x0];
        out[o0] = zy * xg.0;
        let mut mask = 1u64.checked_shl(o0 as u32).unwrap_or(0);
        if x1 != x0 {
            let o1 = col_out[x1];
            out[o1] = zy * xg.1;
            mask |= 1u64.checked_shl(o1 as u32).unwrap_or(0);
        }
        mask
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
        // Fixed-size scratch on the stack (at most NUM_VS grid coordinates per axis and
        // MAX_SPEAKERS speakers): the gain calculation runs in `process` and must not
        // allocate.
        let mut wx = [0.0; NUM_VS];
        let mut wy = [0.0; NUM_VS];
        let mut wz = [0.0; NUM_VS];
        for (slot, &x) in wx.iter_mut().zip(&self.xs) {
            *slot = w(x, xo, 2.0 * sx);
        }
        for (slot, &y) in wy.iter_mut().zip(&self.ys) {
            *slot = w(y, yo, 2.0 * sy);
        }
        for (slot, &z) in wz.iter_mut().zip(&self.zs) {
            *slot = w(z, zo, sz) * (z * std::f64::consts::PI * (3.0 / 7.0)).cos();
        }
        let f = |g: &[f64], wv: &[f64], len: usize, s: usize| -> f64 {
            let mut acc = 0.0;
            for k in 0..len {
                acc += (g[s * len + k] * wv[k]).powf(pw);
            }
            if acc < NEG130DB { 0.0 } else { acc }
        };
        let mut g_inside = [0.0; MAX_SPEAKERS];
        let mut fxv = [0.0; MAX_SPEAKERS];
        let mut fyv = [0.0; MAX_SPEAKERS];
        let mut fzv = [0.0; MAX_SPEAKERS];
        for s in 0..n {
            fxv[s] = f(&self.gx, &wx, nx, s);
            fyv[s] = f(&self.gy, &wy, ny, s);
            fzv[s] = f(&self.gz, &wz, nz, s);
            g_inside[s] = fxv[s] * fyv[s] * fzv[s];
        }
        safe_norm(&mut g_inside[..n]);
        let mut g_size = [0.0; MAX_SPEAKERS];
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
        safe_norm(&mut g_size[..n]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::layout::Layout;

    /// The quarter turn is `sin_cos_deg`'s result bit for bit over 0…90°.
    #[test]
    fn quarter_turn_equals_sin_cos_deg() {
        for k in 0..=200_000 {
            let a = k as f64 * (90.0 / 200_000.0);
            let (s, c) = super::super::geom::sin_cos_deg(a);
            let (c2, s2) = quarter_turn(a);
            assert_eq!(
                (s.to_bits(), c.to_bits()),
                (s2.to_bits(), c2.to_bits()),
                "{a}"
            );
        }
    }

    /// The cells give the gains of bracketing layer by layer, bit for bit, on every
    /// built-in layout: on and between the speakers' coordinates, outside the cube and
    /// at random points; the returned mask covers every non-zero gain.
    #[test]
    fn cells_equal_bracketing() {
        let mut seed = 12345u64;
        let mut random = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.4 - 1.2
        };
        for layout in Layout::builtins() {
            let positions: Vec<Vec3> = super::super::layouts::speakers_of(&layout)
                .iter()
                .map(|s| s.allocentric)
                .collect();
            let panner = AllocentricPanner::new(&positions);
            assert!(!panner.cells.is_empty(), "{}", layout.name);
            let n = positions.len();
            let mut coords: Vec<Vec<f64>> = panner.grid.to_vec();
            for c in &mut coords {
                let mids: Vec<f64> = c.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
                c.extend(mids);
                c.extend([-1.0, 1.0, -1.2, 1.2, 0.3, -0.7]);
            }
            let mut points = Vec::new();
            for &x in &coords[0] {
                for &y in &coords[1] {
                    for &z in &coords[2] {
                        points.push([x, y, z]);
                    }
                }
            }
            points.extend((0..2000).map(|_| [random(), random(), random()]));
            let mut hint = AlloHint::default();
            for p in points {
                let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                let mask = panner.handle_into_zeroed(p, &mut hint, &mut a);
                panner.handle_bracketed(p, &mut AlloHint::default(), &mut b);
                let bits = |v: &[f64]| v.iter().map(|g| g.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{} at {p:?}", layout.name);
                for (o, g) in a.iter().enumerate() {
                    assert!(*g == 0.0 || mask >> o & 1 == 1, "{} at {p:?}", layout.name);
                }
            }
        }
    }
}
