//! The check's output: one line per check (`ok:`, `warning:`, `error:` or
//! `skipped:`) with details indented below, and the closing summary.
use std::io::Write;

/// Counts the errors and warnings printed so far, for the summary and the
/// exit status.
#[derive(Default)]
pub(super) struct Report {
    errors: usize,
    warnings: usize,
}

impl Report {
    pub(super) fn line(&mut self, status: &str, text: &str, details: &[String]) {
        match status {
            "error" => self.errors += 1,
            "warning" => self.warnings += 1,
            _ => {}
        }
        let mut out = format!("{status}: {text}\n");
        for d in details {
            for l in d.lines() {
                out.push_str("    ");
                out.push_str(l);
                out.push('\n');
            }
        }
        // Flushed line by line: the probe can take long, and its progress should show.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    pub(super) fn ok(&mut self, text: &str) {
        self.line("ok", text, &[]);
    }

    pub(super) fn error(&mut self, text: &str, details: &[String]) {
        self.line("error", text, details);
    }

    pub(super) fn warning(&mut self, text: &str, details: &[String]) {
        self.line("warning", text, details);
    }

    pub(super) fn skipped(&mut self, text: &str) {
        self.line("skipped", text, &[]);
    }

    /// Prints the summary line about `what` (the application checked) and
    /// returns the exit status: 0 without errors, 1 with.
    pub(super) fn finish(&self, what: &str) -> i32 {
        if self.errors == 0 {
            let warnings = if self.warnings > 0 {
                format!(" ({})", plural(self.warnings, "warning"))
            } else {
                String::new()
            };
            println!("No errors{warnings}: {what} is ready for Apache.");
            0
        } else {
            println!(
                "{}, {}: fix the errors before deploying {what}.",
                plural(self.errors, "error"),
                plural(self.warnings, "warning"),
            );
            1
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_words() {
        assert_eq!(plural(1, "error"), "1 error");
        assert_eq!(plural(0, "warning"), "0 warnings");
        assert_eq!(plural(2, "warning"), "2 warnings");
    }
}
