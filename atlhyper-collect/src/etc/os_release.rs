//! `/etc/os-release` (or `/usr/lib/os-release`) of the host: `PRETTY_NAME`.

/// The unquoted `PRETTY_NAME` value, falling back to `NAME`.
pub fn pretty_name(text: &str) -> Option<&str> {
    let mut name = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        match k.trim() {
            "PRETTY_NAME" if !v.is_empty() => return Some(v),
            "NAME" if !v.is_empty() => name = Some(v),
            _ => {}
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_name_or_name() {
        assert_eq!(
            pretty_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("NAME=Alpine\n"), Some("Alpine"));
        assert_eq!(pretty_name("PRETTY_NAME=''\nNAME='x'\n"), Some("x"));
        assert_eq!(pretty_name("garbage"), None);
    }
}
