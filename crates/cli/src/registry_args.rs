//! Registry options of `convert-image` and `check-image`, spelled as skopeo spells them, with
//! nydusify's names as aliases: the source side (`--src-*`) and the target side (`--dest-*`).

use clap::Args;
use rafs_oci::registry::RegistryOptions;
use std::path::PathBuf;

/// `--src-*` / `--dest-*` credentials and TLS.
#[derive(Args, Clone, Default, Debug)]
pub struct RegistryArgs {
    /// Source registry credentials, USER:PASSWORD (else the auth files: --authfile,
    /// REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, Docker's config.json).
    #[arg(long = "src-creds")]
    src_creds: Option<String>,
    /// Target registry credentials, USER:PASSWORD.
    #[arg(long = "dest-creds")]
    dest_creds: Option<String>,
    /// An auth file (`{"auths": {"HOST": {"auth": base64(USER:PASS)}}}`) read first.
    #[arg(long = "authfile")]
    authfile: Option<PathBuf>,
    /// Directory of *.crt CA certificates for the source registry.
    #[arg(long = "src-cert-dir")]
    src_cert_dir: Option<PathBuf>,
    /// Directory of *.crt CA certificates for the target registry.
    #[arg(long = "dest-cert-dir")]
    dest_cert_dir: Option<PathBuf>,
    /// Verify the source registry's certificate (=false: do not; plain HTTP for loopback).
    #[arg(long = "src-tls-verify", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    src_tls_verify: Option<bool>,
    /// Verify the target registry's certificate.
    #[arg(long = "dest-tls-verify", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    dest_tls_verify: Option<bool>,
    /// nydusify's name for --src-tls-verify=false.
    #[arg(long = "source-insecure")]
    source_insecure: bool,
    /// nydusify's name for --dest-tls-verify=false.
    #[arg(long = "target-insecure")]
    target_insecure: bool,
}

impl RegistryArgs {
    /// How to reach the source registry.
    pub fn source(&self) -> RegistryOptions {
        RegistryOptions {
            creds: self.src_creds.clone(),
            authfile: self.authfile.clone(),
            cert_dir: self.src_cert_dir.clone(),
            tls_verify: if self.source_insecure {
                Some(false)
            } else {
                self.src_tls_verify
            },
        }
    }

    /// How to reach the target registry.
    pub fn target(&self) -> RegistryOptions {
        RegistryOptions {
            creds: self.dest_creds.clone(),
            authfile: self.authfile.clone(),
            cert_dir: self.dest_cert_dir.clone(),
            tls_verify: if self.target_insecure {
                Some(false)
            } else {
                self.dest_tls_verify
            },
        }
    }
}
