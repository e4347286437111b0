//! `tritter-gpu mix`: flags, parsed into [`crate::mix::MixConfig`].

use clap::Args;
use std::path::PathBuf;

/// `tritter-gpu mix --plan PLAN.toml --output DIR [--rescale]`.
#[derive(Args, Debug)]
pub struct MixArgs {
    /// The mix plan (TOML): total_tokens, tokenizer, seed, shard_tokens, format, [[component]]s.
    ///
    /// See data/mix/phase1.toml for the data plan's Phase 1 table.
    #[arg(long, value_name = "PLAN.toml")]
    pub plan: PathBuf,
    /// Output directory: train-NNNNN-of-NNNNN shards and mix_report.json.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// When a component cannot meet its target, spread the shortfall over the others by share.
    ///
    /// Without it the mix fails with a table of what is missing.
    #[arg(long)]
    pub rescale: bool,
}

pub fn run(args: MixArgs, quiet: bool) -> anyhow::Result<i32> {
    crate::mix::run_mix(&crate::mix::MixConfig {
        plan: args.plan,
        output: args.output,
        rescale: args.rescale,
        quiet,
    })
}
