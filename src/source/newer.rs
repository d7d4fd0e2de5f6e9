//! SQL that a newer PostgreSQL major accepts and an older one refuses: when a statement fails
//! with a syntax error (or names a function the server does not have), the hint says which
//! major introduced what the statement seems to use, so that the project checks on the major
//! it deploys to (`--pg-version`, `[server] version`). Reads text only; a guess, worded as one.

use std::sync::LazyLock;

use regex::Regex;

/// (the major that introduced it, what it is in words, how it looks in a statement).
const FEATURES: &[(u32, &str, &str)] = &[
    (
        16,
        "non-decimal integer literals (0x, 0o, 0b)",
        r"(?i)\b0[xob][0-9a-f_]+\b",
    ),
    (16, "underscores in numeric literals", r"\b\d+_\d"),
    (16, "the IS JSON predicate", r"(?i)\bIS\s+(NOT\s+)?JSON\b"),
    (
        16,
        "SQL/JSON constructors with KEY ... VALUE",
        r"(?i)\bJSON_OBJECT(AGG)?\s*\([^)]*\b(KEY|VALUE)\b",
    ),
    (16, "SYSTEM_USER", r"(?i)\bSYSTEM_USER\b"),
    (16, "any_value()", r"(?i)\bany_value\s*\("),
    (17, "JSON_TABLE", r"(?i)\bJSON_TABLE\s*\("),
    (
        17,
        "JSON_QUERY, JSON_VALUE and JSON_EXISTS",
        r"(?i)\bJSON_(QUERY|VALUE|EXISTS)\s*\(",
    ),
    (
        17,
        "ALTER COLUMN ... SET EXPRESSION",
        r"(?i)\bSET\s+EXPRESSION\s+AS\b",
    ),
    (
        17,
        "MERGE ... WHEN NOT MATCHED BY SOURCE",
        r"(?i)\bNOT\s+MATCHED\s+BY\s+(SOURCE|TARGET)\b",
    ),
    (
        17,
        "MERGE ... RETURNING",
        r"(?is)^\s*(WITH\b.*)?\bMERGE\b.*\bRETURNING\b",
    ),
    (
        18,
        "virtual generated columns",
        r"(?i)\bGENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*VIRTUAL\b",
    ),
    (
        18,
        "temporal keys (WITHOUT OVERLAPS, PERIOD)",
        r"(?i)\bWITHOUT\s+OVERLAPS\b|\bPERIOD\s+\w+\s*\)",
    ),
    (18, "NOT ENFORCED constraints", r"(?i)\bNOT\s+ENFORCED\b"),
    (
        18,
        "OLD and NEW in RETURNING",
        r"(?is)\bRETURNING\b.*\b(OLD|NEW)\s*\.",
    ),
    (
        18,
        "NOT NULL constraints added NOT VALID",
        r"(?is)\bNOT\s+NULL\b.*\bNOT\s+VALID\b",
    ),
    (18, "uuidv7()", r"(?i)\buuidv7\s*\("),
];

static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    FEATURES
        .iter()
        .map(|(_, _, pattern)| Regex::new(pattern).expect("the patterns are valid"))
        .collect()
});

/// The hint for `statement`, which failed with `sqlstate` on a server of major `major`: the
/// newest-introduced feature it seems to use that `major` lacks. Only syntax errors (42601)
/// and unknown functions (42883) get one.
pub fn hint(statement: &str, sqlstate: &str, major: u32) -> Option<String> {
    if !matches!(sqlstate, "42601" | "42883") {
        return None;
    }
    let (since, what) = FEATURES
        .iter()
        .zip(PATTERNS.iter())
        .filter(|((since, _, _), re)| *since > major && re.is_match(statement))
        .map(|((since, what, _), _)| (*since, *what))
        .max_by_key(|(since, _)| *since)?;
    Some(format!(
        "migproof: the statement seems to use {what}, which PostgreSQL {since} accepts and \
         this server (PostgreSQL {major}) does not; if the project deploys to {since} or \
         later, check on it: --pg-version {since}, or version = {since} under [server] in \
         migproof.toml"
    ))
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn a_feature_newer_than_the_server_is_named_with_its_major() {
        let virtual_column =
            "ALTER TABLE t ADD COLUMN total numeric GENERATED ALWAYS AS (a + b) VIRTUAL";
        let h = hint(virtual_column, "42601", 15).unwrap();
        assert!(
            h.contains("virtual generated columns, which PostgreSQL 18"),
            "{h}"
        );
        assert!(h.contains("--pg-version 18"), "{h}");
        // the server has it: the error is something else
        assert_eq!(hint(virtual_column, "42601", 18), None);
        // not a syntax error or an unknown function
        assert_eq!(hint(virtual_column, "23505", 15), None);
        assert!(hint("SELECT uuidv7()", "42883", 17)
            .unwrap()
            .contains("uuidv7()"));
        assert!(hint(
            "SELECT * FROM JSON_TABLE(j, '$[*]' COLUMNS (a int))",
            "42601",
            16
        )
        .unwrap()
        .contains("PostgreSQL 17"));
        let numbers = "INSERT INTO t VALUES (1_000_000)";
        assert!(hint(numbers, "42601", 15)
            .unwrap()
            .contains("PostgreSQL 16"));
        // plain SQL with a typo: no guess
        assert_eq!(hint("CREATE TABEL t (id int)", "42601", 15), None);
    }
}
