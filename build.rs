//! Turns `tables/hcp_codes.tsv` (HCP's error vocabulary) into the `HcpCode` enum, so every code the
//! gateway can emit comes from the table and a typo is a compile error.
use std::fmt::Write as _;
use std::{env, fs, path::Path};

fn main() {
    commit();
    println!("cargo:rerun-if-changed=tables/hcp_codes.tsv");
    let table = fs::read_to_string("tables/hcp_codes.tsv").expect("read tables/hcp_codes.tsv");
    let mut rows = Vec::new();
    for (n, line) in table.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            cols.len(),
            3,
            "tables/hcp_codes.tsv line {}: want code<TAB>status<TAB>message",
            n + 1
        );
        let status: u16 = cols[1].parse().expect("numeric status");
        rows.push((cols[0].to_string(), status, cols[2].to_string()));
    }
    let mut out = String::new();
    out.push_str("/// HCP's error codes, generated from `tables/hcp_codes.tsv`.\n");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum HcpCode {\n");
    for (code, _, _) in &rows {
        writeln!(out, "    {code},").unwrap();
    }
    out.push_str("}\n\nimpl HcpCode {\n    /// Every code of the table, in table order.\n");
    writeln!(out, "    pub const ALL: [HcpCode; {}] = [", rows.len()).unwrap();
    for (code, _, _) in &rows {
        writeln!(out, "        HcpCode::{code},").unwrap();
    }
    out.push_str("    ];\n\n    /// The code as it appears in `<Code>`.\n    pub fn as_str(self) -> &'static str {\n        match self {\n");
    for (code, _, _) in &rows {
        writeln!(out, "            HcpCode::{code} => \"{code}\",").unwrap();
    }
    out.push_str("        }\n    }\n\n    /// HCP's status for the code in its ordinary context.\n    pub fn status(self) -> u16 {\n        match self {\n");
    for (code, status, _) in &rows {
        writeln!(out, "            HcpCode::{code} => {status},").unwrap();
    }
    out.push_str("        }\n    }\n\n    /// The default `<Message>`.\n    pub fn default_message(self) -> &'static str {\n        match self {\n");
    for (code, _, msg) in &rows {
        writeln!(out, "            HcpCode::{code} => {msg:?},").unwrap();
    }
    out.push_str("        }\n    }\n\n    /// Looks a code up by its name.\n    pub fn from_name(name: &str) -> Option<HcpCode> {\n        match name {\n");
    for (code, _, _) in &rows {
        writeln!(out, "            \"{code}\" => Some(HcpCode::{code}),").unwrap();
    }
    out.push_str("            _ => None,\n        }\n    }\n}\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("hcp_codes.rs");
    fs::write(dest, out).unwrap();
}

/// `HCP_GW_COMMIT`: the commit the gateway is built from (for `hcp_gateway_build_info`) — the
/// build's own `HCP_GW_COMMIT` where it gives one (an image built without `.git`: the
/// Dockerfile's build argument), else git's, else `unknown`.
fn commit() {
    println!("cargo:rerun-if-env-changed=HCP_GW_COMMIT");
    let given = env::var("HCP_GW_COMMIT")
        .ok()
        .map(|c| {
            c.trim()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(40)
                .collect::<String>()
        })
        .filter(|c| !c.is_empty());
    let commit = given.or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|c| !c.is_empty())
    });
    let commit = commit.unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=HCP_GW_COMMIT={commit}");
    // Built again when HEAD moves (the branch's ref file changes with each commit); the git
    // directory is asked of git, so that a worktree's is found too.
    let git_dir = std::process::Command::new("git")
        .args(["rev-parse", "--absolute-git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(dir) = git_dir {
        for name in ["HEAD", "refs/heads", "packed-refs"] {
            let path = Path::new(&dir).join(name);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
