//! Liquibase XML changelogs: `<databaseChangeLog>` with `<include>`, `<includeAll>` and
//! `<changeSet>` elements whose changes are `<sql>` or `<sqlFile>`, and whose `<rollback>`
//! holds SQL text, those changes, or names another changeset.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::{
    runs_on_postgres, sql_file, truthy, unsupported_change, Changeset, Include, Item, Rollback,
    Splitting, Sql,
};
use crate::source::split::line_of;
use crate::source::SourceError;

/// Elements of a changeset that change nothing migproof must run.
const NO_OP: &[&str] = &["comment", "validCheckSum", "tagDatabase", "empty", "output"];

struct Xml<'a> {
    root: &'a Path,
    path: &'a Path,
    text: &'a str,
    reader: Reader<&'a [u8]>,
    notes: &'a mut Vec<String>,
}

/// An element's name and attributes, read off its start tag.
struct Element {
    name: String,
    line: usize,
    attributes: Vec<(String, String)>,
    /// `<x/>`: no content, no end tag to wait for.
    empty: bool,
}

impl Element {
    fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        self.get(key).map_or(default, truthy)
    }

    fn splitting(&self) -> Splitting {
        Splitting {
            split: self.flag("splitStatements", true),
            delimiter: self.get("endDelimiter").map(str::to_owned),
        }
    }

    fn runs_on_postgres(&self) -> bool {
        self.get("dbms").is_none_or(runs_on_postgres)
    }
}

/// What a read step met.
enum Step {
    Start(Element),
    /// Character data, decoded, and where it began.
    Text(String, usize),
    End,
    Eof,
}

pub(super) fn parse(
    root: &Path,
    path: &Path,
    text: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Item>, SourceError> {
    let mut xml = Xml {
        root,
        path,
        text,
        reader: Reader::from_str(text),
        notes,
    };
    loop {
        match xml.step()? {
            Step::Start(e) if e.name == "databaseChangeLog" => {
                return if e.empty {
                    Ok(Vec::new())
                } else {
                    xml.changelog()
                };
            }
            Step::Start(e) => {
                return Err(xml.invalid(
                    e.line,
                    format!("root element `{}` is not `databaseChangeLog`", e.name),
                ))
            }
            Step::Eof => return Err(xml.invalid(1, "no `databaseChangeLog` element".to_owned())),
            Step::Text(..) | Step::End => {}
        }
    }
}

impl Xml<'_> {
    fn invalid(&self, line: usize, message: String) -> SourceError {
        SourceError::Invalid {
            path: self.path.to_owned(),
            message: format!("line {line}: {message}"),
        }
    }

    fn step(&mut self) -> Result<Step, SourceError> {
        loop {
            let at = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
            let event = self.reader.read_event().map_err(|e| {
                let pos = usize::try_from(self.reader.error_position()).unwrap_or(usize::MAX);
                self.invalid(line_of(self.text, pos), format!("not well-formed XML: {e}"))
            })?;
            let line = line_of(self.text, at);
            return Ok(match event {
                Event::Start(e) => Step::Start(self.element(&e, line, false)?),
                Event::Empty(e) => Step::Start(self.element(&e, line, true)?),
                Event::End(_) => Step::End,
                Event::Eof => Step::Eof,
                Event::Text(t) => Step::Text(t.xml10_content().into_owned(), at),
                Event::CData(t) => {
                    // The content starts after `<![CDATA[`.
                    Step::Text(t.xml10_content().into_owned(), at + 9)
                }
                Event::GeneralRef(r) => {
                    let name = r.xml10_content();
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => match name.as_ref() {
                            "lt" => "<".to_owned(),
                            "gt" => ">".to_owned(),
                            "amp" => "&".to_owned(),
                            "apos" => "'".to_owned(),
                            "quot" => "\"".to_owned(),
                            other => {
                                return Err(
                                    self.invalid(line, format!("unknown entity `&{other};`"))
                                )
                            }
                        },
                    };
                    Step::Text(resolved, at)
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => continue,
            });
        }
    }

    fn element(&self, e: &BytesStart, line: usize, empty: bool) -> Result<Element, SourceError> {
        let name = e.local_name().as_ref().to_owned();
        let mut attributes = Vec::new();
        for attribute in e.attributes() {
            let attribute = attribute
                .map_err(|err| self.invalid(line, format!("not well-formed XML: {err}")))?;
            let key = attribute.key.local_name().as_ref().to_owned();
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| self.invalid(line, format!("not well-formed XML: {err}")))?;
            attributes.push((key, value.into_owned()));
        }
        Ok(Element {
            name,
            line,
            attributes,
            empty,
        })
    }

    /// Skips the content of an element whose start tag was just read.
    fn skip(&mut self, element: &Element) -> Result<(), SourceError> {
        if element.empty {
            return Ok(());
        }
        let mut depth = 1usize;
        while depth > 0 {
            match self.step()? {
                Step::Start(e) if !e.empty => depth += 1,
                Step::End => depth -= 1,
                Step::Eof => return Err(self.unclosed(element)),
                Step::Start(_) | Step::Text(..) => {}
            }
        }
        Ok(())
    }

    fn unclosed(&self, element: &Element) -> SourceError {
        self.invalid(element.line, format!("`<{}>` is not closed", element.name))
    }

    /// The text of an element, nested elements (a `<comment>`) left out, and the position
    /// of its first character.
    fn text_of(&mut self, element: &Element) -> Result<(String, usize), SourceError> {
        let mut text = String::new();
        let mut start = None;
        if element.empty {
            return Ok((text, 0));
        }
        loop {
            match self.step()? {
                Step::Text(t, at) => {
                    start.get_or_insert(at);
                    text.push_str(&t);
                }
                Step::Start(e) => self.skip(&e)?,
                Step::End => return Ok((text, start.unwrap_or(0))),
                Step::Eof => return Err(self.unclosed(element)),
            }
        }
    }

    fn changelog(&mut self) -> Result<Vec<Item>, SourceError> {
        let mut items = Vec::new();
        loop {
            match self.step()? {
                Step::Start(e) => match e.name.as_str() {
                    "changeSet" => {
                        if let Some(changeset) = self.changeset(&e)? {
                            items.push(Item::Changeset(Box::new(changeset)));
                        }
                    }
                    "include" | "includeAll" => {
                        let all = e.name == "includeAll";
                        let target = e.get(if all { "path" } else { "file" }).unwrap_or_default();
                        let required = e.flag(
                            if all {
                                "errorIfMissingOrEmpty"
                            } else {
                                "errorIfMissing"
                            },
                            true,
                        );
                        items.push(Item::Include(Include {
                            line: e.line,
                            target: target.to_owned(),
                            all,
                            relative: e.flag("relativeToChangelogFile", false),
                            required,
                        }));
                        self.skip(&e)?;
                    }
                    "preConditions" => {
                        self.notes.push(format!(
                            "`{}:{}`: changelog preconditions are not evaluated",
                            self.path.display(),
                            e.line
                        ));
                        self.skip(&e)?;
                    }
                    _ => self.skip(&e)?,
                },
                Step::End | Step::Eof => return Ok(items),
                Step::Text(..) => {}
            }
        }
    }

    fn changeset(&mut self, e: &Element) -> Result<Option<Changeset>, SourceError> {
        let mut changeset = Changeset {
            file: self.path.to_owned(),
            line: e.line,
            author: e.get("author").unwrap_or_default().to_owned(),
            id: e.get("id").unwrap_or_default().to_owned(),
            transactional: e.flag("runInTransaction", true),
            up: Vec::new(),
            rollback: Rollback::None,
        };
        if changeset.id.trim().is_empty() {
            return Err(self.invalid(e.line, "`<changeSet>` has no `id`".to_owned()));
        }
        if !e.runs_on_postgres() || e.flag("ignore", false) {
            // Liquibase never looks at the changes of a changeset it skips.
            self.skip(e)?;
            return Ok(None);
        }
        if e.empty {
            return Ok(Some(changeset));
        }
        let at = format!("`{}:{}` {}", self.path.display(), e.line, changeset.label());
        loop {
            let child = match self.step()? {
                Step::Start(child) => child,
                Step::End => break,
                Step::Eof => return Err(self.unclosed(e)),
                Step::Text(..) => continue,
            };
            match child.name.as_str() {
                "rollback" => self.rollback(&child, &mut changeset.rollback)?,
                "preConditions" => {
                    self.notes
                        .push(format!("{at}: preconditions are not evaluated"));
                    self.skip(&child)?;
                }
                "modifySql" => {
                    self.notes.push(format!("{at}: `modifySql` is not applied"));
                    self.skip(&child)?;
                }
                _ => {
                    if let Some(sql) = self.change(&child)? {
                        changeset.up.push(sql);
                    }
                }
            }
        }
        Ok(Some(changeset))
    }

    /// A change: its SQL, `None` for changes that run nothing here, or an error for change
    /// types migproof does not read.
    fn change(&mut self, e: &Element) -> Result<Option<Sql>, SourceError> {
        match e.name.as_str() {
            "sql" => {
                let (text, at) = self.text_of(e)?;
                if !e.runs_on_postgres() || text.trim().is_empty() {
                    return Ok(None);
                }
                Ok(Some(Sql::plain(
                    self.path,
                    line_of(self.text, at),
                    text,
                    e.splitting(),
                )))
            }
            "sqlFile" => {
                self.skip(e)?;
                if !e.runs_on_postgres() {
                    return Ok(None);
                }
                let Some(target) = e.get("path") else {
                    return Err(self.invalid(e.line, "`<sqlFile>` has no `path`".to_owned()));
                };
                let relative = e.flag("relativeToChangelogFile", false);
                sql_file(
                    self.root,
                    self.path,
                    e.line,
                    target,
                    relative,
                    e.splitting(),
                )
                .map(Some)
            }
            name if NO_OP.contains(&name) => {
                self.skip(e)?;
                Ok(None)
            }
            name => Err(unsupported_change(self.path, e.line, name)),
        }
    }

    fn rollback(&mut self, e: &Element, rollback: &mut Rollback) -> Result<(), SourceError> {
        if let Some(id) = e.get("changeSetId") {
            *rollback = Rollback::Refer {
                id: id.to_owned(),
                author: e.get("changeSetAuthor").unwrap_or_default().to_owned(),
                path: e.get("changeSetPath").map(str::to_owned),
            };
            return self.skip(e);
        }
        let mut sqls = match std::mem::replace(rollback, Rollback::None) {
            Rollback::Sql(sqls) => sqls,
            _ => Vec::new(),
        };
        let mut inline = String::new();
        let mut inline_at = None;
        let (text, path) = (self.text, self.path);
        let flush = |inline: &mut String, at: &mut Option<usize>, sqls: &mut Vec<Sql>| {
            if let Some(at) = at.take().filter(|_| !inline.trim().is_empty()) {
                let line = line_of(text, at);
                sqls.push(Sql::plain(
                    path,
                    line,
                    std::mem::take(inline),
                    Splitting::default(),
                ));
            }
            inline.clear();
        };
        if !e.empty {
            loop {
                match self.step()? {
                    Step::Text(t, at) => {
                        inline_at.get_or_insert(at);
                        inline.push_str(&t);
                    }
                    Step::Start(child) => {
                        flush(&mut inline, &mut inline_at, &mut sqls);
                        if let Some(sql) = self.change(&child)? {
                            sqls.push(sql);
                        }
                    }
                    Step::End => break,
                    Step::Eof => return Err(self.unclosed(e)),
                }
            }
        }
        flush(&mut inline, &mut inline_at, &mut sqls);
        if !sqls.is_empty() {
            *rollback = Rollback::Sql(sqls);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::load;
    use super::super::tests::{chunks, folder};

    pub(in super::super) fn changelog(body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <databaseChangeLog xmlns=\"http://www.liquibase.org/xml/ns/dbchangelog\">\n\
             {body}\n</databaseChangeLog>\n"
        )
    }

    #[test]
    fn sql_and_sql_file_changes_with_rollbacks() {
        let xml = changelog(
            r#"<changeSet id="1" author="alice">
    <comment>users</comment>
    <sql>create table users (id int);
insert into users values (1) &amp;&amp; 'x&lt;y';</sql>
    <rollback>drop table users;</rollback>
</changeSet>
<changeSet id="2" author="bob" runInTransaction="false">
    <sqlFile path="idx.sql" relativeToChangelogFile="true" splitStatements="false"/>
    <rollback><sql><![CDATA[drop index concurrently i; select '<';]]></sql></rollback>
</changeSet>
<changeSet id="3" author="carol" dbms="oracle"><createSequence sequenceName="s"/></changeSet>"#,
        );
        let dir = folder(&[
            ("changelog.xml", &xml),
            ("idx.sql", "create index concurrently i on users (id);\n"),
        ]);
        let set = load(dir.path()).unwrap();
        let m = &set.migrations;
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].id(), "1_alice");
        assert_eq!(
            chunks(&m[0].up),
            [
                "create table users (id int)",
                "insert into users values (1) && 'x<y'"
            ]
        );
        assert_eq!(m[0].up.line_of(m[0].up.blocks[0].chunks[1].offset), 6);
        assert_eq!(chunks(m[0].down.as_ref().unwrap()), ["drop table users"]);
        assert!(!m[1].up.blocks[0].transactional);
        assert!(m[1].up.path.ends_with("idx.sql"));
        assert_eq!(
            chunks(&m[1].up),
            ["create index concurrently i on users (id);"]
        );
        assert_eq!(
            chunks(m[1].down.as_ref().unwrap()),
            ["drop index concurrently i", "select '<'"]
        );
    }

    #[test]
    fn other_change_types_are_refused_with_their_line() {
        let xml = changelog(
            "<changeSet id=\"1\" author=\"a\">\n\
             <addColumn tableName=\"t\"><column name=\"c\" type=\"int\"/></addColumn>\n\
             </changeSet>",
        );
        let dir = folder(&[("changelog.xml", &xml)]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("changelog.xml"), "{err}");
        assert!(
            err.contains(
                "change type `addColumn` at line 4 is not supported; write it as a `sql` change"
            ),
            "{err}"
        );
    }

    #[test]
    fn preconditions_are_noted_and_tags_run_nothing() {
        let xml = changelog(
            "<changeSet id=\"1\" author=\"a\">\n\
             <preConditions onFail=\"MARK_RAN\"><tableExists tableName=\"t\"/></preConditions>\n\
             <tagDatabase tag=\"v1\"/>\n\
             <sql dbms=\"postgresql\">select 1</sql>\n\
             </changeSet>",
        );
        let dir = folder(&[("changelog.xml", &xml)]);
        let set = load(dir.path()).unwrap();
        assert_eq!(chunks(&set.migrations[0].up), ["select 1"]);
        assert!(
            set.notes[0].contains("changelog.xml:3` changeset a:1: preconditions"),
            "{:?}",
            set.notes
        );
    }

    #[test]
    fn broken_xml_names_its_line() {
        let dir = folder(&[(
            "changelog.xml",
            "<databaseChangeLog>\n<changeSet id=\"1\" author=\"a\">\n</databaseChangeLog>",
        )]);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("changelog.xml") && err.contains("not well-formed XML"),
            "{err}"
        );
    }
}
