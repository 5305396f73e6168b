//! Verdicts and reports: a table for the terminal, JSON (`{"mode", "impl", "summary",
//! "cases": [{"id", "verdict", "reason", "seconds"}]}`) and JUnit XML for CI systems.

use serde::Serialize;

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check held.
    Pass,
    /// A check failed.
    Fail,
    /// A check failed, as a declared deviation of this implementation says it does.
    KnownDeviation,
    /// Not run (the implementation cannot be asked for it, or a case it needs failed).
    Skipped,
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case.
    pub id: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why (empty for a pass).
    pub reason: String,
    /// Seconds the implementation ran.
    pub seconds: f64,
}

/// A run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `builder` or `reader`.
    pub mode: String,
    /// The implementation under test.
    #[serde(rename = "impl")]
    pub implementation: String,
    /// Counts by verdict.
    pub summary: Summary,
    /// Every case, in order.
    pub cases: Vec<CaseResult>,
}

/// Counts by verdict.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Known deviations.
    pub known_deviation: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Report {
    /// A report of `cases`.
    pub fn new(mode: &str, implementation: &str, cases: Vec<CaseResult>) -> Self {
        let mut summary = Summary::default();
        for c in &cases {
            match c.verdict {
                Verdict::Pass => summary.pass += 1,
                Verdict::Fail => summary.fail += 1,
                Verdict::KnownDeviation => summary.known_deviation += 1,
                Verdict::Skipped => summary.skipped += 1,
            }
        }
        Report {
            mode: mode.into(),
            implementation: implementation.into(),
            summary,
            cases,
        }
    }

    /// Whether every case passed or is a declared deviation (skipped cases are listed, not
    /// failed).
    pub fn ok(&self) -> bool {
        self.summary.fail == 0
    }

    /// The report as a table, one case per line, then the counts.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for c in &self.cases {
            let v = match c.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::KnownDeviation => "known-deviation",
                Verdict::Skipped => "skipped",
            };
            out += &format!("{:<44} {v:<16} {}\n", c.id, c.reason);
        }
        let s = self.summary;
        out += &format!(
            "{} {}: {} pass, {} fail, {} known deviations, {} skipped\n",
            self.mode, self.implementation, s.pass, s.fail, s.known_deviation, s.skipped
        );
        out
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as JUnit XML (a known deviation and a skip are `<skipped>`, with the reason).
    pub fn junit(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"rafs-conformance {} {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
            self.mode,
            esc(&self.implementation),
            self.cases.len(),
            self.summary.fail,
            self.summary.skipped + self.summary.known_deviation
        );
        for c in &self.cases {
            out += &format!(
                "  <testcase name=\"{}\" time=\"{:.3}\">",
                esc(&c.id),
                c.seconds
            );
            match c.verdict {
                Verdict::Pass => {}
                Verdict::Fail => out += &format!("<failure message=\"{}\"/>", esc(&c.reason)),
                Verdict::KnownDeviation => {
                    out += &format!("<skipped message=\"known deviation: {}\"/>", esc(&c.reason));
                }
                Verdict::Skipped => out += &format!("<skipped message=\"{}\"/>", esc(&c.reason)),
            }
            out += "</testcase>\n";
        }
        out + "</testsuite>\n"
    }
}
