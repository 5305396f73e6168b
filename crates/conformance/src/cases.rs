//! The cases, as data (`cases.toml`): what to build from which input with which arguments,
//! what the outcome must be, and the known deviations of named implementations, with reasons.

use serde::Deserialize;

/// What a case's outcome is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The bootstrap and every blob byte-identical to the reference's committed output.
    Identical,
    /// The image, read back, lists as the OCI model of its layers (`expected/<model>.list`).
    Model,
    /// The input is invalid: the implementation must exit non-zero, without crashing.
    Refused,
}

/// How a case is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `nydus-image create` of one layer.
    Create,
    /// `nydus-image merge` of the bootstraps other cases built.
    Merge,
}

/// One case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique name.
    pub id: String,
    /// Create or merge.
    pub kind: Kind,
    /// The layer, relative to the corpus (create).
    #[serde(default)]
    pub input: Option<String>,
    /// The builder's arguments in `nydus-image` spelling. `@BOOTSTRAP:<case>@` stands for
    /// another case's bootstrap; `@DIGESTS@` for the comma-joined blob digests of the sources.
    #[serde(default)]
    pub args: Vec<String>,
    /// Cases whose outputs this one needs (merge sources, layered parents).
    #[serde(default)]
    pub sources: Vec<String>,
    /// What the outcome must be.
    pub expect: Vec<Expect>,
    /// The expected listing's name under `expected/`.
    #[serde(default)]
    pub model: Option<String>,
    /// Where the reference's output of this case is, relative to the corpus (default:
    /// `nydus-image/<id>`): its `bootstrap`, `blobs.txt` and a `blobs/` directory.
    #[serde(default)]
    pub reference: Option<String>,
}

/// A difference of one implementation, known and explained: a case that fails only for it is
/// reported as a known deviation, not a failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// The implementation (`--impl`), e.g. `nydus-image`.
    #[serde(rename = "impl")]
    pub implementation: String,
    /// `builder` or `reader`.
    pub mode: String,
    /// Case ids, each exact or a prefix ending in `*`.
    pub cases: Vec<String>,
    /// Why.
    pub reason: String,
}

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The cases, in the order they run.
    #[serde(rename = "case")]
    pub cases: Vec<Case>,
    /// Known deviations.
    #[serde(default, rename = "deviation")]
    pub deviations: Vec<Deviation>,
    /// Documented behaviours of readers that a comparison allows for, line by line.
    #[serde(default, rename = "quirk")]
    pub quirks: Vec<Quirk>,
}

/// A reader's documented behaviour the comparison allows for (and reports): only
/// `epoch-mtime-as-now`, an mtime of 0 shown as the time of the `stat` call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quirk {
    /// The implementation (`--impl`).
    #[serde(rename = "impl")]
    pub implementation: String,
    /// Which behaviour.
    pub name: String,
    /// Why it is allowed.
    pub reason: String,
}

impl Manifest {
    /// The manifest shipped with the kit.
    pub fn builtin() -> Result<Self, String> {
        Self::parse(include_str!("../cases.toml"))
    }

    /// Parses a manifest.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("cases.toml: {e}"))
    }

    /// Whether `implementation` has the quirk `name`.
    pub fn quirk(&self, implementation: &str, name: &str) -> Option<&Quirk> {
        self.quirks
            .iter()
            .find(|q| q.implementation == implementation && q.name == name)
    }

    /// The case named `id`.
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// The known deviation of `implementation` in `mode` for case `id`, if one is declared.
    pub fn deviation(&self, implementation: &str, mode: &str, id: &str) -> Option<&Deviation> {
        self.deviations.iter().find(|d| {
            d.implementation == implementation
                && d.mode == mode
                && d.cases.iter().any(|p| match p.strip_suffix('*') {
                    Some(prefix) => id.starts_with(prefix),
                    None => p == id,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_manifest_parses_and_its_sources_exist() {
        let m = Manifest::builtin().unwrap();
        assert!(m.cases.len() > 90);
        for c in &m.cases {
            for s in &c.sources {
                assert!(m.case(s).is_some(), "{}: source {s} is not a case", c.id);
            }
        }
    }
}
