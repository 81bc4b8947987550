//! Issue 8 item 9 in the explorer: a trace with NaN/Inf shows a warning in the status line naming where they first
//! appear, and its non-finite attention cells are drawn as `NaN` / `∞` in the error colour, not as 0.

use attn::tui::app::{App, Focus, Palette, Summary};
use attn::tui::synthetic::{self, Kind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

fn app_with(trace: attn::trace::Trace, color: Palette) -> App {
    let mut app = App::new(synthetic::info(Kind::Gpt2), "a b c", None, color, (100, 30));
    app.data = Some(Summary::new(trace).unwrap());
    app.focus = Focus::Explorer;
    app.grid.cur = (0, 0);
    app.refresh();
    app
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
    t.draw(|f| attn::tui::ui::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..30)
        .map(|y| {
            (0..100)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn non_finite_values_are_warned_about_and_drawn_distinctly() {
    let clean = synthetic::trace(Kind::Gpt2, &["a", "b", "c"]);
    let s = screen(&app_with(clean.clone(), Palette::Mono));
    assert!(!s.contains("non-finite") && !s.contains("NaN"), "{s}");

    let mut bad = clean;
    if let Some(a) = bad.layers[0].attention.as_mut() {
        a[[0, 2, 0]] = f32::NAN;
        a[[0, 2, 1]] = f32::INFINITY;
    }
    for color in [Palette::Mono, Palette::TrueColor] {
        let app = app_with(bad.clone(), color);
        let s = screen(&app);
        assert!(
            s.contains("⚠ non-finite values (NaN/Inf) first appear in layer 0, attention"),
            "{s}"
        );
        let area = Rect::new(0, 0, 30, 7);
        let mut buf = Buffer::empty(area);
        attn::tui::ui::grid::render(&app, area, &mut buf);
        let row: String = (0..30).map(|x| buf[(x, 4)].symbol()).collect();
        assert!(row.contains("NaN") && row.contains('∞'), "{row:?}");
    }
}
