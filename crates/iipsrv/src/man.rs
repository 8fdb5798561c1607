//! `iipsrv man`: the manual page (roff), generated from the same definitions as `--help`,
//! with an ENVIRONMENT section naming each variable as the original reads it and a section
//! on `iipsrv convert`. `docs/iipsrv.1` is this output, committed.

use clap::CommandFactory;
use iipsrv_server::settings::Config;
use std::io::Write;

/// The whole page.
pub(crate) fn page() -> std::io::Result<Vec<u8>> {
    let command = Config::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    out.extend_from_slice(b".SH ENVIRONMENT\n");
    for arg in command.get_arguments() {
        if let Some(entry) = environment_entry(arg) {
            out.extend_from_slice(entry.as_bytes());
        }
    }
    out.extend_from_slice(
        b".SH CONVERT\n.B iipsrv convert\nINPUT OUTPUT[.tif|.jp2|.j2k|.jph|.j2c] [OPTIONS]\n.PP\n",
    );
    let convert = crate::convert::Args::command();
    if let Some(about) = convert.get_about() {
        writeln!(out, "{about}.")?;
    }
    clap_mangen::Man::new(convert).render_options_section(&mut out)?;
    Ok(out)
}

/// The ENVIRONMENT entry of an option read from a variable: name, help, default.
fn environment_entry(arg: &clap::Arg) -> Option<String> {
    let env = arg.get_env()?;
    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().to_string())
        .collect();
    let default = if defaults.is_empty() {
        String::new()
    } else {
        format!(" [default: {}]", defaults.join(","))
    };
    let roff = |t: &str| t.replace('\\', "\\e").replace('-', "\\-");
    Some(format!(
        ".TP\n\\fB{}\\fR\n{}{}\n",
        roff(&env.to_string_lossy()),
        roff(&help),
        roff(&default)
    ))
}
