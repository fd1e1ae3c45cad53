//! Kubernetes' `$(VAR)` expansion, as the kubelet's
//! `third_party/forked/golang/expansion/expand.go` does it: `$(VAR)` becomes the value of a
//! variable known at that point, an unknown one stays as written, `$$` becomes `$` (so
//! `$$(VAR)` gives the literal `$(VAR)`), and an unclosed `$(` stays as written.
//! Layer 4: pure.

/// Expands `input`; `lookup` gives the value of a variable, or `None` when it is unknown.
pub(crate) fn expand<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            // Every position touched here is an ASCII byte, so slices stay on char boundaries.
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match lookup(name) {
                            Some(value) => out.push_str(value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                // The next character is copied as ordinary text from the checkpoint.
                _ => {
                    out.push('$');
                    0
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> String {
        expand(input, |name| match name {
            "VAR_A" => Some("A"),
            "VAR_B" => Some("B"),
            "VAR_C" => Some("C"),
            "VAR_REF" => Some("$(VAR_A)"),
            "VAR_EMPTY" => Some(""),
            _ => None,
        })
    }

    #[test]
    fn defined_variables_are_replaced() {
        assert_eq!(run("$(VAR_A)"), "A");
        assert_eq!(run("___$(VAR_B)___"), "___B___");
        assert_eq!(run("$(VAR_A)-$(VAR_B)-$(VAR_C)"), "A-B-C");
        assert_eq!(run("$(VAR_A)$(VAR_B)"), "AB");
        assert_eq!(run("x$(VAR_EMPTY)y"), "xy");
    }

    #[test]
    fn values_are_not_expanded_again() {
        assert_eq!(run("$(VAR_REF)"), "$(VAR_A)");
    }

    #[test]
    fn undefined_variables_stay_as_written() {
        assert_eq!(run("$(VAR_DNE)"), "$(VAR_DNE)");
        assert_eq!(run("foo$(VAR_DNE)bar"), "foo$(VAR_DNE)bar");
        assert_eq!(run("$()"), "$()");
    }

    #[test]
    fn doubled_dollar_escapes() {
        assert_eq!(run("$$(VAR_A)"), "$(VAR_A)");
        assert_eq!(run("$$$(VAR_A)"), "$A");
        assert_eq!(run("$$$$(VAR_A)"), "$$(VAR_A)");
        assert_eq!(run("$$"), "$");
        assert_eq!(run("f$$oo"), "f$oo");
    }

    #[test]
    fn unclosed_and_lone_operators_stay() {
        assert_eq!(run("$(VAR_A"), "$(VAR_A");
        assert_eq!(run("$(VAR_A$(VAR_B)"), "$(VAR_A$(VAR_B)");
        assert_eq!(run("$"), "$");
        assert_eq!(run("foo$"), "foo$");
        assert_eq!(run("$VAR_A"), "$VAR_A");
        assert_eq!(run("$("), "$(");
    }

    #[test]
    fn nested_references_close_at_the_first_parenthesis() {
        assert_eq!(run("$(VAR_A$(VAR_B))"), "$(VAR_A$(VAR_B))");
        assert_eq!(run("$($(VAR_A))"), "$($(VAR_A))");
    }

    #[test]
    fn multibyte_text_is_kept() {
        assert_eq!(run("é$é$(VAR_A)ü"), "é$éAü");
        assert_eq!(run("$ü"), "$ü");
    }
}
