"""Which of our departures from the authors' doomrnn.py matter: one M per variant of the switches in
`mdnrnn` (params.yaml `doom.ablation.variants`, typically one change at a time), each trained on the same latents
with the same budget, then C trained in its dream at `doom.ablation.tau` and scored in the real game. The budget
is a screening one (`doom.<scale>.ablation_budget`: shorter M training, a smaller CMA-ES in one phase), so that
all variants fit in a few hours; the main pipeline then trains with the winning switches at its full budget.

A variant lives in data/<scale>/doom/ablation/<variant>/ (and results/...), with links to the shared rollouts and
V, so the steps of the main pipeline run on it unchanged. Two DVC stages per variant, each resuming from
its checkpoints: `python -m wmlib.experiments.doom.ablation mdnrnn --variant NAME`, then `controller`; notebook
17 gathers them into the table (and runs any variant whose outputs are missing).
"""
import argparse
from dataclasses import replace

import pandas as pd

from ...evaluation import EvalResult
from ...intervals import mean_interval
from ...io import load_json, save_csv
from . import Run, setup
from .controller import evaluate_tau, train_controller
from .table import exploitation, real_moves
from .world_model import load_latents, train_mdnrnn

SHARED = ("rollouts", "vae.pt")  # made by the main pipeline, used by every variant


def variant_run(run: Run, variant: str) -> Run:
    """The run of one ablation variant: M's switches replaced by the variant's, M's and CMA-ES's budgets by the
    screening budget (CMA-ES in one phase), one tau (the ablation's), its own folders, with links to the main
    pipeline's rollouts and V."""
    ablation, budget = run.params.ablation, run.params.ablation_budget
    if variant not in ablation.variants:
        raise ValueError(f"doom.ablation.variants has no variant {variant!r} (it has {sorted(ablation.variants)})")
    mdnrnn = run.params.mdnrnn.model_copy(update={**ablation.variants[variant].model_dump(),
                                                  **budget.mdnrnn.model_dump()})
    controller = run.params.controller.model_copy(update={**budget.controller.model_dump(), "phases": 1})
    params = run.params.model_copy(update={"mdnrnn": mdnrnn, "controller": controller, "taus": [ablation.tau]})
    out = replace(run, params=params, data=run.data / "ablation" / variant, results=run.results / "ablation" / variant)
    out.data.mkdir(parents=True, exist_ok=True)
    out.results.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        link = out.data / name
        if not link.is_symlink():
            link.symlink_to(f"../../{name}")
    return out


def train_variant_mdnrnn(run: Run, variant: str, progress: bool = True):
    """Stage 1 of a variant: its M, on the rollouts encoded by the shared V (encoded once for every variant)."""
    vrun = variant_run(run, variant)
    return train_mdnrnn(vrun, load_latents(vrun), progress)


def train_variant_controller(run: Run, variant: str, moves_episodes: int = 10, dreams: int = 4) -> dict:
    """Stage 2 of a variant: C by CMA-ES in its dream at the ablation's tau (all in this stage: the screening
    budget's one phase), scored in the dream and in the real game; the real-move shares over `moves_episodes`
    episodes (at most `evaluation.episodes`); the exploitation gap over `dreams` dreams per real first frame."""
    vrun = variant_run(run, variant)
    tau = run.params.ablation.tau
    train_controller(vrun, tau)
    summary = evaluate_tau(vrun, tau)
    real_moves(vrun, min(moves_episodes, run.params.evaluation.episodes))
    exploitation(vrun, dreams)
    return summary


def run_variant(run: Run, variant: str):
    """Both stages of a variant, each skipped when its outputs exist (under `dvc repro` its two stages made
    them; elsewhere, as in CI's notebook run, this makes them)."""
    vrun = variant_run(run, variant)
    if not (vrun.data / "mdnrnn.pt").exists():
        train_variant_mdnrnn(run, variant, progress=False)
    if not (vrun.results / "exploitation.csv").exists():
        train_variant_controller(run, variant)


def ablation_table(run: Run) -> pd.DataFrame:
    """One row per variant: its switches; real-game frames survived at the ablation's tau (mean, std, 95%
    bootstrap interval of the mean, n); its dream score; the exploitation gap (dream - real from the same first
    frames); the real-move shares. Saved as results/<scale>/doom/ablation.csv."""
    rows, tau = [], run.params.ablation.tau
    for variant, switches in run.params.ablation.variants.items():
        results = run.results / "ablation" / variant
        tau_dir = results / "taus" / str(float(tau))
        real = EvalResult.load(tau_dir / "eval_real.json")
        low, high = mean_interval(real.returns)
        e = load_json(tau_dir / "evaluation.json")
        gap = pd.read_csv(results / "exploitation.csv").set_index("tau").loc[tau, "gap"]
        moves = pd.read_csv(results / "real_moves.csv", index_col=0).iloc[0]
        rows.append({"variant": variant, **switches.model_dump(), "real_mean": real.mean, "real_std": real.std,
                     "real_low": low, "real_high": high, "n": len(real.returns), "dream_mean": e["dream_mean"],
                     "exploitation_gap": gap, "left": moves["left"], "stay": moves["stay"], "right": moves["right"]})
    df = pd.DataFrame(rows)
    save_csv(df.round(3), run.results / "ablation.csv")
    return df


def choose_variant(table: pd.DataFrame, baseline: str = "ours") -> str:
    """The decision rule the README set down before the `default` ablation ran: the variant with the highest
    real-game mean (`ablation_table`'s real_mean) if its 95% interval lies wholly above the baseline's (real_low >
    the baseline's real_high); otherwise the baseline, since one screening seed whose interval overlaps is no
    evidence. doom.<scale>.mdnrnn then takes the chosen variant's switches."""
    if baseline not in set(table.variant):
        raise ValueError(f"the ablation table has no baseline variant {baseline!r} (it has {list(table.variant)})")
    best, base = table.loc[table.real_mean.idxmax()], table.set_index("variant").loc[baseline]
    return str(best.variant) if best.real_low > base.real_high else baseline


def main(argv=None):
    parser = argparse.ArgumentParser(description="One stage of the Doom ablation (a DVC stage each).")
    parser.add_argument("step", choices=["mdnrnn", "controller"])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--scale", default=None)
    args = parser.parse_args(argv)
    run = setup(args.scale)
    if args.step == "mdnrnn":
        train_variant_mdnrnn(run, args.variant)
    else:
        print(train_variant_controller(run, args.variant))


if __name__ == "__main__":
    main()
