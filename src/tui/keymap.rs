//! The one keymap: every key of the explorer is a row here (where it works, which keys, what it does). Key handling
//! looks keys up here, the help screen is drawn from it and README's key table is generated from it (a test checks
//! that README holds exactly [`markdown`]). There is no second, hand-kept table.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a key works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    /// The sentence line.
    Input,
    /// Every view of the explorer.
    Explorer,
    /// The attention grid.
    Grid,
    /// The overview of every layer × head (`m`).
    Overview,
    /// The positional encodings (`p`).
    Positions,
    /// The residual-stream norms (`n`).
    Norms,
    /// The logit lens (`e`).
    Lens,
    /// The explanation views (`E o b B`); other keys work as in the grid.
    Explain,
}

impl Ctx {
    pub fn title(self) -> &'static str {
        match self {
            Ctx::Input => "Input (the sentence line)",
            Ctx::Explorer => "Explorer (every view)",
            Ctx::Grid => "Attention grid",
            Ctx::Overview => "Overview (m), sweep (S), attribution (C)",
            Ctx::Positions => "Positions (p)",
            Ctx::Norms => "Residual norms (n)",
            Ctx::Lens => "Logit lens (e)",
            Ctx::Explain => "Explanation views (E o b B; other keys as in the grid)",
        }
    }
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    // Input.
    Type,
    Run,
    ToExplorer,
    FieldB,
    FieldA,
    TextLeft,
    TextRight,
    TextHome,
    TextEnd,
    Backspace,
    Delete,
    KillStart,
    KillEnd,
    DeleteWord,
    // Explorer.
    Quit,
    Help,
    EditInput,
    Back,
    Overview,
    Positions,
    Norms,
    Lens,
    Weight,
    Writes,
    Embedding,
    Walk,
    ValueWeighted,
    Scale,
    HideSpecial,
    Mean,
    Zoom,
    Numbers,
    Colors,
    DumpView,
    DumpAll,
    /// Encoder–decoders: the next attention kind.
    Kind,
    /// Encoder–decoders: fill the target by greedy decoding and run.
    Decode,
    Digit,
    GoLayer,
    // Moving.
    NextHead,
    PrevHead,
    NextLayer,
    PrevLayer,
    Left,
    Right,
    Up,
    Down,
    PageUp,
    PageDown,
    PageLeft,
    PageRight,
    First,
    Last,
    Open,
    PanLeft,
    PanRight,
    FastPanLeft,
    FastPanRight,
    NormStat,
    LogBars,
    ScrollDown,
    ScrollUp,
    DimsLeft,
    DimsRight,
    ThroughWo,
    // What a head does (app/interp.rs).
    Ablate,
    AblateMode,
    FlipAblated,
    ClearAblation,
    Sweep,
    Rollout,
    Attribution,
    GenNext,
    GenBack,
    TempDown,
    TempUp,
    TopKDown,
    TopKUp,
    /// Documentation only: the terminal's own selection.
    Select,
}

/// A key: a code and the modifiers that must be held (Shift is ignored for characters: `D` is Shift-d).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub KeyCode, pub KeyModifiers);

const N: KeyModifiers = KeyModifiers::NONE;
const C: KeyModifiers = KeyModifiers::CONTROL;
const S: KeyModifiers = KeyModifiers::SHIFT;

const fn k(c: KeyCode) -> Key {
    Key(c, N)
}
const fn ch(c: char) -> Key {
    Key(KeyCode::Char(c), N)
}
const fn ctrl(c: char) -> Key {
    Key(KeyCode::Char(c), C)
}

/// One line of help: where, which keys do what, and the text.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub ctx: Ctx,
    pub keys: &'static [(Key, Action)],
    pub help: &'static str,
}

const fn row(ctx: Ctx, keys: &'static [(Key, Action)], help: &'static str) -> Row {
    Row { ctx, keys, help }
}

use Action as A;
use Ctx::{Explain, Explorer, Grid, Input, Lens, Norms, Overview, Positions};
use KeyCode as K;

/// j k ↓ ↑: the previous / next row of a list view.
const VERTICAL: [(Key, Action); 4] = [
    (ch('j'), A::Down),
    (ch('k'), A::Up),
    (k(K::Down), A::Down),
    (k(K::Up), A::Up),
];

const DIGITS: [(Key, Action); 10] = [
    (ch('0'), A::Digit),
    (ch('1'), A::Digit),
    (ch('2'), A::Digit),
    (ch('3'), A::Digit),
    (ch('4'), A::Digit),
    (ch('5'), A::Digit),
    (ch('6'), A::Digit),
    (ch('7'), A::Digit),
    (ch('8'), A::Digit),
    (ch('9'), A::Digit),
];

/// Every key. A table, aligned by hand (one row, or a row and its help, per line).
#[rustfmt::skip]
pub const ROWS: &[Row] = &[
    row(Input, &[], "edit the sentence; the model re-runs as you pause"),
    row(Input, &[(k(K::Enter), A::Run)], "run now and go to the explorer"),
    row(Input, &[(k(K::Left), A::TextLeft), (k(K::Right), A::TextRight),
                 (k(K::Home), A::TextHome), (k(K::End), A::TextEnd)],
        "move the text cursor"),
    row(Input, &[(ctrl('a'), A::TextHome), (ctrl('e'), A::TextEnd)], "start / end of the line"),
    row(Input, &[(k(K::Backspace), A::Backspace), (k(K::Delete), A::Delete)],
        "delete before / after the cursor"),
    row(Input, &[(ctrl('u'), A::KillStart), (ctrl('k'), A::KillEnd)],
        "delete to the start / end of the line"),
    row(Input, &[(ctrl('w'), A::DeleteWord), (ctrl('h'), A::DeleteWord)],
        "delete the word before the cursor"),
    row(Input, &[(k(K::Down), A::FieldB), (k(K::Up), A::FieldA)],
        "sentence B / back to A (sentence pairs); encoder–decoders: target / source"),
    row(Input, &[(ctrl('t'), A::Decode)], "encoder–decoders: decode the target greedily and run"),
    row(Input, &[(k(K::Tab), A::ToExplorer), (k(K::BackTab), A::ToExplorer),
                 (k(K::Esc), A::ToExplorer)],
        "go to the explorer"),
    row(Grid, &[(k(K::Left), A::PrevHead), (k(K::Right), A::NextHead)],
        "previous / next head (wraps)"),
    row(Grid, &[(k(K::Up), A::PrevLayer), (k(K::Down), A::NextLayer)],
        "previous / next layer (wraps)"),
    row(Explorer, &DIGITS, "jump to head N (type two digits for 10+)"),
    row(Explorer, &[(ch('g'), A::GoLayer)], "then digits: jump to layer N (any other key cancels)"),
    row(Grid, &[(ch('h'), A::Left), (ch('j'), A::Down), (ch('k'), A::Up), (ch('l'), A::Right)],
        "move the cell cursor (also: click a cell)"),
    row(Grid, &[(k(K::PageUp), A::PageUp), (k(K::PageDown), A::PageDown),
                (ch('['), A::PageLeft), (ch(']'), A::PageRight)],
        "page rows / columns of a long grid"),
    row(Grid, &[(k(K::Home), A::First), (k(K::End), A::Last)], "first / last cell"),
    row(Explorer, &[(ch('a'), A::Mean)], "mean over the layer's heads on/off"),
    row(Explorer, &[(ch('s'), A::Scale)], "colour scale: linear → log → row max"),
    row(Explorer, &[(ch('x'), A::HideSpecial)],
        "hide special tokens ([CLS], [SEP], BOS; else the first token, the sink) and renormalise rows"),
    row(Grid, &[(ch('z'), A::Zoom)], "zoom out: the whole matrix in blocks"),
    row(Grid, &[(ch('w'), A::Numbers)], "weights as numbers in the cells on/off"),
    row(Explorer, &[(ch('c'), A::Colors)], "colours: true colour → 256 → none (shades)"),
    row(Explorer, &[(ch('m'), A::Overview)], "overview: every layer × head (toggles)"),
    row(Explorer, &[(ch('p'), A::Positions)], "positional encodings (toggles)"),
    row(Explorer, &[(ch('n'), A::Norms)], "residual-stream norms per layer (toggles)"),
    row(Explorer, &[(ch('e'), A::Lens)], "logit lens at the cursor's position (decoders)"),
    row(Explorer, &[(ch('E'), A::Weight)], "how the weight under the cursor is computed (toggles)"),
    row(Explorer, &[(ch('o'), A::Writes)],
        "what the head writes for the cursor's query: Σ α·v, through W_O (toggles)"),
    row(Explorer, &[(ch('v'), A::ValueWeighted)],
        "value-weighted grid ‖α·v W_O‖ per key (Kobayashi et al. 2020) on/off"),
    row(Explorer, &[(ch('b'), A::Embedding)],
        "the cursor's token embedding, part by part (toggles)"),
    row(Explorer, &[(ch('B'), A::Walk)], "the cursor's token through the selected block (toggles)"),
    row(Explorer, &[(ch('d'), A::DumpView)],
        "dump what is on screen (.npy + .csv): the head, the positions or the norms"),
    row(Explorer, &[(ch('D'), A::DumpAll)], "dump the whole trace (attn dump format)"),
    row(Explorer, &[(ch('t'), A::Kind)],
        "encoder–decoders: encoder self → decoder self → cross (target × source)"),
    row(Explorer, &[(ch('T'), A::Decode)], "encoder–decoders: decode the target greedily and run"),
    row(Explorer, &[(k(K::Tab), A::EditInput), (k(K::BackTab), A::EditInput),
                    (ch('i'), A::EditInput), (ch('/'), A::EditInput)],
        "edit the sentence"),
    row(Explorer, &[(k(K::Esc), A::Back)], "back to the grid / to the input"),
    row(Explorer, &[(ch('?'), A::Help), (k(K::F(1)), A::Help)],
        "this help (F1 also from the input)"),
    row(Explorer, &[(ch('q'), A::Quit), (ctrl('c'), A::Quit)], "quit (Ctrl-C also from the input)"),
    row(Explorer, &[(Key(K::Null, S), A::Select)],
        "select text with the terminal (the mouse is the explorer's)"),
    row(Overview, &[(k(K::Left), A::Left), (k(K::Right), A::Right), (k(K::Up), A::Up), (k(K::Down), A::Down),
                    (ch('h'), A::Left), (ch('j'), A::Down), (ch('k'), A::Up), (ch('l'), A::Right)],
        "select a head (the header, d and the grid follow)"),
    row(Overview, &[(k(K::Enter), A::Open)],
        "open the selected head in the grid (or click it twice)"),
    row(Positions, &VERTICAL, "previous / next position (T5's relative bias: head)"),
    row(Positions, &[(ch('h'), A::PanLeft), (ch('l'), A::PanRight),
                     (k(K::Left), A::PanLeft), (k(K::Right), A::PanRight)],
        "pan the dimensions"),
    row(Positions, &[(ch('H'), A::FastPanLeft), (ch('L'), A::FastPanRight),
                     (k(K::PageUp), A::FastPanLeft), (k(K::PageDown), A::FastPanRight)],
        "pan a screen of dimensions at a time"),
    row(Norms, &VERTICAL, "previous / next token"),
    row(Norms, &[(ch('o'), A::NormStat)],
        "the \"all tokens\" column: mean → median → mean without the first token"),
    row(Norms, &[(ch('b'), A::LogBars)], "bars: linear ↔ log scale"),
    row(Lens, &VERTICAL, "previous / next position"),
    row(Explain, &[(ch('J'), A::ScrollDown), (ch('K'), A::ScrollUp),
                   (k(K::PageDown), A::ScrollDown), (k(K::PageUp), A::ScrollUp)],
        "scroll the rows"),
    row(Explain, &[(ch('['), A::DimsLeft), (ch(']'), A::DimsRight)], "pan the dimensions"),
    row(Explain, &[(ch('t'), A::ThroughWo)], "head output: before / through W_O"),
];

/// Every row: [`ROWS`], then the ablation, sweep, attribution and generation keys ([`interp::ROWS`]).
pub fn rows() -> impl Iterator<Item = &'static Row> {
    ROWS.iter().chain(interp::ROWS)
}

/// The action of a key pressed in `ctx` (the view's own keys first, then the explorer's).
pub fn action(ctx: Ctx, key: &KeyEvent) -> Option<Action> {
    let ctxs: &[Ctx] = match ctx {
        Ctx::Input => &[Ctx::Input],
        Ctx::Explorer => &[Ctx::Explorer],
        Ctx::Explain => &[Ctx::Explain, Ctx::Grid, Ctx::Explorer],
        c => &[c, Ctx::Explorer],
    };
    for c in ctxs {
        for r in rows().filter(|r| r.ctx == *c) {
            for (k, a) in r.keys {
                if matches(k, key) {
                    return Some(*a);
                }
            }
        }
    }
    None
}

fn matches(k: &Key, e: &KeyEvent) -> bool {
    let mods = e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
    let mods = match e.code {
        // Shift is how an upper-case letter or a symbol is typed, not a modifier of it.
        KeyCode::Char(_) | KeyCode::BackTab => mods - KeyModifiers::SHIFT,
        _ => mods,
    };
    k.0 == e.code && k.1 == mods
}

mod help;
mod interp;
pub use help::{ORDER, help_lines, keys_label, markdown};

#[cfg(test)]
mod tests;
