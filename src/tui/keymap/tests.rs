//! The keymap's own checks.

use super::*;

fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
    KeyEvent::new(c, m)
}

#[test]
fn views_see_their_own_keys_first() {
    let right = key(K::Right, N);
    assert_eq!(action(Ctx::Grid, &right), Some(A::NextHead));
    assert_eq!(action(Ctx::Overview, &right), Some(A::Right));
    assert_eq!(action(Ctx::Positions, &right), Some(A::PanRight));
    assert_eq!(action(Ctx::Grid, &key(K::Char('D'), S)), Some(A::DumpAll));
    assert_eq!(
        action(Ctx::Input, &key(K::Char('u'), C)),
        Some(A::KillStart)
    );
    assert_eq!(action(Ctx::Input, &key(K::Char('u'), N)), None);
    assert_eq!(action(Ctx::Norms, &key(K::Char('7'), N)), Some(A::Digit));
    // The explanation views: their own keys, then the grid's, then the explorer's.
    assert_eq!(
        action(Ctx::Explain, &key(K::Char(']'), N)),
        Some(A::DimsRight)
    );
    assert_eq!(action(Ctx::Explain, &key(K::Char('l'), N)), Some(A::Right));
    assert_eq!(action(Ctx::Explain, &key(K::Char('E'), S)), Some(A::Weight));
    assert_eq!(action(Ctx::Norms, &key(K::Char('o'), N)), Some(A::NormStat));
    assert_eq!(action(Ctx::Grid, &key(K::Char('o'), N)), Some(A::Writes));
}

#[test]
fn no_key_means_two_things_in_one_place() {
    for c in ORDER {
        let mut seen: Vec<Key> = vec![];
        let own: Vec<&Row> = rows()
            .filter(|r| r.ctx == c || (c != Ctx::Input && r.ctx == Ctx::Explorer))
            .collect();
        for r in own.iter().filter(|r| r.ctx == c) {
            for (k, _) in r.keys {
                assert!(!seen.contains(k), "{k:?} twice in {c:?}");
                seen.push(*k);
            }
        }
    }
}

#[test]
fn labels_read_like_keys() {
    let lines = help_lines();
    assert!(lines.iter().any(|(k, _)| k.as_deref() == Some("0-9")));
    assert!(
        lines
            .iter()
            .any(|(k, _)| k.as_deref() == Some("Ctrl-U Ctrl-K"))
    );
    assert!(lines.iter().any(|(k, _)| k.as_deref() == Some("x")));
    assert!(markdown().contains("| `d` |"));
}
