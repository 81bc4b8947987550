//! Colour scales for attention weights, shared by `attn show` and the TUI. Pure functions, no terminal I/O.

/// Control points of a perceptually ordered dark-blue → teal → yellow scale (viridis-like).
const STOPS: [(f32, [u8; 3]); 6] = [
    (0.0, [18, 14, 40]),
    (0.2, [59, 44, 120]),
    (0.4, [44, 105, 142]),
    (0.6, [33, 150, 135]),
    (0.8, [110, 200, 90]),
    (1.0, [253, 231, 37]),
];

/// The colour of a weight `t` in [0, 1] (clamped; NaN counts as 0).
pub fn rgb(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    for w in STOPS.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if t <= b {
            let f = (t - a) / (b - a);
            let mix = |i: usize| (ca[i] as f32 + (cb[i] as f32 - ca[i] as f32) * f).round() as u8;
            return [mix(0), mix(1), mix(2)];
        }
    }
    STOPS[STOPS.len() - 1].1
}

/// The nearest xterm-256 colour-cube index of an RGB colour.
pub fn ansi256(c: [u8; 3]) -> u8 {
    let q = |v: u8| -> u8 {
        if v < 48 {
            0
        } else if v < 115 {
            1
        } else {
            (v - 35) / 40
        }
    };
    16 + 36 * q(c[0]) + 6 * q(c[1]) + q(c[2])
}

/// Black or white, whichever reads better on `bg`.
pub fn text_on(bg: [u8; 3]) -> [u8; 3] {
    let lum = 0.2126 * bg[0] as f32 + 0.7152 * bg[1] as f32 + 0.0722 * bg[2] as f32;
    if lum > 110.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// A shade character for colourless terminals: ' ', ░, ▒, ▓, █ by weight.
pub fn shade(t: f32) -> char {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    match t {
        t if t < 0.05 => ' ',
        t if t < 0.25 => '░',
        t if t < 0.5 => '▒',
        t if t < 0.75 => '▓',
        _ => '█',
    }
}

/// How colours reach the terminal: the one colour policy of `attn show` and the explorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Palette {
    /// 24-bit colour.
    TrueColor,
    /// The xterm-256 colour cube.
    Ansi256,
    /// No colour at all (NO_COLOR, `--color never`): digits, shade characters ░▒▓█ and bold/reverse.
    Mono,
}

impl Palette {
    /// Pick the palette: `force` is `Some(true)` for `--color always`, `Some(false)` for `never`, `None` for auto
    /// (colour when the output is a terminal and NO_COLOR is unset). The environment is read here and nowhere else:
    /// COLORTERM=truecolor|24bit picks 24-bit colour over the 256-colour cube.
    pub fn choose(force: Option<bool>, is_tty: bool) -> Palette {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let rich = match env("COLORTERM").and_then(|v| v.into_string().ok()) {
            Some(v) if v.contains("truecolor") || v.contains("24bit") => Palette::TrueColor,
            _ => Palette::Ansi256,
        };
        match force {
            Some(true) => rich,
            Some(false) => Palette::Mono,
            None if is_tty && env("NO_COLOR").is_none() => rich,
            None => Palette::Mono,
        }
    }
    /// The next palette (the explorer's `c` key).
    pub fn next(self) -> Self {
        match self {
            Palette::TrueColor => Palette::Ansi256,
            Palette::Ansi256 => Palette::Mono,
            Palette::Mono => Palette::TrueColor,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Palette::TrueColor => "true colour",
            Palette::Ansi256 => "256 colours",
            Palette::Mono => "no colour (shades)",
        }
    }
}

/// How a weight maps onto [0, 1] before colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// The weight itself.
    #[default]
    Linear,
    /// log10 of the weight over four decades (1e-4 → 0, 1 → 1), so small weights stay visible next to sinks.
    Log,
    /// The weight divided by its row's maximum.
    RowMax,
}

impl Scale {
    pub fn next(self) -> Self {
        match self {
            Scale::Linear => Scale::Log,
            Scale::Log => Scale::RowMax,
            Scale::RowMax => Scale::Linear,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
            Scale::RowMax => "row-max",
        }
    }
    /// Map weight `w` (whose row maximum is `row_max`) onto [0, 1].
    pub fn apply(self, w: f32, row_max: f32) -> f32 {
        match self {
            Scale::Linear => w,
            Scale::Log => {
                if w <= 0.0 {
                    0.0
                } else {
                    ((w.log10() + 4.0) / 4.0).clamp(0.0, 1.0)
                }
            }
            Scale::RowMax => {
                if row_max > 0.0 {
                    w / row_max
                } else {
                    0.0
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_monotone_brightness() {
        assert_eq!(rgb(0.0), [18, 14, 40]);
        assert_eq!(rgb(1.0), [253, 231, 37]);
        assert_eq!(rgb(2.0), rgb(1.0));
        assert_eq!(rgb(f32::NAN), rgb(0.0));
        assert_eq!(ansi256([0, 0, 0]), 16);
        assert_eq!(ansi256([255, 255, 255]), 231);
        assert_eq!(shade(0.0), ' ');
        assert_eq!(shade(1.0), '█');
    }

    #[test]
    fn scales() {
        assert_eq!(Scale::Log.apply(1.0, 1.0), 1.0);
        assert_eq!(Scale::Log.apply(1e-4, 1.0), 0.0);
        assert!((Scale::Log.apply(0.01, 1.0) - 0.5).abs() < 1e-6);
        assert_eq!(Scale::RowMax.apply(0.2, 0.4), 0.5);
        assert_eq!(Scale::Linear.next().next().next(), Scale::Linear);
    }

    #[test]
    fn forced_palettes_ignore_the_terminal() {
        assert_eq!(Palette::choose(Some(false), true), Palette::Mono);
        assert_ne!(Palette::choose(Some(true), false), Palette::Mono);
        assert_eq!(Palette::choose(None, false), Palette::Mono);
        assert_eq!(Palette::Mono.next().next().next(), Palette::Mono);
    }
}
