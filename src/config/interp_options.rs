//! `<WSGIInterpreterOptions [process-group=name] [application-group=name]>`
//! sections (mod_wsgi 6) and what one interpreter ends up with.
//!
//! A section scopes WSGIPerInterpreterGIL, WSGIFreeThreading (process scope
//! only), WSGISwitchInterval, WSGIPythonPath and WSGIRestrictStdin/Stdout/
//! Signal to the interpreters its selectors match. The directives outside
//! any section are the lowest layer. For each scalar the matching layer with
//! the most selectors (0, 1 or 2) wins, and of two equally specific sections
//! the later one; WSGIPythonPath layers add up instead.

/// The directives a section may hold.
pub const SCOPED: [&str; 7] = [
    "WSGIPerInterpreterGIL",
    "WSGIFreeThreading",
    "WSGISwitchInterval",
    "WSGIPythonPath",
    "WSGIRestrictStdin",
    "WSGIRestrictStdout",
    "WSGIRestrictSignal",
];

/// What one interpreter is set up with, after <WSGIInterpreterOptions> scoping.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InterpOptions {
    /// Own GIL (PEP 684) for a sub-interpreter: already false for the main
    /// interpreter, on Python < 3.12 and where free threading is on.
    pub per_interpreter_gil: bool,
    /// None where it must not be set: not configured, free threading on,
    /// or scoped by application-group= to a sub-interpreter that shares
    /// the process's GIL (the value is process-wide then, as in mod_wsgi).
    pub switch_interval: Option<f64>,
    /// Extra sys.path entries from WSGIPythonPath layers in matching sections (not the global WSGIPythonPath, which stays in PythonSettings::path).
    /// Most specific layer first, so that one `add_python_path` call (which
    /// puts what it adds in front, in order) gives mod_wsgi's order.
    pub python_path: Vec<String>,
    pub restrict_stdin: bool,
    pub restrict_stdout: bool,
    pub restrict_signal: bool,
}

/// The values one layer sets (None or empty: not set there).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layer {
    pub per_interpreter_gil: Option<bool>,
    pub free_threading: Option<bool>,
    pub switch_interval: Option<f64>,
    pub python_path: Vec<String>,
    pub restrict_stdin: Option<bool>,
    pub restrict_stdout: Option<bool>,
    pub restrict_signal: Option<bool>,
}

/// One `<WSGIInterpreterOptions>` section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    /// None: any process; "" (`%{GLOBAL}`): Apache's children (embedded).
    pub process_group: Option<String>,
    /// None: any interpreter; "" (`%{GLOBAL}`): the main interpreter.
    pub application_group: Option<String>,
    pub layer: Layer,
}

impl Section {
    /// The selectors of a section's opening tag, without its `>`.
    pub fn parse(args: &[String]) -> Result<Section, String> {
        let mut s = Section::default();
        for arg in args {
            let (key, value) = arg.split_once('=').ok_or_else(|| {
                format!("<WSGIInterpreterOptions>: argument '{arg}' is not of the form key=value.")
            })?;
            let slot = if key.eq_ignore_ascii_case("process-group") {
                &mut s.process_group
            } else if key.eq_ignore_ascii_case("application-group") {
                &mut s.application_group
            } else {
                return Err(format!(
                    "<WSGIInterpreterOptions>: unknown selector '{key}', expected process-group or application-group."
                ));
            };
            if slot.is_some() {
                return Err(format!(
                    "<WSGIInterpreterOptions>: {} given more than once.",
                    key.to_ascii_lowercase()
                ));
            }
            *slot = Some(if value == "%{GLOBAL}" {
                String::new()
            } else {
                value.to_string()
            });
        }
        Ok(s)
    }

    /// How many selectors the section has (0, 1 or 2).
    fn specificity(&self) -> u8 {
        u8::from(self.process_group.is_some()) + u8::from(self.application_group.is_some())
    }

    fn matches(&self, process_group: &str, application_group: Option<&str>) -> bool {
        let pg = self
            .process_group
            .as_deref()
            .is_none_or(|g| g == process_group);
        let ag = match (self.application_group.as_deref(), application_group) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // Process scope only: sections naming an application group never apply.
            (Some(_), None) => false,
        };
        pg && ag
    }
}

/// The value of the most specific matching layer that sets one (the later
/// of two equally specific ones), with the section it came from; else the
/// top level's.
fn pick<'a, T: Copy>(
    top: Option<T>,
    matching: &[&'a Section],
    get: impl Fn(&Layer) -> Option<T>,
) -> Option<(T, Option<&'a Section>)> {
    let mut best: Option<(T, &Section)> = None;
    for s in matching {
        if let Some(v) = get(&s.layer) {
            if best.is_none_or(|(_, b)| s.specificity() >= b.specificity()) {
                best = Some((v, s));
            }
        }
    }
    match best {
        Some((v, s)) => Some((v, Some(s))),
        None => top.map(|v| (v, None)),
    }
}

/// Where an interpreter runs, and the facts of this build that limit what
/// it can have.
pub struct Target<'a> {
    pub process_group: &'a str,
    /// "" is the main interpreter.
    pub application_group: &'a str,
    /// Free threading is on in this process.
    pub free_threading: bool,
    /// The module was built for Python 3.12 or later (PEP 684).
    pub own_gil_possible: bool,
    /// A threads=0 daemon process (service scripts): signal handlers are the
    /// scripts' own, as in mod_wsgi.
    pub service_scripts: bool,
}

/// The options of one interpreter: `top` holds the directives outside any
/// section (its python_path is not used: the global WSGIPythonPath is
/// applied separately, before these layers).
pub fn resolve(top: &Layer, sections: &[Section], t: &Target<'_>) -> InterpOptions {
    let matching: Vec<&Section> = sections
        .iter()
        .filter(|s| s.matches(t.process_group, Some(t.application_group)))
        .collect();
    let flag = |top: Option<bool>, get: fn(&Layer) -> Option<bool>| {
        pick(top, &matching, get).map(|(v, _)| v)
    };
    let is_sub = !t.application_group.is_empty();
    let per_interpreter_gil = flag(top.per_interpreter_gil, |l| l.per_interpreter_gil)
        .unwrap_or(false)
        && is_sub
        && t.own_gil_possible
        && !t.free_threading;
    let switch_interval = pick(top.switch_interval, &matching, |l| l.switch_interval)
        .filter(|(_, from)| {
            // Shared GIL: the interval is process-wide; a section naming a
            // sub-interpreter must not change it for everyone.
            let shares_gil = is_sub && !per_interpreter_gil;
            let app_scoped = from.is_some_and(|s| s.application_group.is_some());
            let skipped = app_scoped && shares_gil;
            !(t.free_threading || skipped)
        })
        .map(|(v, _)| v);
    let mut layers: Vec<(usize, &Section)> = matching
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, s)| !s.layer.python_path.is_empty())
        .collect();
    // Most specific first; of equals, the later first.
    layers.sort_by(|(ia, a), (ib, b)| (b.specificity(), ib).cmp(&(a.specificity(), ia)));
    InterpOptions {
        per_interpreter_gil,
        switch_interval,
        python_path: layers
            .iter()
            .flat_map(|(_, s)| s.layer.python_path.iter().cloned())
            .collect(),
        restrict_stdin: flag(top.restrict_stdin, |l| l.restrict_stdin).unwrap_or(false),
        restrict_stdout: flag(top.restrict_stdout, |l| l.restrict_stdout).unwrap_or(false),
        restrict_signal: !t.service_scripts
            && flag(top.restrict_signal, |l| l.restrict_signal).unwrap_or(true),
    }
}

/// WSGIFreeThreading for a process: the top level, then the sections that
/// select on process-group= alone (or nothing); sections naming an
/// application group are not process scope and never count.
pub fn free_threading(top: &Layer, sections: &[Section], process_group: &str) -> bool {
    let matching: Vec<&Section> = sections
        .iter()
        .filter(|s| s.matches(process_group, None))
        .collect();
    pick(top.free_threading, &matching, |l| l.free_threading).is_some_and(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn section(sel: &str, layer: Layer) -> Section {
        Section {
            layer,
            ..Section::parse(&words(sel)).unwrap()
        }
    }

    fn target<'a>(pg: &'a str, ag: &'a str) -> Target<'a> {
        Target {
            process_group: pg,
            application_group: ag,
            free_threading: false,
            own_gil_possible: true,
            service_scripts: false,
        }
    }

    fn stdout(on: bool) -> Layer {
        Layer {
            restrict_stdout: Some(on),
            ..Layer::default()
        }
    }

    #[test]
    fn parses_selectors() {
        let s = Section::parse(&words("process-group=d1 Application-Group=%{GLOBAL}")).unwrap();
        assert_eq!(s.process_group.as_deref(), Some("d1"));
        assert_eq!(s.application_group.as_deref(), Some(""));
        assert_eq!(s.specificity(), 2);
        assert_eq!(Section::parse(&[]).unwrap().specificity(), 0);
        let err = Section::parse(&words("host=x")).unwrap_err();
        assert!(err.contains("unknown selector 'host'"), "{err}");
        let err = Section::parse(&words("process-group")).unwrap_err();
        assert!(err.contains("key=value"), "{err}");
        let err = Section::parse(&words("process-group=a process-group=b")).unwrap_err();
        assert!(err.contains("more than once"), "{err}");
    }

    #[test]
    fn defaults_without_sections() {
        let o = resolve(&Layer::default(), &[], &target("", ""));
        assert_eq!(
            o,
            InterpOptions {
                restrict_signal: true,
                ..InterpOptions::default()
            }
        );
    }

    #[test]
    fn top_level_is_the_lowest_layer() {
        let top = stdout(true);
        assert!(resolve(&top, &[], &target("", "")).restrict_stdout);
        let sections = [section("", stdout(false))];
        assert!(!resolve(&top, &sections, &target("", "")).restrict_stdout);
    }

    #[test]
    fn most_specific_match_wins_whatever_the_order() {
        let both = section("process-group=d application-group=a", stdout(true));
        let pg = section("process-group=d", stdout(false));
        let any = section("", stdout(false));
        for sections in [
            vec![both.clone(), pg.clone(), any.clone()],
            vec![any.clone(), pg.clone(), both.clone()],
        ] {
            assert!(resolve(&Layer::default(), &sections, &target("d", "a")).restrict_stdout);
            // Another interpreter of the same process: the process-group section.
            assert!(!resolve(&Layer::default(), &sections, &target("d", "b")).restrict_stdout);
        }
    }

    #[test]
    fn ties_go_to_the_later_section() {
        let sections = [
            section("application-group=a", stdout(true)),
            section("process-group=d", stdout(false)),
        ];
        assert!(!resolve(&Layer::default(), &sections, &target("d", "a")).restrict_stdout);
        let sections = [sections[1].clone(), sections[0].clone()];
        assert!(resolve(&Layer::default(), &sections, &target("d", "a")).restrict_stdout);
    }

    #[test]
    fn unset_values_of_specific_sections_do_not_hide_others() {
        let sections = [
            section(
                "process-group=d",
                Layer {
                    restrict_stdin: Some(true),
                    ..Layer::default()
                },
            ),
            section("process-group=d application-group=a", stdout(true)),
        ];
        let o = resolve(&Layer::default(), &sections, &target("d", "a"));
        assert!(o.restrict_stdin && o.restrict_stdout && o.restrict_signal);
    }

    #[test]
    fn selectors_must_match() {
        let sections = [
            section("process-group=other", stdout(true)),
            section("application-group=other", stdout(true)),
            section("process-group=%{GLOBAL}", stdout(true)),
        ];
        assert!(!resolve(&Layer::default(), &sections, &target("d", "a")).restrict_stdout);
        // %{GLOBAL} process group: Apache's own children.
        assert!(resolve(&Layer::default(), &sections, &target("", "a")).restrict_stdout);
    }

    #[test]
    fn python_path_layers_add_up_most_specific_first() {
        let path = |p: &str| Layer {
            python_path: vec![p.to_string()],
            ..Layer::default()
        };
        let sections = [
            section("process-group=d application-group=a", path("/both")),
            section("", path("/any")),
            section("process-group=d", path("/pg1")),
            section("application-group=a", path("/ag")),
            section("application-group=b", path("/other")),
        ];
        let o = resolve(&Layer::default(), &sections, &target("d", "a"));
        assert_eq!(o.python_path, ["/both", "/ag", "/pg1", "/any"]);
    }

    #[test]
    fn signal_restriction_is_on_by_default_but_not_for_service_scripts() {
        let t = Target {
            service_scripts: true,
            ..target("svc", "")
        };
        assert!(!resolve(&Layer::default(), &[], &t).restrict_signal);
        let top = Layer {
            restrict_signal: Some(false),
            ..Layer::default()
        };
        assert!(!resolve(&top, &[], &target("", "")).restrict_signal);
    }

    #[test]
    fn own_gil_only_for_sub_interpreters_that_can_have_it() {
        let top = Layer {
            per_interpreter_gil: Some(true),
            ..Layer::default()
        };
        assert!(resolve(&top, &[], &target("", "a")).per_interpreter_gil);
        assert!(!resolve(&top, &[], &target("", "")).per_interpreter_gil);
        let old = Target {
            own_gil_possible: false,
            ..target("", "a")
        };
        assert!(!resolve(&top, &[], &old).per_interpreter_gil);
        let ft = Target {
            free_threading: true,
            ..target("", "a")
        };
        assert!(!resolve(&top, &[], &ft).per_interpreter_gil);
    }

    #[test]
    fn switch_interval_scoping() {
        let interval = |s: f64, gil: Option<bool>| Layer {
            switch_interval: Some(s),
            per_interpreter_gil: gil,
            ..Layer::default()
        };
        let top = interval(0.01, None);
        let sections = [
            section("process-group=d", interval(0.02, None)),
            section("application-group=shared", interval(0.03, None)),
            section("application-group=own", interval(0.04, Some(true))),
            section("application-group=%{GLOBAL}", interval(0.05, None)),
        ];
        let at = |pg, ag| resolve(&top, &sections, &target(pg, ag)).switch_interval;
        assert_eq!(at("", "x"), Some(0.01));
        assert_eq!(at("d", "x"), Some(0.02));
        // Scoped to a sub-interpreter sharing the GIL: process-wide, so skipped.
        assert_eq!(at("d", "shared"), None);
        assert_eq!(at("d", "own"), Some(0.04));
        // The main interpreter may set the process's value.
        assert_eq!(at("d", ""), Some(0.05));
        let ft = Target {
            free_threading: true,
            ..target("d", "x")
        };
        assert_eq!(resolve(&top, &sections, &ft).switch_interval, None);
    }

    #[test]
    fn free_threading_is_process_scoped() {
        let ft = |on: bool| Layer {
            free_threading: Some(on),
            ..Layer::default()
        };
        let top = ft(true);
        let sections = [
            section("process-group=d", ft(false)),
            section("application-group=a", ft(false)),
            section("process-group=e application-group=a", ft(false)),
        ];
        assert!(free_threading(&top, &sections, ""));
        assert!(!free_threading(&top, &sections, "d"));
        assert!(free_threading(&top, &sections, "e"));
        assert!(!free_threading(&Layer::default(), &[], ""));
        let sections = [section("", ft(true)), section("process-group=d", ft(false))];
        assert!(free_threading(&Layer::default(), &sections, "x"));
        assert!(!free_threading(&Layer::default(), &sections, "d"));
    }
}
