//! Finding the CUDA libraries before touching them.
//!
//! `cudarc` loads `libcuda` and `libnvrtc` lazily with `dlopen` and *panics*
//! when they are missing. A machine without a GPU is an ordinary case for us
//! (`--backend auto` then falls back), so we probe first: `cudarc`'s own
//! `is_culib_present` tries exactly the names it will load later
//! (`libcuda.so`, `libcuda.so.1`, ...; `libnvrtc.so`, `libnvrtc.so.13`,
//! `libnvrtc.so.12`, ...).
//!
//! NVRTC ships with the CUDA toolkit or as a pip wheel, not with the driver,
//! and often sits outside the loader's path. When the plain names fail we look,
//! in this order, in `$TRITTER_NVRTC` (the library or its directory), in
//! `$CUDA_HOME`, `$CUDA_PATH` and `/usr/local/cuda`, and in the pip wheels'
//! layouts under every Python prefix we can see (`nvidia/cu13/lib` of
//! `nvidia-cuda-nvrtc` 13, `nvidia/cuda_nvrtc/lib` of `nvidia-cuda-nvrtc-cu12`),
//! and load the library by full path. The dynamic loader then answers cudarc's
//! later `dlopen("libnvrtc.so.13")` with the already-loaded object, because it
//! matches loaded libraries by their SONAME.
//!
//! NVRTC itself `dlopen`s `libnvrtc-builtins.so.MAJOR.MINOR` by name at the
//! first compilation; loaded by path from a directory the loader does not
//! search, that fails with "failed to open libnvrtc-builtins.so.13.0"
//! (reproduced with the 13.0.88 wheel). So we load the builtins from the same
//! directory first, by full path: NVRTC's later `dlopen` by name finds them
//! loaded, by SONAME again.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming the NVRTC library (or its directory) to use.
pub const NVRTC_ENV: &str = "TRITTER_NVRTC";

/// Checks for the CUDA driver library.
pub fn driver_present() -> Result<()> {
    // SAFETY: `is_culib_present` only calls `dlopen` on the candidate names
    // and drops the handles; loading libcuda runs its initialisers, which is
    // what any CUDA program does.
    if unsafe { cudarc::driver::sys::is_culib_present() } {
        Ok(())
    } else {
        bail!("no CUDA driver (libcuda.so.1 not found)")
    }
}

/// Where NVRTC was found, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvrtcLocation {
    /// The loaded library file, when the process map names it.
    pub library: Option<PathBuf>,
    /// How it was found: "loader path", "$CUDA_HOME", "pip wheel", ...
    pub found_by: String,
    /// The builtins libraries loaded from the same directory.
    pub builtins: Vec<PathBuf>,
}

impl std::fmt::Display for NvrtcLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.library {
            Some(p) => write!(f, "{} (found by {})", p.display(), self.found_by)?,
            None => write!(f, "found by {}", self.found_by)?,
        }
        if self.builtins.is_empty() {
            write!(f, "; no libnvrtc-builtins beside it")
        } else {
            Ok(())
        }
    }
}

/// Checks for NVRTC, loading it (and its builtins) from a toolkit or wheel
/// directory if it is not on the loader's path.
pub fn nvrtc_present() -> Result<()> {
    nvrtc_location().map(|_| ())
}

/// As [`nvrtc_present`], returning where NVRTC was found. Probed once per
/// process.
pub fn nvrtc_location() -> Result<NvrtcLocation> {
    static FOUND: OnceLock<std::result::Result<NvrtcLocation, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_nvrtc)
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find_nvrtc() -> std::result::Result<NvrtcLocation, String> {
    // An explicit choice first: it must win over whatever the loader finds.
    if let Some(v) = std::env::var_os(NVRTC_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        let dir_and_lib = if p.is_dir() {
            nvrtc_in(&p).map(|lib| (p.clone(), lib))
        } else {
            p.parent().map(|d| (d.to_path_buf(), p.clone()))
        };
        return match dir_and_lib {
            Some((dir, lib)) => load_from(&dir, &lib, format!("${NVRTC_ENV}")).ok_or_else(|| {
                format!("no NVRTC: ${NVRTC_ENV}={} could not be loaded", p.display())
            }),
            None => Err(format!(
                "no NVRTC: ${NVRTC_ENV}={} holds no libnvrtc.so.*",
                p.display()
            )),
        };
    }
    // SAFETY: `is_culib_present` only dlopens the candidate names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        // Found by name; make sure its builtins are loadable too (a loader
        // path can name libnvrtc's directory through a symlink elsewhere).
        let library = loaded_library("libnvrtc.so");
        let builtins = library
            .as_deref()
            .and_then(Path::parent)
            .map(preload_builtins)
            .unwrap_or_default();
        return Ok(NvrtcLocation {
            library,
            found_by: "loader path".into(),
            builtins,
        });
    }
    for (dir, how) in search_dirs() {
        if let Some(lib) = nvrtc_in(&dir) {
            if let Some(loc) = load_from(&dir, &lib, how) {
                return Ok(loc);
            }
        }
    }
    Err(format!(
        "no NVRTC (libnvrtc.so not found on the loader path, in $CUDA_HOME, $CUDA_PATH, \
         /usr/local/cuda or a pip wheel's nvidia/cu13/lib or nvidia/cuda_nvrtc/lib); \
         install the CUDA toolkit's NVRTC or `pip install nvidia-cuda-nvrtc`, or set \
         {NVRTC_ENV} to the library"
    ))
}

/// Loads the builtins of `dir`, then `lib`, and checks cudarc now finds
/// NVRTC by name.
fn load_from(dir: &Path, lib: &Path, found_by: String) -> Option<NvrtcLocation> {
    let builtins = preload_builtins(dir);
    // SAFETY: loading NVRTC runs its initialisers only. The handle is leaked
    // on purpose: the library must stay loaded for cudarc's later dlopen by
    // SONAME to find it.
    let l = unsafe { libloading::Library::new(lib) }.ok()?;
    std::mem::forget(l);
    // SAFETY: as in `driver_present`: dlopen of candidate names only.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return None;
    }
    Some(NvrtcLocation {
        library: Some(lib.to_path_buf()),
        found_by,
        builtins,
    })
}

/// Loads every `libnvrtc-builtins.so.*` of `dir` (not the `.alt` variants,
/// which NVRTC loads only with its alternative ABI) and returns their paths.
fn preload_builtins(dir: &Path) -> Vec<PathBuf> {
    let mut found = files_starting(dir, "libnvrtc-builtins.so.");
    found.retain(|p| {
        // SAFETY: as in `load_from`; leaked so NVRTC's dlopen by name finds it.
        match unsafe { libloading::Library::new(p) } {
            Ok(l) => {
                std::mem::forget(l);
                true
            }
            Err(_) => false,
        }
    });
    found
}

/// The `libnvrtc.so.N` of `dir`, the newest major first.
fn nvrtc_in(dir: &Path) -> Option<PathBuf> {
    let mut libs = files_starting(dir, "libnvrtc.so");
    // `libnvrtc.so.13` sorts after `libnvrtc.so.12`; prefer the newest.
    libs.sort();
    libs.pop()
}

/// Files of `dir` whose name starts with `prefix`, sorted, without NVRTC's
/// `.alt.` variants.
fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && !n.contains(".alt."))
        })
        .collect();
    v.sort();
    v
}

/// Toolkit directories, then pip wheel directories, each with how it was
/// found.
pub fn search_dirs() -> Vec<(PathBuf, String)> {
    let mut dirs = Vec::new();
    let mut roots: Vec<(PathBuf, String)> = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(|k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(|v| (PathBuf::from(v), format!("${k}")))
        })
        .collect();
    roots.push((PathBuf::from("/usr/local/cuda"), "/usr/local/cuda".into()));
    for (r, how) in roots {
        for sub in [
            "lib64",
            "lib",
            "targets/x86_64-linux/lib",
            "targets/sbsa-linux/lib",
        ] {
            dirs.push((r.join(sub), how.clone()));
        }
    }
    dirs.extend(wheel_dirs(&python_prefixes()));
    dirs
}

/// The NVRTC wheels' library directories under the `site-packages` of
/// `prefixes`.
fn wheel_dirs(prefixes: &[PathBuf]) -> Vec<(PathBuf, String)> {
    let mut dirs = Vec::new();
    for sp in site_packages(prefixes) {
        for layout in ["nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib"] {
            dirs.push((sp.join(layout), format!("pip wheel in {}", sp.display())));
        }
    }
    dirs
}

/// The Python prefixes we can see without running Python: the active
/// virtualenv or conda environment, every `python3` on `PATH`, the user's,
/// the system's and `/opt/*` environments (where GPU images keep theirs).
fn python_prefixes() -> Vec<PathBuf> {
    let mut prefixes: Vec<PathBuf> = ["VIRTUAL_ENV", "CONDA_PREFIX"]
        .iter()
        .filter_map(|k| std::env::var_os(k).map(PathBuf::from))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("python3").exists() {
                if let Some(p) = d.parent() {
                    prefixes.push(p.to_path_buf());
                }
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        prefixes.push(PathBuf::from(home).join(".local"));
    }
    prefixes.extend(["/usr/local", "/usr", "/opt/conda"].map(PathBuf::from));
    if let Ok(rd) = std::fs::read_dir("/opt") {
        let mut opt: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        opt.sort();
        for o in opt {
            prefixes.push(o.join(".venv"));
            prefixes.push(o.clone());
        }
    }
    prefixes
}

/// The `site-packages` / `dist-packages` directories of `prefixes`.
fn site_packages(prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in prefixes {
        out.push(p.join("lib/python3/dist-packages"));
        let lib = p.join("lib");
        for py in files_starting(&lib, "python3") {
            out.push(py.join("site-packages"));
            out.push(py.join("dist-packages"));
        }
    }
    out.retain(|d| d.is_dir());
    out.dedup();
    out
}

/// The path of a loaded library whose file name starts with `prefix`, read
/// from the process's memory map (Linux), e.g. `/usr/local/cuda/lib64/libnvrtc.so.13.0.88`.
pub fn loaded_library(prefix: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(PathBuf::from)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_layouts_are_searched_under_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let sp = dir.path().join("lib/python3.12/site-packages");
        std::fs::create_dir_all(sp.join("nvidia/cu13/lib")).unwrap();
        let dirs = wheel_dirs(&[dir.path().to_path_buf()]);
        assert!(
            dirs.iter()
                .any(|(d, how)| d == &sp.join("nvidia/cu13/lib") && how.starts_with("pip wheel")),
            "{dirs:?}"
        );
        assert!(dirs
            .iter()
            .any(|(d, _)| d == &sp.join("nvidia/cuda_nvrtc/lib")));
    }

    #[test]
    fn builtins_and_libraries_are_picked_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "libnvrtc.so.12",
            "libnvrtc.so.13",
            "libnvrtc.alt.so.13",
            "libnvrtc-builtins.so.13.0",
            "libnvrtc-builtins.alt.so.13.0",
        ] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        assert_eq!(
            nvrtc_in(dir.path()).unwrap(),
            dir.path().join("libnvrtc.so.13")
        );
        assert_eq!(
            files_starting(dir.path(), "libnvrtc-builtins.so."),
            vec![dir.path().join("libnvrtc-builtins.so.13.0")]
        );
    }
}
