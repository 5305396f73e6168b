//! Layer tars written entry by entry, including what ordinary tools rarely write (PAX global
//! headers, raw PAX records, GNU sparse records, names that are not UTF-8), so that tests
//! make their own hostile and unusual inputs.

/// PAX records encoded as `"<len> <key>=<value>\n"`, the length counting itself.
pub fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = [k.as_bytes(), b"=", v, b"\n"].concat();
        let mut len = body.len() + 2;
        while format!("{len} ").len() + body.len() != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len} ").as_bytes());
        out.extend_from_slice(&body);
    }
    out
}

/// A tar layer under construction.
pub struct Layer {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Self {
        Layer {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    fn raw(&mut self, kind: tar::EntryType, name: &[u8], data: &[u8]) -> &mut Self {
        let mut h = header(kind, data.len() as u64, 0o644);
        h.as_mut_bytes()[..100].fill(0);
        let n = name.len().min(100);
        h.as_mut_bytes()[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        self.tar.append(&h, data).expect("append to a Vec");
        self
    }

    /// A PAX global header with these records.
    pub fn global(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let data = pax_records(records);
        self.raw(tar::EntryType::XGlobalHeader, b"pax_global_header", &data)
    }

    /// A PAX local header for the next entry.
    pub fn local(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let data = pax_records(records);
        self.raw(tar::EntryType::XHeader, b"PaxHeaders/x", &data)
    }

    /// A regular file (the name is raw bytes; long names go into a PAX `path` record).
    pub fn file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        if name.len() > 100 {
            self.local(&[("path", name)]);
        }
        self.raw(tar::EntryType::Regular, name, data)
    }

    /// A directory.
    pub fn dir(&mut self, name: &[u8]) -> &mut Self {
        if name.len() > 100 {
            self.local(&[("path", name)]);
        }
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        let n = name.len().min(100);
        h.as_mut_bytes()[..100].fill(0);
        h.as_mut_bytes()[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        self.tar.append(&h, &[][..]).expect("append to a Vec");
        self
    }

    /// A symlink (a target over 100 bytes goes into a PAX `linkpath` record).
    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        if target.len() > 100 {
            self.local(&[("linkpath", target)]);
        }
        let mut h = header(tar::EntryType::Symlink, 0, 0o777);
        h.as_mut_bytes()[..100].fill(0);
        h.as_mut_bytes()[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        let t = target.len().min(100);
        h.as_mut_bytes()[157..257].fill(0);
        h.as_mut_bytes()[157..157 + t].copy_from_slice(&target[..t]);
        h.set_cksum();
        self.tar.append(&h, &[][..]).expect("append to a Vec");
        self
    }

    /// A PAX 1.0 sparse file (as GNU tar writes it) of `real` bytes whose only data is one
    /// byte at the end: a few hundred bytes of tar for any size.
    pub fn sparse_pax10(&mut self, name: &str, real: u64) -> &mut Self {
        let real_s = real.to_string();
        self.local(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", name.as_bytes()),
            ("GNU.sparse.realsize", real_s.as_bytes()),
        ]);
        let mut data = format!("1\n{}\n1\n", real - 1).into_bytes();
        data.resize(512, 0);
        data.push(b'!');
        self.file(format!("GNUSparseFile.0/{name}").as_bytes(), &data)
    }

    /// A character device.
    pub fn char_device(&mut self, name: &[u8], major: u32, minor: u32) -> &mut Self {
        let mut h = header(tar::EntryType::Char, 0, 0o600);
        h.as_mut_bytes()[..100].fill(0);
        h.as_mut_bytes()[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        h.set_device_major(major).expect("ustar device");
        h.set_device_minor(minor).expect("ustar device");
        h.set_cksum();
        self.tar.append(&h, &[][..]).expect("append to a Vec");
        self
    }

    /// Changes the type of the last entry written (which must have had no data), e.g. a
    /// symlink into a hard link (`b'1'`) whose target came from a PAX `linkpath`.
    pub fn retype_last(&mut self, typeflag: u8) -> &mut Self {
        let bytes = self.tar.get_mut();
        let at = bytes.len() - 512;
        let h = &mut bytes[at..];
        h[156] = typeflag;
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self
    }

    /// The finished tar.
    pub fn finish(&mut self) -> Vec<u8> {
        let tar = std::mem::replace(&mut self.tar, tar::Builder::new(Vec::new()));
        tar.into_inner().expect("finish a Vec")
    }
}

/// Hardening item 2's layer: one PAX global header with three 65,000-byte xattrs, which every
/// later entry inherits, then `files` empty files.
pub fn global_xattr_layer(files: usize) -> Vec<u8> {
    let big = vec![b'x'; 65_000];
    let mut l = Layer::new();
    l.global(&[
        ("SCHILY.xattr.user.a", &big),
        ("SCHILY.xattr.user.b", &big),
        ("SCHILY.xattr.user.c", &big),
    ]);
    for i in 0..files {
        l.file(format!("f{i}").as_bytes(), b"");
    }
    l.finish()
}

/// A command's outcome with its wall time and peak resident set, measured by GNU `time`.
pub struct Measured {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error, without `time`'s line.
    pub stderr: String,
    /// Wall time.
    pub seconds: f64,
    /// Peak resident set in KiB.
    pub peak_kib: u64,
}

/// Runs `cmd args` under `/usr/bin/time -f %M` (`.ci/run` installs `time`).
pub fn run_measured(cmd: &std::path::Path, args: &[&std::ffi::OsStr]) -> Measured {
    let started = std::time::Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("PEAK_KIB=%M")
        .arg(cmd)
        .args(args)
        .output()
        .expect("/usr/bin/time runs (install the `time` package)");
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, peak) = match stderr.rfind("PEAK_KIB=") {
        Some(i) => (
            stderr[..i].to_string(),
            stderr[i + 9..].trim().parse().unwrap_or(u64::MAX),
        ),
        None => (stderr.clone(), u64::MAX),
    };
    Measured {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: rest,
        seconds,
        peak_kib: peak,
    }
}
