//! The `systemk(8)` man page, rendered from the CLI definition so it can never disagree with
//! `--help`. Used only by the hidden `systemk manpage` command when the .deb is built; it
//! reads nothing from the environment or the host.

use std::io;

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use super::{Cli, DEFAULT_CACHE_DIR, DEFAULT_MANIFEST_DIR, DEFAULT_STATE_DIR, DEFAULT_UNIT_DIR};

/// Section 8: system administration commands and daemons.
const SECTION: &str = "8";

/// Renders the `systemk(8)` man page in roff: the options generated from the CLI (each with
/// its `SYSTEMK_<FLAG>` variable), followed by the files systemk uses and related pages.
pub fn manpage() -> io::Result<Vec<u8>> {
    let command = Cli::command();
    let mut page = Vec::new();
    Man::new(command)
        .title("SYSTEMK")
        .section(SECTION)
        .manual("System Manager's Manual")
        .render(&mut page)?;
    extra_sections().to_writer(&mut page)?;
    Ok(page)
}

/// The sections clap cannot know: files, environment, and where to read on.
fn extra_sections() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman(
        "Every option can also be set as the environment variable named after it; the \
         packaged service reads them from ",
    )]);
    roff.text([bold("/etc/default/systemk"), roman(".")]);
    definition(
        &mut roff,
        "RUST_LOG",
        "Log filter, e.g. info or systemk=debug (default: info).",
    );

    roff.control("SH", ["FILES"]);
    definition(
        &mut roff,
        "/etc/default/systemk",
        "Settings of the packaged service, one SYSTEMK_<FLAG>=value per line.",
    );
    definition(
        &mut roff,
        DEFAULT_MANIFEST_DIR,
        "Static pod manifests (*.yaml, *.yml, *.json), run without a cluster.",
    );
    definition(
        &mut roff,
        &format!("{DEFAULT_UNIT_DIR}/systemk.*.service"),
        "One unit per container, named systemk.<namespace>.<pod>.<container>.service. \
         Pods outlive systemk: stopping or restarting systemk never stops them.",
    );
    definition(
        &mut roff,
        DEFAULT_STATE_DIR,
        "Pod directories (emptyDir volumes) and restart records.",
    );
    definition(
        &mut roff,
        &format!("{DEFAULT_STATE_DIR}/pki"),
        "The node's certificates and keys (0700, files 0600; --cert-dir): \
         kubelet-client-current.pem (TLS bootstrap), kubelet-server-current.pem (serving \
         certificate from the cluster), kubelet.crt and kubelet.key (self-signed).",
    );
    definition(
        &mut roff,
        &format!("{DEFAULT_STATE_DIR}/kubeconfig"),
        "The node's kubeconfig written by TLS bootstrap (--bootstrap-kubeconfig) when \
         --kubeconfig is not given.",
    );
    definition(
        &mut roff,
        DEFAULT_CACHE_DIR,
        "Downloaded .deb images, by content hash.",
    );

    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("systemctl"),
        roman("(1), "),
        bold("journalctl"),
        roman("(1), "),
        bold("systemd.service"),
        roman("(5), "),
        bold("apt-get"),
        roman("(8), "),
        bold("kubectl"),
        roman("(1)"),
    ]);
    roff
}

/// One tagged paragraph: the term in bold, its description indented below.
fn definition(roff: &mut Roff, term: &str, description: &str) {
    roff.control("TP", []);
    roff.text([bold(term)]);
    roff.text([roman(description)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> String {
        String::from_utf8(manpage().unwrap()).unwrap()
    }

    #[test]
    fn title_is_systemk_in_section_8() {
        assert!(page().contains(".TH SYSTEMK 8 "), "{}", page());
    }

    #[test]
    fn options_name_their_environment_variable() {
        assert!(page().contains("SYSTEMK_POD_MANIFEST_PATH"));
    }

    #[test]
    fn hidden_manpage_command_is_not_documented() {
        assert!(!page().contains("manpage"));
    }

    #[test]
    fn files_section_lists_the_default_file() {
        let page = page();
        let files = page.find(".SH FILES").unwrap();
        assert!(page[files..].contains("/etc/default/systemk"));
    }
}
