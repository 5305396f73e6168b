//! Registry credentials, found where container tools keep them: `--creds USER:PASS`, then
//! `--authfile`, `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` (podman,
//! skopeo), `$DOCKER_CONFIG/config.json` and `~/.docker/config.json` (Docker). An auth file
//! maps registries to `{"auth": base64("USER:PASS")}` under `auths`; a key may carry a scheme
//! or a path (`https://index.docker.io/v1/`), which is ignored when matching.

use super::RegistryOptions;
use crate::error::{json, Result};
use base64::Engine as _;
use std::path::{Path, PathBuf};

/// The user and password for `registry` (`HOST[:PORT]`), if any are configured.
pub fn credentials(registry: &str, options: &RegistryOptions) -> Result<Option<(String, String)>> {
    if let Some(creds) = &options.creds {
        return split_creds(creds).map(Some);
    }
    for file in auth_files(options.authfile.as_deref()) {
        let Ok(text) = std::fs::read(&file) else {
            continue;
        };
        if let Some(found) = lookup(&text, registry, &file)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// `USER:PASS` split at the first colon.
fn split_creds(creds: &str) -> Result<(String, String)> {
    let (user, pass) = creds
        .split_once(':')
        .ok_or_else(|| crate::error::unsupported("--creds", "expected USER:PASSWORD"))?;
    Ok((user.to_owned(), pass.to_owned()))
}

/// The auth files to look in, first match wins.
fn auth_files(explicit: Option<&Path>) -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let mut files: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
    files.extend(env("REGISTRY_AUTH_FILE"));
    files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    files.extend(env("DOCKER_CONFIG").map(|d| d.join("config.json")));
    files.extend(env("HOME").map(|h| h.join(".docker/config.json")));
    files
}

/// The host (and port) an `auths` key names: without scheme and path.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The credentials for `registry` in one auth file's JSON.
fn lookup(text: &[u8], registry: &str, file: &Path) -> Result<Option<(String, String)>> {
    let what = || format!("auth file {}", file.display());
    let doc: serde_json::Value = serde_json::from_slice(text).map_err(|e| json(what(), e))?;
    let Some(auths) = doc["auths"].as_object() else {
        return Ok(None);
    };
    // Docker Hub is keyed by its legacy index name.
    let wanted = |k: &str| {
        let h = key_host(k);
        h == registry || (registry == "docker.io" && h == "index.docker.io")
    };
    let Some(entry) = auths.iter().find(|(k, _)| wanted(k)).map(|(_, v)| v) else {
        return Ok(None);
    };
    if let (Some(user), Some(pass)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Ok(Some((user.to_owned(), pass.to_owned())));
    }
    let Some(encoded) = entry["auth"].as_str() else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| json(what(), format!("auth of {registry}: {e}")))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| json(what(), format!("auth of {registry} is not UTF-8")))?;
    split_creds(&text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auth_file_entry_is_found_by_host_with_or_without_scheme() {
        let file = br#"{"auths": {"https://reg.example:5000/v1/": {"auth": "dXNlcjpwOnc="},
                        "index.docker.io": {"auth": "aHViOmh1Yg=="}}}"#;
        let p = Path::new("auth.json");
        assert_eq!(
            lookup(file, "reg.example:5000", p).unwrap(),
            Some(("user".into(), "p:w".into()))
        );
        assert_eq!(
            lookup(file, "docker.io", p).unwrap(),
            Some(("hub".into(), "hub".into()))
        );
        assert_eq!(lookup(file, "other.example", p).unwrap(), None);
    }

    #[test]
    fn explicit_creds_win_and_need_a_colon() {
        let o = RegistryOptions {
            creds: Some("a:b:c".into()),
            ..RegistryOptions::default()
        };
        assert_eq!(
            credentials("x", &o).unwrap(),
            Some(("a".into(), "b:c".into()))
        );
        let bad = RegistryOptions {
            creds: Some("nocolon".into()),
            ..RegistryOptions::default()
        };
        assert!(credentials("x", &bad).is_err());
    }
}
