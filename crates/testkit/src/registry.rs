//! A real registry for tests: Debian's `docker-registry` on a loopback port, with its storage,
//! configuration and request log in a directory of the test's; optionally with htpasswd Basic
//! auth and TLS from a private CA made with `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running registry, stopped when dropped.
pub struct Registry {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where its storage, configuration, certificates and log are.
    pub dir: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start one.
#[derive(Debug, Clone, Default)]
pub struct RegistrySetup {
    /// htpasswd Basic auth with this user and password.
    pub basic_auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate of a private CA (`ca.crt` in [`Registry::cert_dir`]).
    pub tls: bool,
    /// Bearer token auth (`auth: token`), tokens from a [`crate::token_issuer`] run by the test
    /// for this user and password.
    pub token_auth: Option<(String, String)>,
}

impl Registry {
    /// `HOST:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A directory holding the CA certificate (`ca.crt`), as `--cert-dir` wants it.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }

    /// The registry's log so far (one line per request at level info).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Where the registry keeps the bytes of blob `digest` (to damage them).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stops it (a registry going away mid-run).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.dir);
        wait_listening(self.port);
    }
}

/// Why the registry cannot run here, if it cannot.
pub fn registry_unavailable(setup: &RegistrySetup) -> Option<String> {
    let mut tools = vec!["docker-registry", "skopeo"];
    if setup.tls {
        tools.push("openssl");
    }
    if setup.basic_auth.is_some() {
        tools.push("htpasswd");
    }
    if setup.token_auth.is_some() {
        tools.push("openssl");
    }
    tools
        .into_iter()
        .find(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .map(|t| format!("{t} is not installed"))
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    sh(
        dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rafs-test-ca \
           -keyout ca.key -out certs/ca.crt 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key \
           -out server.csr 2>/dev/null && \
         printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && \
         openssl x509 -req -in server.csr -CA certs/ca.crt -CAkey ca.key -CAcreateserial \
           -days 2 -extfile san.ext -out server.crt 2>/dev/null",
    );
}

/// The configuration for `setup`.
fn config(dir: &Path, port: u16, setup: &RegistrySetup) -> String {
    let mut c = format!(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    \
         rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.join("storage").display()
    );
    if setup.tls {
        c += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            dir.join("server.crt").display(),
            dir.join("server.key").display()
        );
    }
    if let Some((user, pass)) = &setup.basic_auth {
        sh(dir, &format!("htpasswd -Bbn {user} {pass} > htpasswd"));
        c += &format!(
            "auth:\n  htpasswd:\n    realm: rafs-test\n    path: {}\n",
            dir.join("htpasswd").display()
        );
    }
    if let Some((user, pass)) = &setup.token_auth {
        let issuer = crate::token_issuer::start_token_issuer(dir, user, pass);
        c += &format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            issuer.realm,
            crate::token_issuer::SERVICE,
            crate::token_issuer::ISSUER,
            issuer.cert.display()
        );
    }
    c
}

/// Starts a registry storing under `dir` (created); `None`, after saying SKIPPED, where it
/// cannot run.
pub fn start_registry(dir: &Path, setup: &RegistrySetup) -> Option<Registry> {
    if let Some(why) = registry_unavailable(setup) {
        crate::skipped(why);
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    if setup.tls {
        make_certificates(dir);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(dir.join("config.yml"), config(dir, port, setup)).unwrap();
    let registry = Registry {
        child: spawn(dir),
        port,
        dir: dir.to_path_buf(),
    };
    wait_listening(port);
    Some(registry)
}

/// The registry process for the configuration in `dir`, logging to `dir/registry.log`.
fn spawn(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("registry.log"))
        .unwrap();
    Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_listening(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("docker-registry did not listen on port {port}");
}
