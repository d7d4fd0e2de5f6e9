//! Liquibase YAML changelogs (and JSON ones, which YAML reads): `databaseChangeLog:` with
//! `include`, `includeAll` and `changeSet` entries, changes `sql` and `sqlFile`, and
//! `rollback` as SQL text, those changes, or another changeset's id and author. Lines
//! come from the YAML parser's marks (a block scalar's mark is its first content line); a
//! folded scalar (`>`) joins lines, so lines inside it are approximate.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};

use super::{
    runs_on_postgres, sql_file, truthy, unsupported_change, Changeset, Include, Item, Rollback,
    Splitting, Sql,
};
use crate::source::SourceError;

/// Changes that run nothing migproof must reproduce.
const NO_OP: &[&str] = &["tagDatabase", "empty", "output"];

/// A YAML value with the line it starts on.
#[derive(Debug, Clone)]
enum Node {
    Scalar(String, usize),
    Seq(Vec<Node>, usize),
    Map(Vec<(String, Node)>, usize),
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar(_, line) | Node::Seq(_, line) | Node::Map(_, line) => *line,
        }
    }

    fn at_key(self, key_line: usize) -> Node {
        match self {
            Node::Seq(items, _) => Node::Seq(items, key_line),
            Node::Map(entries, _) => Node::Map(entries, key_line),
            scalar => scalar,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries, _) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Node::Scalar(value, _) => Some(value),
            _ => None,
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::text)
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        self.str(key).map_or(default, truthy)
    }

    fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items, _) => items,
            _ => &[],
        }
    }

    fn runs_on_postgres(&self) -> bool {
        self.str("dbms").is_none_or(runs_on_postgres)
    }

    fn splitting(&self) -> Splitting {
        Splitting {
            split: self.flag("splitStatements", true),
            delimiter: self.str("endDelimiter").map(str::to_owned),
        }
    }
}

enum Frame {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<(String, Node)>, Option<(String, usize)>, usize, usize),
}

/// Reads the first document of `text` into nodes.
fn document(text: &str) -> Result<Option<Node>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root = None;
    while root.is_none() {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| format!("not valid YAML: {e}"))?;
        let line = mark.line();
        let (node, anchor) = match event {
            Event::StreamEnd => break,
            Event::Scalar(value, _, anchor, _) => (Node::Scalar(value, line), anchor),
            Event::Alias(id) => (
                anchors
                    .get(&id)
                    .cloned()
                    .unwrap_or(Node::Scalar(String::new(), line)),
                0,
            ),
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(Vec::new(), line, anchor));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(Vec::new(), None, line, anchor));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(items, line, anchor)) => (Node::Seq(items, line), anchor),
                Some(Frame::Map(entries, _, line, anchor)) => (Node::Map(entries, line), anchor),
                None => continue,
            },
            _ => continue,
        };
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(entries, pending, ..)) => match pending.take() {
                None => *pending = Some((node.text().unwrap_or_default().to_owned(), node.line())),
                // A map or list under a key is placed at its key's line, where a reader
                // sees it start; a scalar keeps its own line, where its text starts.
                Some((key, key_line)) => entries.push((key, node.at_key(key_line))),
            },
        }
    }
    Ok(root)
}

struct Yaml<'a> {
    root: &'a Path,
    path: &'a Path,
    notes: &'a mut Vec<String>,
}

pub(super) fn parse(
    root: &Path,
    path: &Path,
    text: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Item>, SourceError> {
    let invalid = |message: String| SourceError::Invalid {
        path: path.to_owned(),
        message,
    };
    let Some(document) = document(text).map_err(invalid)? else {
        return Ok(Vec::new());
    };
    let Some(entries) = document.get("databaseChangeLog") else {
        return Err(invalid(format!(
            "line {}: no `databaseChangeLog` key at the top",
            document.line()
        )));
    };
    let mut yaml = Yaml { root, path, notes };
    let mut items = Vec::new();
    for entry in entries.items() {
        let Node::Map(pairs, _) = entry else { continue };
        for (kind, value) in pairs {
            match kind.as_str() {
                "changeSet" => {
                    if let Some(changeset) = yaml.changeset(value)? {
                        items.push(Item::Changeset(Box::new(changeset)));
                    }
                }
                "include" | "includeAll" => {
                    let all = kind == "includeAll";
                    let target = value
                        .str(if all { "path" } else { "file" })
                        .unwrap_or_default();
                    items.push(Item::Include(Include {
                        line: value.line(),
                        target: target.to_owned(),
                        all,
                        relative: value.flag("relativeToChangelogFile", false),
                        required: value.flag(
                            if all {
                                "errorIfMissingOrEmpty"
                            } else {
                                "errorIfMissing"
                            },
                            true,
                        ),
                    }));
                }
                "preConditions" => yaml.notes.push(format!(
                    "`{}:{}`: changelog preconditions are not evaluated",
                    path.display(),
                    value.line()
                )),
                _ => {}
            }
        }
    }
    Ok(items)
}

impl Yaml<'_> {
    fn invalid(&self, line: usize, message: String) -> SourceError {
        SourceError::Invalid {
            path: self.path.to_owned(),
            message: format!("line {line}: {message}"),
        }
    }

    fn changeset(&mut self, node: &Node) -> Result<Option<Changeset>, SourceError> {
        let line = node.line();
        let id = node.str("id").unwrap_or_default();
        if id.trim().is_empty() {
            return Err(self.invalid(line, "`changeSet` has no `id`".to_owned()));
        }
        let mut changeset = Changeset {
            file: self.path.to_owned(),
            line,
            author: node.str("author").unwrap_or_default().to_owned(),
            id: id.to_owned(),
            transactional: node.flag("runInTransaction", true),
            up: Vec::new(),
            rollback: Rollback::None,
        };
        if !node.runs_on_postgres() || node.flag("ignore", false) {
            return Ok(None);
        }
        let at = format!("`{}:{line}` {}", self.path.display(), changeset.label());
        if node.get("preConditions").is_some() {
            self.notes
                .push(format!("{at}: preconditions are not evaluated"));
        }
        if node.get("modifySql").is_some() {
            self.notes.push(format!("{at}: `modifySql` is not applied"));
        }
        for change in node.get("changes").map(Node::items).unwrap_or_default() {
            changeset.up.extend(self.changes(change)?);
        }
        if let Some(rollback) = node.get("rollback") {
            changeset.rollback = self.rollback(rollback)?;
        }
        Ok(Some(changeset))
    }

    /// The SQL of a change map (`sql: {...}`, `sqlFile: {...}`), or an error for change
    /// types migproof does not read.
    fn changes(&mut self, change: &Node) -> Result<Vec<Sql>, SourceError> {
        let Node::Map(pairs, _) = change else {
            return Err(self.invalid(
                change.line(),
                "a change must be a map such as `sql:`".into(),
            ));
        };
        let mut sqls = Vec::new();
        for (kind, value) in pairs {
            match kind.as_str() {
                "sql" => {
                    let (text, line, splitting) = match value {
                        Node::Scalar(text, line) => (text.as_str(), *line, Splitting::default()),
                        _ => match value.get("sql") {
                            Some(Node::Scalar(text, line)) => {
                                (text.as_str(), *line, value.splitting())
                            }
                            _ => {
                                return Err(self.invalid(
                                    value.line(),
                                    "`sql` change has no `sql` text".into(),
                                ))
                            }
                        },
                    };
                    if value.runs_on_postgres() && !text.trim().is_empty() {
                        sqls.push(Sql::plain(self.path, line, text.to_owned(), splitting));
                    }
                }
                "sqlFile" => {
                    let Some(target) = value.str("path") else {
                        return Err(self.invalid(value.line(), "`sqlFile` has no `path`".into()));
                    };
                    if value.runs_on_postgres() {
                        let relative = value.flag("relativeToChangelogFile", false);
                        sqls.push(sql_file(
                            self.root,
                            self.path,
                            value.line(),
                            target,
                            relative,
                            value.splitting(),
                        )?);
                    }
                }
                name if NO_OP.contains(&name) => {}
                name => return Err(unsupported_change(self.path, value.line(), name)),
            }
        }
        Ok(sqls)
    }

    fn rollback(&mut self, node: &Node) -> Result<Rollback, SourceError> {
        if let Some(id) = node.str("changeSetId") {
            return Ok(Rollback::Refer {
                id: id.to_owned(),
                author: node.str("changeSetAuthor").unwrap_or_default().to_owned(),
                path: node.str("changeSetPath").map(str::to_owned),
            });
        }
        let mut sqls = Vec::new();
        let parts = match node {
            Node::Seq(items, _) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        for part in parts {
            match part {
                Node::Scalar(text, line) => {
                    let lowered = text.trim().to_ascii_lowercase();
                    if lowered.starts_with("empty") || lowered.starts_with("not required") {
                        continue;
                    }
                    if !lowered.is_empty() {
                        sqls.push(Sql::plain(
                            self.path,
                            *line,
                            text.clone(),
                            Splitting::default(),
                        ));
                    }
                }
                _ => sqls.extend(self.changes(part)?),
            }
        }
        Ok(if sqls.is_empty() {
            Rollback::None
        } else {
            Rollback::Sql(sqls)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::super::tests::{chunks, folder};

    #[test]
    fn changesets_with_sql_sql_file_and_rollbacks() {
        let yaml = "\
databaseChangeLog:
  - changeSet:
      id: 1
      author: alice
      changes:
        - sql:
            sql: |
              create table users (id int);
              insert into users values (1);
      rollback: drop table users;
  - changeSet:
      id: 2
      author: bob
      runInTransaction: false
      preConditions:
        - onFail: MARK_RAN
      changes:
        - sqlFile:
            path: idx.sql
            relativeToChangelogFile: true
        - tagDatabase:
            tag: v2
      rollback:
        - sql:
            sql: drop index concurrently i
            splitStatements: false
  - changeSet:
      id: 3
      author: carol
      dbms: oracle
      changes:
        - sql:
            sql: select 1 from dual
";
        let dir = folder(&[
            ("db.changelog-master.yaml", yaml),
            ("idx.sql", "create index concurrently i on users (id);"),
        ]);
        let set = load(dir.path()).unwrap();
        let m = &set.migrations;
        assert_eq!(m.len(), 2);
        assert_eq!(
            chunks(&m[0].up),
            [
                "create table users (id int)",
                "insert into users values (1)"
            ]
        );
        assert_eq!(m[0].up.line_of(m[0].up.blocks[0].chunks[1].offset), 9);
        assert_eq!(chunks(m[0].down.as_ref().unwrap()), ["drop table users"]);
        assert!(!m[1].up.blocks[0].transactional);
        assert_eq!(
            chunks(&m[1].up),
            ["create index concurrently i on users (id)"]
        );
        assert_eq!(
            chunks(m[1].down.as_ref().unwrap()),
            ["drop index concurrently i"]
        );
        assert!(
            set.notes[0].contains("db.changelog-master.yaml:11` changeset bob:2: preconditions"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn other_change_types_are_refused_with_their_line() {
        let yaml = "databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: a\n\
                    \x20     changes:\n        - addColumn:\n            tableName: t\n";
        let dir = folder(&[("changelog.yaml", yaml)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("changelog.yaml") && err.contains("change type `addColumn` at line 6"),
            "{err}"
        );
    }

    #[test]
    fn rollbacks_empty_or_naming_another_changeset() {
        let yaml = "\
databaseChangeLog:
  - changeSet:
      id: create
      author: a
      changes:
        - sql: create table t (x int)
      rollback: empty
  - changeSet:
      id: again
      author: a
      changes:
        - sql:
            sql: create table if not exists t (x int)
      rollback:
        changeSetId: create
        changeSetAuthor: a
";
        let dir = folder(&[("changelog.yml", yaml)]);
        let set = load(dir.path()).unwrap();
        assert!(set.migrations[0].down.is_none());
        assert_eq!(
            chunks(set.migrations[1].down.as_ref().unwrap()),
            ["create table t (x int)"]
        );
    }

    #[test]
    fn json_changelogs_read_as_yaml() {
        let json = r#"{"databaseChangeLog": [{"changeSet": {"id": "1", "author": "a",
            "changes": [{"sql": {"sql": "select 1; select 2"}}]}}]}"#;
        let dir = folder(&[("changelog.json", json)]);
        let set = load(dir.path()).unwrap();
        assert_eq!(chunks(&set.migrations[0].up), ["select 1", "select 2"]);
    }

    #[test]
    fn broken_yaml_is_named() {
        let dir = folder(&[("changelog.yaml", "databaseChangeLog:\n  - changeSet: [\n")]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("changelog.yaml") && err.contains("not valid YAML"),
            "{err}"
        );
    }
}
