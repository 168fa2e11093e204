//! `serve` and `setup-server`.
use crate::options::ServerArgs;

pub fn serve(_args: ServerArgs) -> Result<i32, String> {
    Err("serve: not written yet".into())
}

pub fn setup(_args: ServerArgs) -> Result<i32, String> {
    Err("setup-server: not written yet".into())
}
