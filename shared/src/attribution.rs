//! The attribution model, shared by the SDK (which touch a signup carries)
//! and the edge (whether a referral link still counts): first or last touch,
//! and the window after which a touch no longer counts.

/// Whether a touch at `at` still counts at `now`: not in the future, and at
/// most `window_ms` ago.
pub fn within_window(at: i64, now: i64, window_ms: i64) -> bool {
    at <= now && now - at <= window_ms
}

/// One of the two touches the SDK keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    First,
    Last,
}

/// The touch a signup carries: the one the model names (`first_touch`, else
/// the last) when it holds a referral link, else the other one when it does;
/// `None` when neither does. A touch that left the window is none here.
pub fn chosen(first_has_link: bool, last_has_link: bool, first_touch: bool) -> Option<Touch> {
    let (preferred, other) = match first_touch {
        true => ((Touch::First, first_has_link), (Touch::Last, last_has_link)),
        false => ((Touch::Last, last_has_link), (Touch::First, first_has_link)),
    };
    [preferred, other].into_iter().find(|(_, has)| *has).map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_counts_within_its_window_and_never_from_the_future() {
        assert!(within_window(1_000, 1_000, 0));
        assert!(within_window(0, 10, 10));
        assert!(!within_window(0, 11, 10), "past the window");
        assert!(!within_window(11, 10, 100), "from the future");
    }

    #[test]
    fn the_model_picks_its_touch_else_the_other() {
        assert_eq!(chosen(true, true, false), Some(Touch::Last));
        assert_eq!(chosen(true, true, true), Some(Touch::First));
        assert_eq!(
            chosen(true, false, false),
            Some(Touch::First),
            "the other when the last has no link"
        );
        assert_eq!(chosen(false, true, true), Some(Touch::Last));
        assert_eq!(chosen(false, false, true), None);
    }
}
