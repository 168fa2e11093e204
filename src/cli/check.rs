//! `mod_wsgi_rs check`: loads a WSGI script in the configured Python and
//! reports what would stop it working under Apache.
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The WSGI script to check.
    pub script: PathBuf,
}

pub fn run(args: CheckArgs) -> Result<i32, String> {
    Err(format!("check {}: not written yet", args.script.display()))
}
