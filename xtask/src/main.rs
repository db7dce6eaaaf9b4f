//! Build tasks, in Rust so they run wherever cargo does.
//!
//! `cargo xtask build-sdk`: the SDK as `wasm-pack.toml` describes it, then the
//! gzip size of everything a page downloads for tracking, checked against the
//! budget.

use flate2::{Compression, write::GzEncoder};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Deserialize)]
struct WasmPackToml {
    build: BuildSection,
    wasm_opt: WasmOptSection,
    bundle: BundleSection,
    budget: BudgetSection,
}

#[derive(Deserialize)]
struct BuildSection {
    #[serde(rename = "crate")]
    krate: String,
    target: String,
    out_dir: PathBuf,
    profile: String,
}

#[derive(Deserialize)]
struct WasmOptSection {
    flags: Vec<String>,
}

#[derive(Deserialize)]
struct BundleSection {
    loader: PathBuf,
    out_dir: PathBuf,
    script: String,
    /// Where wasm-opt writes the SDK's wasm, which the script embeds (one
    /// request instead of two before the SDK is ready).
    wasm: PathBuf,
    /// The widgets, a separate chunk the loader imports on the first `mount`.
    widgets: PathBuf,
    widgets_script: String,
}

#[derive(Deserialize)]
struct BudgetSection {
    tracking_gzip_bytes: usize,
    widgets_gzip_bytes: usize,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-sdk") => build_sdk(),
        _ => Err("usage: cargo xtask build-sdk".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn build_sdk() -> Result<(), String> {
    let root = root();
    let settings_path = root.join("wasm-pack.toml");
    let text = std::fs::read_to_string(&settings_path).map_err(|e| format!("{}: {e}", settings_path.display()))?;
    let s: WasmPackToml = toml::from_str(&text).map_err(|e| format!("{}: {e}", settings_path.display()))?;

    let out_dir = root.join(&s.build.out_dir);
    run(Command::new(tool("wasm-pack")?)
        .current_dir(&root)
        .args(["build", &s.build.krate, "--no-pack", "--no-typescript"])
        .arg(format!("--{}", s.build.profile))
        .args(["--target", &s.build.target, "--out-dir"])
        .arg(&out_dir))?;

    let crate_name = s.build.krate.clone();
    let pkg_name = format!("refloop_{crate_name}");
    let raw_wasm = out_dir.join(format!("{pkg_name}_bg.wasm"));
    let bundle_dir = root.join(&s.bundle.out_dir);
    std::fs::create_dir_all(&bundle_dir).map_err(|e| e.to_string())?;
    let wasm_out = root.join(&s.bundle.wasm);
    // An earlier build served the wasm beside the script; now it is inside.
    let _ = std::fs::remove_file(bundle_dir.join(format!("{pkg_name}_bg.wasm")));
    run(Command::new(tool("wasm-opt")?)
        .args(&s.wasm_opt.flags)
        .arg(&raw_wasm)
        .arg("-o")
        .arg(&wasm_out))?;

    let script_out = bundle_dir.join(&s.bundle.script);
    run(Command::new(tool("esbuild")?)
        .current_dir(&root)
        .arg(&s.bundle.loader)
        .args([
            "--bundle",
            "--format=iife",
            "--minify",
            // es2020: the dynamic import() of the widget chunk.
            "--target=es2020",
            "--log-level=warning",
            "--log-override:empty-import-meta=silent",
        ])
        // The wasm, embedded: the loader imports `refloop-sdk-wasm` as bytes.
        .arg("--loader:.wasm=binary")
        .arg(format!("--alias:refloop-sdk-wasm={}", wasm_out.display()))
        .arg(format!("--outfile={}", script_out.display())))?;

    let widgets_out = bundle_dir.join(&s.bundle.widgets_script);
    run(Command::new(tool("esbuild")?)
        .current_dir(&root)
        .arg(&s.bundle.widgets)
        .args([
            "--bundle",
            "--format=esm",
            "--minify",
            "--target=es2019",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", widgets_out.display())))?;

    let wasm_bytes = std::fs::read(&wasm_out).map_err(|e| format!("{}: {e}", wasm_out.display()))?;
    println!(
        "SDK wasm (inside sdk.js): {} bytes raw, {} bytes gzip alone",
        wasm_bytes.len(),
        gzip_len(&wasm_bytes)
    );
    let files = [script_out];
    let mut total = 0;
    println!("SDK tracking path (what a page downloads), gzip -9:");
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let gz = gzip_len(&bytes);
        total += gz;
        println!(
            "  {:<24} {:>7} bytes raw  {:>7} bytes gzip",
            f.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len(),
            gz
        );
    }
    let budget = s.budget.tracking_gzip_bytes;
    println!("  {:<24} {:>31} bytes gzip (budget {budget})", "total", total);
    let widgets_bytes = std::fs::read(&widgets_out).map_err(|e| format!("{}: {e}", widgets_out.display()))?;
    let widgets_gz = gzip_len(&widgets_bytes);
    let widgets_budget = s.budget.widgets_gzip_bytes;
    println!("Widget chunk (fetched on the first mount), gzip -9:");
    println!(
        "  {:<24} {:>7} bytes raw  {:>7} bytes gzip (budget {widgets_budget})",
        s.bundle.widgets_script,
        widgets_bytes.len(),
        widgets_gz
    );
    let report = format!(
        r#"{{"tracking_gzip_bytes":{total},"budget_gzip_bytes":{budget},"widgets_gzip_bytes":{widgets_gz},"widgets_budget_gzip_bytes":{widgets_budget}}}"#
    );
    let report_path = root.join("build/sdk/size.json");
    std::fs::write(&report_path, report).map_err(|e| format!("{}: {e}", report_path.display()))?;
    if total > budget {
        return Err(format!(
            "the SDK is {total} gzip bytes, over its budget of {budget} (wasm-pack.toml)"
        ));
    }
    if widgets_gz > widgets_budget {
        return Err(format!(
            "the widget chunk is {widgets_gz} gzip bytes, over its budget of {widgets_budget} (wasm-pack.toml)"
        ));
    }
    Ok(())
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory").len()
}

/// A tool the bootstrap installs: node_modules/.bin first, then PATH.
fn tool(name: &str) -> Result<PathBuf, String> {
    let local = root().join("node_modules/.bin").join(name);
    if local.exists() {
        return Ok(local);
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin").join(name));
    if let Some(p) = cargo_bin.filter(|p| p.exists()) {
        return Ok(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            if dir.join(name).exists() {
                return Ok(dir.join(name));
            }
        }
    }
    Err(format!(
        "`{name}` is not installed; run `make bootstrap` (scripts/bootstrap.sh)"
    ))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}
