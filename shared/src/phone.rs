//! Phone numbers in E.164 (`+` and 7 to 15 digits, no leading zero). Numbers are normalised when a call is
//! written and when a filter asks for one, so `+1 (415) 555-0100`, `0014155550100` and `+14155550100` are
//! the same number. A number written in a national format (no country code) cannot be placed and is not
//! guessed at: [`crate::validate`] refuses it, and one stored before that never matches a `phoneNumber`
//! filter.
//!
//! Written by hand rather than with a full numbering-plan library: only the E.164 shape matters here, and
//! such a library's metadata would add megabytes to every function.

/// The E.164 form of `input`, or `None` when it is not an international number.
pub fn e164(input: &str) -> Option<String> {
    let trimmed = input.trim();
    let trimmed = trimmed.strip_prefix("tel:").unwrap_or(trimmed);
    let mut digits = String::with_capacity(16);
    let mut plus = false;
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '+' if i == 0 => plus = true,
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return None,
        }
    }
    if !plus {
        // The international call prefix most of the world dials.
        digits = digits.strip_prefix("00")?.to_owned();
    }
    let ok = (7..=15).contains(&digits.len()) && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn common_spellings_become_one_number() {
        for s in [
            "+14155550100",
            "+1 (415) 555-0100",
            "0014155550100",
            " +1.415.555.0100 ",
            "tel:+14155550100",
        ] {
            assert_eq!(e164(s).as_deref(), Some("+14155550100"), "{s:?}");
        }
        assert_eq!(e164("+90 555 123 45 67").as_deref(), Some("+905551234567"));
    }

    #[test]
    fn national_short_long_and_odd_numbers_are_refused() {
        for s in [
            "4155550100",
            "+0155550100",
            "+12345",
            "+1234567890123456",
            "+1 415 555 01OO",
            "",
            "+",
            "++1415",
        ] {
            assert_eq!(e164(s), None, "{s:?}");
        }
    }
}
