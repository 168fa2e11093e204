//! The HTTPS listener: --https-port with its certificate and key, served
//! by Apache's mod_ssl.
use crate::accounts::absolute;
use crate::httpd_conf::Https;
use crate::locate::Apache;
use crate::options::ServerArgs;

/// The HTTPS listener, if --https-port asks for one.
pub(super) fn https(args: &ServerArgs, apache: &Apache) -> Result<Option<Https>, String> {
    let https = match (
        args.https_port,
        &args.ssl_certificate_file,
        &args.ssl_certificate_key_file,
    ) {
        (None, ..) => return Ok(None),
        (Some(port), Some(cert), Some(key)) => {
            for f in [cert, key] {
                if !f.is_file() {
                    return Err(format!("the TLS file {} does not exist.", f.display()));
                }
            }
            if apache.module("ssl").is_none() {
                return Err(format!(
                    "--https-port needs Apache's mod_ssl, which is not in {}.",
                    apache.modules_dir.display()
                ));
            }
            Https {
                port,
                certificate: absolute(cert),
                key: absolute(key),
            }
        }
        (Some(_), ..) => {
            return Err("--https-port needs both --ssl-certificate-file and \
                        --ssl-certificate-key-file."
                .into())
        }
    };
    if https.port == args.port {
        return Err("--https-port must differ from --port.".into());
    }
    Ok(Some(https))
}
