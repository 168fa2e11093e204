//! Finds httpd/APR headers (apxs, apr-1-config; env overrides), generates
//! bindings with bindgen, compiles the C shim and arranges the exported
//! `wsgi_rs_module` symbol and the libpython RPATH.
use std::env;
use std::path::PathBuf;
use std::process::Command;

/// `$VAR` if set, else the trimmed stdout of `cmd args`.
fn query(var: &str, cmd: &str, args: &[&str]) -> String {
    println!("cargo:rerun-if-env-changed={var}");
    if let Ok(v) = env::var(var) {
        return v;
    }
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cmd}` ({e}); install apache2-dev or set {var}"));
    assert!(
        out.status.success(),
        "`{cmd} {}` failed; set {var}",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".into());
    let apr_config = env::var("APR_CONFIG").unwrap_or_else(|_| "apr-1-config".into());
    println!("cargo:rerun-if-env-changed=APXS");
    println!("cargo:rerun-if-env-changed=APR_CONFIG");

    let httpd_include = query("HTTPD_INCLUDEDIR", &apxs, &["-q", "INCLUDEDIR"]);
    let apr_includes: Vec<String> = query("APR_INCLUDES", &apr_config, &["--includes"])
        .split_whitespace()
        .map(|s| s.trim_start_matches("-I").to_string())
        .collect();
    let apr_cppflags = query("APR_CPPFLAGS", &apr_config, &["--cppflags"]);
    let defines: Vec<(String, Option<String>)> = apr_cppflags
        .split_whitespace()
        .filter_map(|f| f.strip_prefix("-D"))
        .map(|d| match d.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (d.to_string(), None),
        })
        .collect();

    // 1. The C shim.
    let mut cc = cc::Build::new();
    cc.file("c_shim/mod_wsgi_rs.c")
        .include("c_shim")
        .include(&httpd_include)
        .flag_if_supported("-fvisibility=hidden")
        .warnings(true);
    for inc in &apr_includes {
        cc.include(inc);
    }
    for (k, v) in &defines {
        cc.define(k, v.as_deref());
    }
    cc.compile("wsgi_rs_shim");
    println!("cargo:rerun-if-changed=c_shim");

    // 2. Bindings: only what the Rust side uses.
    let mut bg = bindgen::Builder::default()
        .header("c_shim/shim.h")
        .clang_arg(format!("-I{httpd_include}"))
        .clang_arg(format!("-I{}", manifest.join("c_shim").display()));
    for inc in &apr_includes {
        bg = bg.clang_arg(format!("-I{inc}"));
    }
    for flag in apr_cppflags.split_whitespace() {
        bg = bg.clang_arg(flag);
    }
    let bindings = bg
        .allowlist_type("authn_status|authz_status|ap_filter_t|ap_filter_rec_t|request_rec|server_rec|conn_rec|cmd_parms|command_rec|apr_table_entry_t|apr_array_header_t|apr_finfo_t|ap_regmatch_t|ap_regex_t|apr_proc_t|unixd_config_rec|process_rec")
        .allowlist_function("wsgi_rs_.*")
        .allowlist_function("ap_(rwrite|add_version_component|pass_brigade|get_brigade|save_brigade|get_conn_socket|set_content_type|set_content_length|setup_client_block|get_server_name_for_url|get_remote_host|get_server_port|get_server_banner|psignature|getword_conf|check_cmd_context|pregcomp|regexec|pregsub|mpm_query|document_root|context_prefix|context_document_root|run_http_scheme|allow_options|find_path_info|get_server_description|get_server_built|run_generate_log_id|show_mpm|state_query|runtime_dir_relative|server_root_relative|close_listeners|update_vhost_from_headers)")
        .allowlist_var("ap_unixd_config|ap_server_conf")
        .allowlist_function("ap_exists_scoreboard_image|ap_get_scoreboard_(worker_from_indexes|process|global)")
        .allowlist_type("worker_score|process_score|global_score")
        .allowlist_function("apr_proc_other_child_(register|unregister)|apr_pool_userdata_(get|setn)|apr_socket_timeout_(get|set)")
        .allowlist_function("apr_(brigade_create|brigade_cleanup|brigade_flatten|brigade_length|bucket_file_create|bucket_file_enable_mmap|bucket_transient_create|bucket_heap_create|bucket_eos_create|bucket_flush_create|table_get|table_set|table_add|pstrdup|pstrmemdup|pool_cleanup_register|pool_cleanup_null|os_file_put|os_file_get|os_sock_get)")
        .allowlist_var("OK|DECLINED|REMOTE_HOST|AP_FILTER_ERROR|HTTP_(FORBIDDEN|INTERNAL_SERVER_ERROR|LENGTH_REQUIRED|NOT_FOUND)|APR_SUCCESS|REQUEST_CHUNKED_DECHUNK|APLOG_(CRIT|ERR|WARNING|INFO|DEBUG)|AP_MPMQ_MAX_(DAEMONS|THREADS)|GLOBAL_ONLY|OPT_EXECCGI|ENABLE_SENDFILE_ON|APR_FOPEN_(READ|SENDFILE_ENABLED)|AP_REG_EXTENDED|AP_MAX_REG_MATCH|AP_REQ_REJECT_PATH_INFO|AP_SERVER_(MAJORVERSION_NUMBER|MINORVERSION_NUMBER|PATCHLEVEL_NUMBER)|AP_SQ_(MAIN_STATE|CONFIG_GEN|MS_CREATE_PRE_CONFIG|MS_EXITING)|APR_OC_REASON_(DEATH|LOST|UNREGISTER|RESTART)|HTTP_(BAD_GATEWAY|SERVICE_UNAVAILABLE|GATEWAY_TIME_OUT)")
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .expect("bindgen failed on httpd/APR headers (is libclang-dev installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out.join("httpd_sys.rs"))
        .expect("cannot write bindings");

    // 3. Keep the C module symbol exported: rustc's cdylib version script
    //    would hide it and --gc-sections would drop it.
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        manifest.join("c_shim/exports.map").display()
    );
    println!("cargo:rustc-cdylib-link-arg=-Wl,--undefined=wsgi_rs_module");

    // 4. cfg(Py_3_12) etc., and an RPATH when libpython is outside ld.so's paths.
    pyo3_build_config::use_pyo3_cfgs();
    let py = pyo3_build_config::get();
    if let Some(dir) = py.lib_dir() {
        if !dir.starts_with("/usr/lib") && !dir.starts_with("/lib") {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{dir}");
        }
    }
    println!("cargo:rustc-env=WSGI_RS_PY_VERSION={}", py.version());
    // sys.executable of the embedded interpreter (else a PATH search guesses it).
    let exe = py
        .executable()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "python3".into());
    println!("cargo:rustc-env=WSGI_RS_PY_EXECUTABLE={exe}");
}
