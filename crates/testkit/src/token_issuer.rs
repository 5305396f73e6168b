//! A small token issuer for a registry configured with `auth: token` (docker distribution's
//! Bearer flow): `GET /token?service=S&scope=repository:NAME:ACTIONS` with the right Basic
//! credentials returns `{"token": JWT}`, an RS256 JWT whose `x5c` header carries the issuer's
//! self-signed certificate (the registry's `rootcertbundle`) and whose `access` grants the
//! scopes asked for. Signing is done by `openssl`; anything else answers 401.

use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `service` and `issuer` names the registry is configured with.
pub const SERVICE: &str = "rafs-test-registry";
/// See [`SERVICE`].
pub const ISSUER: &str = "rafs-test-issuer";

/// A running issuer (its thread serves until the process ends).
pub struct TokenIssuer {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The certificate the registry trusts (`rootcertbundle`).
    pub cert: PathBuf,
}

/// Starts an issuer granting tokens to `user`/`password`, its key and certificate in `dir`.
pub fn start_token_issuer(dir: &Path, user: &str, password: &str) -> TokenIssuer {
    let key = dir.join("token.key");
    let cert = dir.join("token.crt");
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=rafs-test-token", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl could not make the token key");
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap()
        .stdout;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let x5c = base64::engine::general_purpose::STANDARD.encode(der);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve(stream, &expected, &x5c, &key);
        }
    });
    TokenIssuer { realm, cert }
}

/// Answers one request.
fn serve(
    mut stream: std::net::TcpStream,
    expected: &str,
    x5c: &str,
    key: &Path,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("authorization:") && line[14..].trim() == expected {
            authorized = true;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or_default();
    if !authorized || !path.starts_with("/token") {
        return stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let token = sign(&claims(path), x5c, key);
    let body = format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":600}}"#);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}

/// The JWT claims granting the scopes of the query in `path`.
fn claims(path: &str) -> String {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let access: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(|s| {
            s.replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<String> = actions.split(',').map(|a| format!("\"{a}\"")).collect();
            Some(format!(
                r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#,
                actions.join(",")
            ))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        r#"{{"iss":"{ISSUER}","sub":"alice","aud":"{SERVICE}","exp":{},"nbf":{},"iat":{now},"jti":"{now}-{}","access":[{}]}}"#,
        now + 600,
        now - 60,
        std::process::id(),
        access.join(",")
    )
}

/// `header.claims.signature`, RS256 with `key`.
fn sign(claims: &str, x5c: &str, key: &Path) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = format!(r#"{{"typ":"JWT","alg":"RS256","x5c":["{x5c}"]}}"#);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let signature = child.wait_with_output().unwrap().stdout;
    format!("{input}.{}", b64(&signature))
}
