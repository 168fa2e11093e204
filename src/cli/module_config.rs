//! `module-config` and `install-module`.
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ModuleConfigArgs {
    /// The mod_wsgi_rs module (default: next to this program, else in the modules directory).
    #[arg(long, value_name = "FILE")]
    pub module_path: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct InstallArgs {
    /// Apache's modules directory (default: from apxs, else the distribution's).
    #[arg(long, value_name = "DIR")]
    pub modules_directory: Option<PathBuf>,
}

pub fn print(_args: ModuleConfigArgs) -> Result<i32, String> {
    Err("not written yet".into())
}

pub fn install(_args: InstallArgs) -> Result<i32, String> {
    Err("not written yet".into())
}
