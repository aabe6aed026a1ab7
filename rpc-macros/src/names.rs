//! Names: a method's variant (CamelCase, spelt as tarpc spells it, since serde formats that name
//! variants carry them), a trait's default service name (snake_case), and the rule a service
//! name must follow.

/// The longest service name. The same as `rpc_core::MAX_SERVICE_NAME_LEN`, which the generated
/// code checks against this crate's answer, so the two cannot drift apart unnoticed.
pub const MAX_SERVICE_NAME_LEN: usize = 64;

/// `add_note` → `AddNote`, exactly as tarpc-plugins 0.15 spells it: each `_` dropped, the letter
/// after it upper-cased and every other letter lower-cased (`aBc_dEf` → `AbcDef`).
pub fn snake_to_camel(ident: &str) -> String {
    let mut camel = String::with_capacity(ident.len());
    let mut after_underscore = true;
    for c in ident.chars() {
        match c {
            '_' => after_underscore = true,
            c if after_underscore => {
                camel.extend(c.to_uppercase());
                after_underscore = false;
            }
            c => camel.extend(c.to_lowercase()),
        }
    }
    camel
}

/// `Notes` → `notes`, `KeyValue` → `key_value`, `HTTPCache` → `http_cache`: a word starts at an
/// upper-case letter after a lower-case letter or digit, or before a lower-case letter that
/// follows an upper-case one.
pub fn snake_case(ident: &str) -> String {
    let chars: Vec<char> = ident.chars().collect();
    let mut snake = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let before = chars[i - 1];
            let after = chars.get(i + 1).copied();
            let starts_word = before.is_lowercase()
                || before.is_ascii_digit()
                || (before.is_uppercase() && after.is_some_and(char::is_lowercase));
            if starts_word && !snake.ends_with('_') {
                snake.push('_');
            }
        }
        snake.extend(c.to_lowercase());
    }
    snake
}

/// Checks a service name against the rule `rpc_core::is_valid_service_name` applies; the error
/// states the rule.
pub fn check_service_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_SERVICE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid service name {name:?}: a service name is 1 to {MAX_SERVICE_NAME_LEN} characters from a-z A-Z 0-9 _ - . (set one with #[rpc_core::service(name = \"...\")])"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_spelt_as_tarpc_spells_them() {
        assert_eq!(snake_to_camel("abc_def"), "AbcDef");
        assert_eq!(snake_to_camel("abc_def_"), "AbcDef");
        assert_eq!(snake_to_camel("_abc_def"), "AbcDef");
        assert_eq!(snake_to_camel("abc__def"), "AbcDef");
        assert_eq!(snake_to_camel("aBc_dEf"), "AbcDef");
    }

    #[test]
    fn default_names_are_the_trait_in_snake_case() {
        assert_eq!(snake_case("Notes"), "notes");
        assert_eq!(snake_case("KeyValue"), "key_value");
        assert_eq!(snake_case("HTTPCache"), "http_cache");
        assert_eq!(snake_case("Notes2Go"), "notes2_go");
        assert_eq!(snake_case("Kv"), "kv");
    }

    #[test]
    fn service_names_are_checked_at_the_length_limit() {
        assert!(check_service_name(&"n".repeat(MAX_SERVICE_NAME_LEN - 1)).is_ok());
        assert!(check_service_name(&"n".repeat(MAX_SERVICE_NAME_LEN)).is_ok());
        assert!(check_service_name(&"n".repeat(MAX_SERVICE_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn service_names_take_letters_digits_and_three_marks() {
        for good in ["kv", "notes_v2", "my-notes", "notes.v2"] {
            assert!(check_service_name(good).is_ok(), "{good}");
        }
        for bad in ["", "bad name!", "a/b", "ключ"] {
            let err = check_service_name(bad).expect_err(bad);
            assert!(err.contains("1 to 64 characters"), "{err}");
        }
    }
}
