//! WSGIScriptAlias / WSGIScriptAliasMatch: URL → script file mapping.
use crate::apache::sys;
use crate::config::GroupSpec;
use std::ffi::CString;

/// Options accepted after the two positional arguments.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct AliasOptions {
    pub process_group: Option<String>,
    pub application_group: Option<GroupSpec>,
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
}

/// A compiled PCRE pattern owned by the configuration pool.
#[derive(Clone, Copy)]
pub struct Regex(pub *mut sys::ap_regex_t);
// SAFETY: compiled once at configuration time and only read (ap_regexec is
// thread-safe on a compiled pattern) while the configuration pool lives.
unsafe impl Send for Regex {}
unsafe impl Sync for Regex {}

#[derive(Clone)]
pub enum Matcher {
    Prefix(String),
    Regex(Regex),
}

#[derive(Clone)]
pub struct ScriptAlias {
    pub matcher: Matcher,
    pub target: String,
    pub options: AliasOptions,
}

/// Number of URI bytes an alias prefix matches, mod_alias style: a run of '/'
/// in the alias matches a run of '/' in the URI, and the match must end on a
/// path-segment boundary. 0 means no match.
pub fn prefix_match(uri: &[u8], alias: &[u8]) -> usize {
    let (mut a, mut u) = (0, 0);
    while a < alias.len() {
        if alias[a] == b'/' {
            if uri.get(u) != Some(&b'/') {
                return 0;
            }
            while alias.get(a) == Some(&b'/') {
                a += 1;
            }
            while uri.get(u) == Some(&b'/') {
                u += 1;
            }
        } else {
            if uri.get(u) != Some(&alias[a]) {
                return 0;
            }
            a += 1;
            u += 1;
        }
    }
    if a > 0 && alias[a - 1] != b'/' && u < uri.len() && uri[u] != b'/' {
        return 0;
    }
    u
}

impl ScriptAlias {
    /// The script path (plus trailing path, which Apache's directory walk
    /// turns into PATH_INFO) for `uri`, if this alias matches it.
    ///
    /// # Safety
    /// `pool` must be a live pool (used by ap_pregsub for regex aliases).
    pub unsafe fn translate(&self, uri: &[u8], pool: *mut sys::apr_pool_t) -> Option<Vec<u8>> {
        match &self.matcher {
            Matcher::Prefix(location) => {
                let n = prefix_match(uri, location.as_bytes());
                if n == 0 {
                    return None;
                }
                let rest = if location == "/" { uri } else { &uri[n..] };
                Some([self.target.as_bytes(), rest].concat())
            }
            Matcher::Regex(re) => {
                let curi = CString::new(uri).ok()?;
                let mut m = [sys::ap_regmatch_t::default(); sys::AP_MAX_REG_MATCH as usize];
                // SAFETY: re is a compiled pattern; m has AP_MAX_REG_MATCH slots; the
                // substituted string is allocated in `pool` and copied out at once.
                unsafe {
                    if sys::ap_regexec(re.0, curi.as_ptr(), m.len(), m.as_mut_ptr(), 0) != 0 {
                        return None;
                    }
                    let end = m[0].rm_eo.max(0) as usize;
                    if end == 0 {
                        return None;
                    }
                    let target = CString::new(self.target.as_str()).ok()?;
                    let sub = sys::ap_pregsub(
                        pool,
                        target.as_ptr(),
                        curi.as_ptr(),
                        m.len(),
                        m.as_mut_ptr(),
                    );
                    let sub = crate::apache::cbytes(sub)?;
                    Some([sub, &uri[end..]].concat())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_match;

    #[test]
    fn matches_on_segment_boundaries() {
        assert_eq!(prefix_match(b"/app", b"/app"), 4);
        assert_eq!(prefix_match(b"/app/x/y", b"/app"), 4);
        assert_eq!(prefix_match(b"/appx", b"/app"), 0);
        assert_eq!(prefix_match(b"/other", b"/app"), 0);
        assert_eq!(prefix_match(b"/anything", b"/"), 1);
        assert_eq!(prefix_match(b"/dir/a.wsgi", b"/dir/"), 5);
    }

    #[test]
    fn slash_runs_match_each_other() {
        assert_eq!(prefix_match(b"//app//x", b"/app"), 5);
        assert_eq!(prefix_match(b"/a//b/c", b"/a/b"), 5); // rest is "/c"
    }
}
