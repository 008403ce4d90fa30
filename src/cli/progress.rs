//! A byte-progress bar on stderr while reading inputs, shown only when
//! stderr is a terminal.

use std::io::{IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracelens::read::Input;

/// Inputs smaller than this in total read too fast to need a bar.
const MIN_BYTES_FOR_BAR: u64 = 16 << 20;

/// A progress bar over the total size of `inputs`, or a hidden one.
pub fn bar_for(inputs: &[Input]) -> ProgressBar {
    let total: u64 = inputs.iter().filter_map(Input::size).sum();
    if !std::io::stderr().is_terminal() || total < MIN_BYTES_FOR_BAR {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} reading {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Wraps an opened input so that reading it advances `bar`.
pub fn wrap(bar: &ProgressBar, input: &Input, source: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    if bar.is_hidden() {
        return source;
    }
    bar.set_message(input.name());
    Box::new(bar.wrap_read(source))
}
