//! Baselines: the findings a project accepted, by fingerprint (`migproof baseline` writes
//! them, `check --baseline` reads them), and moving accepted findings out of the failing ones.
//! Files are read and written by the command line; this module only turns values around.

use serde::{Deserialize, Serialize};

use super::{Accepted, BaselineEntry, Finding, Report};

/// The baseline file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub format_version: u32,
    /// Sorted by migration, kind and step; one per fingerprint.
    pub findings: Vec<BaselineEntry>,
}

/// The baseline of a run: its (unaccepted) findings.
pub fn of(report: &Report) -> Baseline {
    let mut findings: Vec<BaselineEntry> = report.findings.iter().map(BaselineEntry::of).collect();
    findings.sort_by(|a, b| {
        (&a.migration, &a.kind, &a.step, &a.object).cmp(&(
            &b.migration,
            &b.kind,
            &b.step,
            &b.object,
        ))
    });
    findings.dedup_by(|a, b| a.fingerprint == b.fingerprint);
    Baseline {
        format_version: 1,
        findings,
    }
}

impl Baseline {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializes") + "\n"
    }

    /// Reads a baseline file's text; the error names the line and what is wrong.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let baseline: Baseline = serde_json::from_str(text)
            .map_err(|e| format!("line {}: {e}; write it with `migproof baseline`", e.line()))?;
        if baseline.format_version != 1 {
            return Err(format!(
                "format_version {} is not one this migproof reads (1)",
                baseline.format_version
            ));
        }
        Ok(baseline)
    }

    /// Moves the findings it lists to `report.accepted` (by `label`), after recording in
    /// `report.fixed` the entries no finding of the run matches any more.
    pub fn apply(&self, report: &mut Report, label: &str) {
        let seen: Vec<String> = report
            .findings
            .iter()
            .chain(report.accepted.iter().map(|a| &a.finding))
            .map(Finding::fingerprint)
            .collect();
        report.fixed = self
            .findings
            .iter()
            .filter(|e| !seen.contains(&e.fingerprint))
            .cloned()
            .collect();
        accept(report, |f| {
            let fingerprint = f.fingerprint();
            self.findings
                .iter()
                .any(|e| e.fingerprint == fingerprint)
                .then(|| format!("baseline {label}"))
        });
    }
}

/// Moves every finding `by` names a reason for to `report.accepted`, and recounts.
pub fn accept(report: &mut Report, by: impl Fn(&Finding) -> Option<String>) {
    let findings = std::mem::take(&mut report.findings);
    for f in findings {
        match by(&f) {
            Some(accepted_by) => report.accepted.push(Accepted {
                fingerprint: f.fingerprint(),
                finding: f,
                accepted_by,
            }),
            None => report.findings.push(f),
        }
    }
    let duration = std::time::Duration::from_millis(report.summary.duration_ms);
    report.finish(duration);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Kind, Source};

    fn report(findings: &[(&str, Kind)]) -> Report {
        let source = Source {
            dir: "m".into(),
            format: "sqlx".into(),
        };
        let mut r = Report::new("check", source, 3, "local");
        for (m, k) in findings {
            r.findings.push(Finding::new(
                *k,
                (*m).into(),
                "up with data".into(),
                "x".into(),
            ));
        }
        r.finish(std::time::Duration::ZERO);
        r
    }

    #[test]
    fn a_baseline_accepts_its_findings_and_lists_the_fixed_ones() {
        let old = report(&[("0001_a", Kind::DataLost), ("0002_b", Kind::Destructive)]);
        let baseline = Baseline::parse(&of(&old).to_json()).unwrap();
        assert_eq!(baseline.findings.len(), 2);
        let mut new = report(&[("0002_b", Kind::Destructive), ("0003_c", Kind::DataLost)]);
        baseline.apply(&mut new, "b.json");
        assert_eq!(new.findings.len(), 1);
        assert_eq!(new.findings[0].migration, "0003_c");
        assert_eq!(new.accepted.len(), 1);
        assert_eq!(new.accepted[0].accepted_by, "baseline b.json");
        assert_eq!(new.fixed.len(), 1);
        assert_eq!(new.fixed[0].migration, "0001_a");
        assert_eq!(new.summary.findings, 1);
        assert!(!new.summary.passed);
    }

    #[test]
    fn bad_baselines_name_the_line() {
        let err = Baseline::parse("{\n\"format_version\": 1,\n\"findings\": 3\n}").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        assert!(Baseline::parse("{\"format_version\": 9, \"findings\": []}")
            .unwrap_err()
            .contains("format_version 9"));
    }
}
