//! Where the server answers: the application's mount point, the --url-alias
//! directories and files, and the document root for everything else.
use crate::accounts::absolute;
use crate::options::ServerArgs;
use std::path::{Path, PathBuf};

/// --mount-point without its trailing '/' (the root stays "/").
pub(super) fn mount_url(args: &ServerArgs) -> Result<String, String> {
    if !args.mount_point.starts_with('/') {
        return Err(format!(
            "--mount-point {} must start with '/'.",
            args.mount_point
        ));
    }
    let url = args.mount_point.trim_end_matches('/');
    Ok(if url.is_empty() { "/" } else { url }.to_string())
}

/// --url-alias's (URL, path) pairs, each path existing.
pub(super) fn url_aliases(args: &ServerArgs) -> Result<Vec<(String, PathBuf)>, String> {
    let mut aliases = Vec::new();
    for pair in args.url_alias.chunks(2) {
        let (url, target) = (&pair[0], absolute(Path::new(&pair[1])));
        if !url.starts_with('/') {
            return Err(format!(
                "--url-alias {url} {}: the URL must start with '/'.",
                pair[1]
            ));
        }
        if !target.exists() {
            return Err(format!(
                "--url-alias {url} {}: {} does not exist.",
                pair[1],
                target.display()
            ));
        }
        aliases.push((url.clone(), target));
    }
    Ok(aliases)
}

/// --document-root, by default the server root's htdocs.
pub(super) fn document_root(args: &ServerArgs, server_root: &Path) -> PathBuf {
    absolute(
        &args
            .document_root
            .clone()
            .unwrap_or_else(|| server_root.join("htdocs")),
    )
}
