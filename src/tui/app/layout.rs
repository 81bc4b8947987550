//! Screen geometry, shared by drawing and by the update function (scrolling, mouse hits). Pure functions of the
//! app state and the terminal size.

use super::{App, Focus, Palette, View};
use ratatui::layout::Rect;
use unicode_width::UnicodeWidthStr;

/// Below this size only a "too small" notice is drawn.
pub const MIN_W: u16 = 40;
pub const MIN_H: u16 = 12;

/// The fixed parts of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub header: Rect,
    pub input: Rect,
    /// Whether the input has a border.
    pub input_border: bool,
    pub body: Rect,
    pub status: Rect,
}

pub fn too_small(app: &App) -> bool {
    app.size.0 < MIN_W || app.size.1 < MIN_H
}

/// Whether the sentence B line is shown.
pub fn show_b(app: &App) -> bool {
    app.encdec.is_some()
        || app.pairs()
            && (!app.input.lines[1].text.is_empty()
                || (app.input.field == 1 && app.focus == Focus::Input))
}

pub fn screen(app: &App) -> Screen {
    let (w, h) = app.size;
    let lines = 1 + u16::from(show_b(app));
    let input_border = h >= 18;
    let input_h = lines + if input_border { 2 } else { 0 };
    let header = Rect::new(0, 0, w, 1.min(h));
    let input = Rect::new(0, 1.min(h), w, input_h.min(h.saturating_sub(1)));
    let status = Rect::new(0, h.saturating_sub(1), w, 1.min(h));
    let top = input.y + input.height;
    let body = Rect::new(0, top, w, h.saturating_sub(top + 1));
    Screen {
        header,
        input,
        input_border,
        body,
        status,
    }
}

/// The panes of the grid view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridPanes {
    /// The bordered grid block.
    pub grid: Rect,
    /// Cell info, token focus, heads, statistics (wide terminals).
    pub side: Option<Rect>,
    /// Positional bars and residual norms (tall and wide terminals).
    pub bottom: Option<Rect>,
    /// Two lines of cell info and statistics under the grid (narrow terminals).
    pub info: Option<Rect>,
}

pub fn grid_panes(app: &App) -> GridPanes {
    let body = screen(app).body;
    let mut rest = body;
    let mut bottom = None;
    let mut side = None;
    let mut info = None;
    if body.width >= 96 {
        // The side panel takes what the grid does not need (cells are at most 6 columns wide).
        let n = app.grid.cols.len().max(1) as u16;
        let need = (max_label_w(app) as u16).clamp(4, 18) + 3 + n.saturating_mul(6);
        let side_w = body
            .width
            .saturating_sub(need)
            .clamp(38, (body.width / 2).max(38));
        if body.height >= 34 {
            let bh = (body.height / 4).clamp(10, 16);
            bottom = Some(Rect::new(body.x, body.y + body.height - bh, body.width, bh));
            rest.height -= bh;
        }
        side = Some(Rect::new(
            rest.x + rest.width - side_w,
            rest.y,
            side_w,
            rest.height,
        ));
        rest.width -= side_w;
    } else if body.height >= 8 {
        let ih = if body.height >= 14 { 3 } else { 2 };
        info = Some(Rect::new(body.x, body.y + body.height - ih, body.width, ih));
        rest.height -= ih;
    }
    GridPanes {
        grid: rest,
        side,
        bottom,
        info,
    }
}

/// Where the cells of the grid go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridGeom {
    /// Inside the border.
    pub inner: Rect,
    /// Width of the row labels (index + token) before the cells.
    pub label_w: u16,
    /// Rows of column labels above the cells (1, or 2 when staggered).
    pub header_rows: u16,
    pub cell_w: u16,
    /// The cell area.
    pub cells: Rect,
    /// Visible rows and columns of cells (normal mode).
    pub rows: usize,
    /// Terminal rows per grid row (2 when there is room: squarer cells).
    pub row_h: u16,
    pub cols: usize,
    /// The legend row.
    pub legend: Rect,
}

/// Display width of the row label of visible row `i`: `index label`.
fn max_label_w(app: &App) -> usize {
    let Some(t) = app.trace() else { return 0 };
    let idx_w = t.n_tokens().saturating_sub(1).to_string().len();
    app.grid
        .visible
        .iter()
        .filter_map(|&i| t.tokens.get(i))
        .map(|tok| tok.label.width())
        .max()
        .unwrap_or(0)
        + idx_w
        + 1
}

pub fn grid_geom(app: &App, block: Rect) -> GridGeom {
    let inner = Rect::new(
        block.x + 1,
        block.y + 1,
        block.width.saturating_sub(2),
        block.height.saturating_sub(2),
    );
    let n = app.grid.visible.len().max(1);
    let nk = app.grid.cols.len().max(1);
    let legend = Rect::new(
        inner.x,
        inner.y + inner.height.saturating_sub(1),
        inner.width,
        1.min(inner.height),
    );
    if app.grid.zoom {
        let cells = Rect::new(
            inner.x,
            inner.y,
            inner.width,
            inner.height.saturating_sub(1),
        );
        return GridGeom {
            inner,
            label_w: 0,
            header_rows: 0,
            cell_w: 1,
            cells,
            rows: n,
            row_h: 1,
            cols: nk,
            legend,
        };
    }
    let cap = (inner.width / 4).clamp(6, 18) as usize;
    let label_w = max_label_w(app).clamp(4, cap) as u16;
    let avail_w = inner.width.saturating_sub(label_w + 1);
    let cell_w = (avail_w as usize / nk).clamp(2, 6) as u16;
    let cols = (avail_w / cell_w.max(1)) as usize;
    let keys = app.key_tokens();
    let fits_one = app
        .grid
        .cols
        .iter()
        .filter_map(|&i| keys.get(i))
        .all(|tok| tok.label.width() < cell_w as usize);
    let header_rows = if fits_one || inner.height < 8 { 1 } else { 2 };
    let avail_h = inner.height.saturating_sub(header_rows + 1);
    let row_h: u16 = if avail_h as usize >= 2 * n && cell_w >= 4 {
        2
    } else {
        1
    };
    let rows = ((avail_h / row_h) as usize).min(n);
    let cols = cols.min(nk);
    let cells = Rect::new(
        inner.x + label_w + 1,
        inner.y + header_rows,
        (cols as u16) * cell_w,
        rows as u16 * row_h,
    );
    GridGeom {
        inner,
        label_w,
        header_rows,
        cell_w,
        cells,
        rows,
        row_h,
        cols,
        legend,
    }
}

/// Rows and columns of cells visible at once in the grid view (for scrolling and paging).
pub fn grid_capacity(app: &App) -> (usize, usize) {
    if too_small(app) {
        return (1, 1);
    }
    let g = grid_geom(app, grid_panes(app).grid);
    (g.rows.max(1), g.cols.max(1))
}

/// In zoom mode: how many tokens one terminal cell covers along rows (two pixels per cell: half blocks) and
/// columns, and the size of the picture in cells.
pub fn zoom_blocks((n, nk): (usize, usize), cells: Rect, halves: bool) -> (usize, usize, u16, u16) {
    let px_h = cells.height as usize * if halves { 2 } else { 1 };
    let px_w = cells.width as usize;
    let by_r = n.div_ceil(px_h.max(1)).max(1);
    let by_c = nk.div_ceil(px_w.max(1)).max(1);
    let pic_w = nk.div_ceil(by_c) as u16;
    let pic_h = (n.div_ceil(by_r) as u16).div_ceil(if halves { 2 } else { 1 });
    (by_r, by_c, pic_w, pic_h)
}

/// The (visible row, visible column) under a screen position in the grid view.
pub fn grid_cell_at(app: &App, x: u16, y: u16) -> Option<(usize, usize)> {
    if too_small(app) || app.view != View::Grid {
        return None;
    }
    let g = grid_geom(app, grid_panes(app).grid);
    let c = g.cells;
    if x < c.x || y < c.y || x >= c.x + c.width || y >= c.y + c.height {
        return None;
    }
    let (n, nk) = (app.grid.visible.len(), app.grid.cols.len());
    if app.grid.zoom {
        let halves = app.color != Palette::Mono;
        let (by_r, by_c, _, _) = zoom_blocks((n, nk), c, halves);
        let r = (y - c.y) as usize * if halves { 2 } else { 1 } * by_r;
        let col = (x - c.x) as usize * by_c;
        return (r < n && col < nk).then_some((r, col));
    }
    let r = app.grid.scroll.0 + ((y - c.y) / g.row_h.max(1)) as usize;
    let col = app.grid.scroll.1 + ((x - c.x) / g.cell_w.max(1)) as usize;
    (r < n && col < nk).then_some((r, col))
}

/// Which input line (0 = A, 1 = B) a click at a screen position edits: anywhere in the sentence box counts (the
/// border and the title too), the nearest line wins.
pub fn input_field_at(app: &App, x: u16, y: u16) -> Option<usize> {
    if too_small(app) {
        return None;
    }
    let s = screen(app);
    let r = s.input;
    if x >= r.x + r.width || y < r.y || y >= r.y + r.height {
        return None;
    }
    let top = r.y + u16::from(s.input_border);
    let lines = 1 + u16::from(show_b(app));
    Some(y.saturating_sub(top).min(lines - 1) as usize)
}

/// Geometry of the overview: thumbnails of `pic_w × pic_h` cells every `step_w × step_h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverviewGeom {
    pub block: Rect,
    /// Top-left of the first thumbnail.
    pub origin: (u16, u16),
    pub pic_w: u16,
    pub pic_h: u16,
    pub step_w: u16,
    pub step_h: u16,
    /// Layers visible at once.
    pub layers: usize,
    /// Heads visible at once.
    pub heads: usize,
    /// The line(s) under the thumbnails for the selected head's summary.
    pub info: Rect,
}

pub fn overview_geom(app: &App) -> OverviewGeom {
    let body = screen(app).body;
    let inner = Rect::new(
        body.x + 1,
        body.y + 1,
        body.width.saturating_sub(2),
        body.height.saturating_sub(2),
    );
    let info_h = 2.min(inner.height);
    let info = Rect::new(
        inner.x,
        inner.y + inner.height - info_h,
        inner.width,
        info_h,
    );
    let nl = app.n_layers().max(1) as u16;
    let nh = app.n_heads().max(1) as u16;
    let label_w = 4;
    let avail_w = inner.width.saturating_sub(label_w);
    let avail_h = inner.height.saturating_sub(info_h + 1);
    let avail_h = avail_h.saturating_sub(1);
    let step_w = (avail_w / nh).max(5);
    let step_h = (avail_h / nl).max(3);
    // Thumbnails square in pixels: a cell is one half-block pixel wide and two tall. They take the width; when that
    // makes them too tall for every layer, the layers scroll, but at least four (or all) stay on screen.
    let by_width = (step_w - 1) / 2;
    let all_fit = step_h - 1;
    let few_fit = (avail_h / nl.min(4)).saturating_sub(1);
    // No bigger than the matrix: one half-block pixel per token each way.
    let by_tokens = (app.grid.visible.len().max(1) as u16).div_ceil(2);
    let pic_h = by_width.min(all_fit.max(few_fit)).min(by_tokens).max(2);
    let pic_w = 2 * pic_h;
    let step_w = pic_w + 1;
    let step_h = pic_h + 1;
    OverviewGeom {
        block: body,
        origin: (inner.x + label_w, inner.y + 2),
        pic_w,
        pic_h,
        step_w,
        step_h,
        layers: ((avail_h / step_h) as usize).clamp(1, nl as usize),
        heads: ((avail_w / step_w) as usize).clamp(1, nh as usize),
        info,
    }
}

/// How many dimensions the positional heatmap shows at once (a fast pan moves this far).
pub fn positional_page(app: &App) -> usize {
    let inner_w = screen(app).body.width.saturating_sub(2);
    let label_w = 12u16.min(inner_w / 3);
    inner_w.saturating_sub(label_w + 1) as usize
}

/// How many layers of thumbnails fit.
pub fn overview_layers(app: &App) -> usize {
    if too_small(app) {
        return 1;
    }
    overview_geom(app).layers
}

/// The (layer, head) thumbnail under a screen position.
pub fn overview_cell_at(app: &App, x: u16, y: u16) -> Option<(usize, usize)> {
    if too_small(app) {
        return None;
    }
    let g = overview_geom(app);
    if x < g.origin.0 || y < g.origin.1 {
        return None;
    }
    let h = ((x - g.origin.0) / g.step_w) as usize;
    let l = app.ov_scroll + ((y - g.origin.1) / g.step_h) as usize;
    let rel_l = l - app.ov_scroll;
    (h < g.heads.min(app.n_heads()) && rel_l < g.layers && l < app.n_layers()).then_some((l, h))
}
