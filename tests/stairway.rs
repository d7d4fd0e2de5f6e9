//! How `check` moves from one migration to the next on real PostgreSQL: after a finding the
//! database is brought back to golden state in place when a snapshot proves it (keeping its
//! rows), else rebuilt; and a table is seeded again only when that can give it rows.

mod common;

/// `account` (0001), its `note` column (0002, with `note_down` as its down) and `tag` (0003).
fn three_migrations(note_down: &str) -> tempfile::TempDir {
    common::folder(&[
        (
            "0001_account.up.sql",
            "CREATE TABLE account (id serial PRIMARY KEY, name text NOT NULL);\n",
        ),
        ("0001_account.down.sql", "DROP TABLE account;\n"),
        (
            "0002_note.up.sql",
            "ALTER TABLE account ADD COLUMN note text;\n",
        ),
        ("0002_note.down.sql", note_down),
        (
            "0003_tag.up.sql",
            "CREATE TABLE tag (id serial PRIMARY KEY, label text NOT NULL);\n",
        ),
        ("0003_tag.down.sql", "DROP TABLE tag;\n"),
    ])
}

/// A down that fails once rows were written at its version rolls back: the database is still
/// exactly at golden 0002 and keeps its rows, so the next migration seeds only its new table
/// (a rebuilt database would need `account` seeded again: 9 rows more).
#[test]
fn a_database_left_at_golden_state_by_a_failed_step_keeps_its_rows() {
    let dir = three_migrations(
        "DO $$ BEGIN\n\
             IF EXISTS (SELECT FROM account WHERE note IS NOT NULL) THEN\n\
             RAISE EXCEPTION 'notes would be lost';\n\
             END IF;\n\
             END $$;\n\
             ALTER TABLE account DROP COLUMN note;\n",
    );
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert_eq!(
        common::findings(&json),
        [("apply_failed".to_string(), "0002_note".to_string())]
    );
    assert_eq!(
        json["findings"][0]["step"],
        "down with rows written at this version"
    );
    // account: 9 rows at 0001, 9 when 0002 starts (0001's round trip made it a new table), 9
    // written at 0002; tag: 9 at 0003. Not account again at 0003.
    assert_eq!(json["summary"]["rows_seeded"], 36, "{json:#}");
    assert_eq!(json["summary"]["migrations_checked"], 3);
}

/// A down that leaves an index behind gives a schema the up cannot take back: the database is
/// rebuilt at golden 0002, and the next migration is compared with a clean database (kept in
/// place, its up would show the stray index as a difference of its own).
#[test]
fn a_database_off_golden_state_is_rebuilt_before_the_next_migration() {
    let dir = three_migrations(
        "ALTER TABLE account DROP COLUMN note;\n\
             CREATE INDEX account_name_idx ON account (name);\n",
    );
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert_eq!(
        common::findings(&json),
        [("schema_mismatch".to_string(), "0002_note".to_string())],
        "{json:#}"
    );
    assert_eq!(json["summary"]["migrations_checked"], 3);
}

/// A table whose every row is refused (here: its parent has no rows, because a trigger
/// refuses the parent's) is not written to again while nothing changed, and is written to
/// as soon as its parent takes rows: the values it then holds are what shows that 0003 drops
/// them.
#[test]
fn a_table_that_took_no_row_is_tried_again_once_its_parent_holds_rows() {
    let dir = common::folder(&[
        (
            "0001_tables.up.sql",
            "CREATE TABLE parent (id serial PRIMARY KEY, name text NOT NULL);\n\
             CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS\n\
             $$ BEGIN RAISE EXCEPTION 'closed'; END $$;\n\
             CREATE TRIGGER closed BEFORE INSERT ON parent FOR EACH ROW EXECUTE FUNCTION refuse();\n\
             CREATE TABLE child (id serial PRIMARY KEY,\n\
             parent_id int NOT NULL REFERENCES parent, note text);\n",
        ),
        (
            "0001_tables.down.sql",
            "DROP TABLE child;\nDROP TABLE parent;\nDROP FUNCTION refuse();\n",
        ),
        (
            "0002_comment.up.sql",
            "COMMENT ON TABLE child IS 'children';\n",
        ),
        ("0002_comment.down.sql", "COMMENT ON TABLE child IS NULL;\n"),
        (
            "0003_open.up.sql",
            "DROP TRIGGER closed ON parent;\n",
        ),
        (
            "0003_open.down.sql",
            "CREATE TRIGGER closed BEFORE INSERT ON parent FOR EACH ROW EXECUTE FUNCTION refuse();\n",
        ),
        (
            "0004_drop_note.up.sql",
            "ALTER TABLE child DROP COLUMN note;\n",
        ),
        (
            "0004_drop_note.down.sql",
            "ALTER TABLE child ADD COLUMN note text;\n",
        ),
    ]);
    let (out, json) = common::check_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{json:#}");
    assert_eq!(
        common::findings(&json),
        [("destructive".to_string(), "0004_drop_note".to_string())],
        "{json:#}"
    );
    // Refused: parent's and child's 9 rows each written at 0001, and again when 0002 starts
    // (0001's round trip made them new tables); not at 0002's rows or 0003's start, where
    // nothing they depend on changed.
    assert_eq!(json["summary"]["rows_skipped"], 36, "{json:#}");
}
