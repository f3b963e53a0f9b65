"""Figures and animations the notebooks show; each function returns a matplotlib Figure."""
import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np

from .io import atomic_path


def frame_grid(rows: dict[str, np.ndarray], title: str | None = None):
    """rows: label -> uint8 frames (N, H, W, 3), one row each, N columns."""
    n = max(len(f) for f in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.4 * len(rows)), squeeze=False)
    for r, (label, frames) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(frames):
                ax.imshow(frames[c])
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curve(history, x: str, ys: list[str], title: str, logy: bool = False):
    """Loss curves from a history table (pandas DataFrame or list of dicts)."""
    import pandas as pd
    df = pd.DataFrame(history)
    fig, axes = plt.subplots(1, len(ys), figsize=(4 * len(ys), 3), squeeze=False)
    for ax, y in zip(axes[0], ys):
        ax.plot(df[x], df[y])
        ax.set_xlabel(x), ax.set_ylabel(y)
        if logy:
            ax.set_yscale("log")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fitness_curve(history, evaluations, title: str, paper: float | None = None):
    """CMA-ES best / mean / worst fitness per generation, plus the periodic evaluation of the mean."""
    import pandas as pd
    h, e = pd.DataFrame(history), pd.DataFrame(evaluations)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.fill_between(h.generation, h.worst, h.best, alpha=0.2, label="worst..best candidate")
    ax.plot(h.generation, h["mean"], label="population mean")
    if len(e):
        ax.errorbar(e.generation, e["mean"], yerr=e["std"], fmt="o-", color="k", capsize=3,
                    label="mean solution, evaluation")
    if paper is not None:
        ax.axhline(paper, ls="--", color="gray", label=f"paper: {paper:g}")
    ax.set_xlabel("generation"), ax.set_ylabel("return"), ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fitness_beside_authors(runs: dict, authors, paper: float | None = None, title: str = ""):
    """CMA-ES against training episodes (log scale): the population mean (line) and the evaluations of the mean
    (markers) of our runs (label -> (history, evaluations, episodes per generation)) beside the authors' run
    (`authors`: wmlib.published.world_models_cmaes's pair)."""
    import pandas as pd
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, (label, (history, evaluations, per_generation)) in enumerate(runs.items()):
        h, e = pd.DataFrame(history), pd.DataFrame(evaluations)
        ax.plot(h.generation * per_generation, h["mean"], color=f"C{i}", label=f"{label}: population mean")
        if len(e):
            ax.plot(e.generation * per_generation, e["mean"], "o", color=f"C{i}", label=f"{label}: mean, evaluated")
    hist, evals = authors
    ax.plot(hist.episodes, hist["mean"], color="k", lw=0.8, label="authors' run: population mean")
    ax.plot(evals.episodes, evals["mean"], "s", color="k", ms=3, label="authors' run: mean, evaluated")
    if paper is not None:
        ax.axhline(paper, ls="--", color="gray", label=f"paper: {paper:g}")
    ax.set_xscale("log"), ax.set_xlabel("CMA-ES training episodes"), ax.set_ylabel("return"), ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def ablation_bars(table, tau: float, solved: float, paper: float):
    """One bar per variant of an ablation table (wmlib.experiments.doom.ablation.ablation_table): real-game frames
    survived with its 95% interval, the dream score as a dot, the task's solve mark and the paper's score."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = range(len(table))
    err = [table.real_mean - table.real_low, table.real_high - table.real_mean]
    ax.bar(x, table.real_mean, yerr=err, capsize=3, color="C1", alpha=0.8, label="real game (95% interval)")
    ax.plot(x, table.dream_mean, "o", color="C0", label="dream")
    ax.axhline(solved, color="k", lw=0.5, label=f"solved ({solved:g})")
    ax.axhline(paper, color="C1", ls="--", alpha=0.5, label=f"paper, tau={tau:g}")
    ax.set_xticks(list(x), table.variant, rotation=20)
    ax.set_ylabel(f"frames survived, tau={tau:g}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def score_histograms(results: dict, labels: dict[str, str], paper: dict[str, float | None]):
    """One histogram of per-episode returns per method, with its mean and the paper's."""
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3), sharey=True, squeeze=False)
    for ax, (key, r) in zip(axes[0], results.items()):
        ax.hist(r.returns, bins=20, color="C0", alpha=0.8)
        ax.axvline(r.mean, color="k", label=f"mean {r.mean:.0f} +- {r.std:.0f}")
        if paper.get(key) is not None:
            ax.axvline(paper[key], color="C3", ls="--", label=f"paper {paper[key]:.0f}")
        ax.set_title(labels[key]), ax.set_xlabel("return")
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("episodes")
    fig.tight_layout()
    return fig


def save_gif(frames: np.ndarray, path, fps: int = 25, upscale: int = 2):
    """uint8 frames (T, H, W, 3) -> looping GIF, each pixel repeated `upscale` times."""
    frames = np.asarray(frames).repeat(upscale, axis=1).repeat(upscale, axis=2)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=1000 / fps, loop=0)
    return path


def show_gif(path):
    """Display a GIF inline in a notebook (embedded, so the executed copy carries it)."""
    from IPython.display import Image
    with open(path, "rb") as f:
        return Image(data=f.read(), format="gif")


def savefig(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, bbox_inches="tight", format=str(path).rsplit(".", 1)[-1])
    return fig


def sample_efficiency(curves, table, published, labels: dict):
    """One panel per task: return against training frames for each learner (mean over seeds, band = the range over
    seeds), the random policy as a line, and the published references (wmlib.experiments.mujoco.comparison.
    published_curves: mean over their seeds, dashed, band = their range) up to the budget."""
    tasks = list(dict.fromkeys(table.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(labels)}
    for ax, task in zip(axes[0], tasks):
        for method, c in curves[curves.task == task].groupby("method", sort=False):
            m = c.groupby("frames")["mean"].agg(["mean", "min", "max"]).reset_index()
            ax.plot(m.frames, m["mean"], "o-", ms=3, color=colors[method], label=labels[method])
            ax.fill_between(m.frames, m["min"], m["max"], color=colors[method], alpha=0.15)
        rnd = table[(table.task == task) & (table.method == "random")]
        if len(rnd):
            ax.axhline(rnd["mean"].iloc[0], color="gray", ls=":", label=labels["random"])
        if len(published):
            groups = published[published.task == task].groupby(["method", "reference"], sort=False)
            for j, ((method, ref), g) in enumerate((k, g) for k, g in groups if len(g) > 1):  # a curve, not a point
                ls = ["--", "-.", ":"][j % 3]
                ax.plot(g.frames, g["mean"], ls, color=colors[method], lw=1, label=f"{ref}, published")
                ax.fill_between(g.frames, g["min"], g["max"], color=colors[method], alpha=0.07)
        ax.set_title(task), ax.set_xlabel("training frames"), ax.set_ylabel("episode return")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def aggregate(agg, taus, profiles, cis):
    """Left: IQM and mean of normalised returns with 95% stratified bootstrap intervals, one row per method (agg:
    wmlib.experiments.mujoco.comparison.aggregate). Right: performance profiles with their 95% bands."""
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(13, 0.5 * len(agg) + 2.2),
                                     gridspec_kw={"width_ratios": [1, 1, 1.4]})
    y = np.arange(len(agg))
    for ax, key, title in ((a1, "iqm", "IQM"), (a2, "mean", "mean")):
        ax.errorbar(agg[key], y, xerr=[agg[key] - agg[f"{key}_low"], agg[f"{key}_high"] - agg[key]], fmt="o",
                    capsize=3)
        ax.set_yticks(y, agg.method if ax is a1 else [""] * len(y)), ax.set_xlim(0, 1), ax.invert_yaxis()
        ax.set_title(title), ax.set_xlabel("return / 1000")
    for i, (name, profile) in enumerate(profiles.items()):
        a3.plot(taus, profile, color=f"C{i}", label=name)
        a3.fill_between(taus, cis[name][0], cis[name][1], color=f"C{i}", alpha=0.15)
    a3.set_xlabel("normalised return tau"), a3.set_ylabel("fraction of runs > tau"), a3.legend(fontsize=6)
    fig.tight_layout()
    return fig


def planner_study(df):
    """Return and planning latency of each planner, with and without the policy prior."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    names = [f"{r.planner}{' + prior' if r.policy_prior else ''}" for r in df.itertuples()]
    colors = ["C1" if p else "C0" for p in df.policy_prior]
    a1.bar(names, df["mean"], yerr=df["std"], color=colors, capsize=3)
    a1.set_ylabel("episode return")
    a2.bar(names, df.latency_ms, color=colors)
    a2.set_ylabel("ms per action (median)")
    for ax in (a1, a2):
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"equal model evaluations: {df.evaluations.iloc[0]:,} sequences per action")
    fig.tight_layout()
    return fig


def open_loop_error(errors):
    """errors: rows of task, variant, step, model, persistence (wmlib.experiments.mujoco.diagnostics).
    One panel per task: the model's error per imagined step for each variant, persistence dashed."""
    tasks = list(dict.fromkeys(errors.task))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        df = errors[errors.task == task]
        for variant, g in df.groupby("variant", sort=False):
            ax.plot(g.step, g.model, "o-" if variant == "full" else ".-", ms=3, label=variant)
        full = df[df.variant == df.variant.iloc[0]]
        ax.plot(full.step, full.persistence, "k--", label="persistence")
        ax.set_yscale("log"), ax.set_title(task), ax.set_xlabel("imagined steps"), ax.set_ylabel("normalised error")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def imagined_vs_real(rows, horizons: list[int], pixels: bool, dims: int = 3):
    """rows: (task, predicted [H, ...], real [H, ...]) in the decoder's space. Vectors: the first `dims` state
    dimensions over the imagined steps, one row per task; frames: real and imagined frames at `horizons`."""
    if pixels:
        frames = {}
        for task, pred, real in rows:
            for label, x in (("real", real), ("imagined", pred)):
                x = (x[[h - 1 for h in horizons]].clamp(-0.5, 0.5) + 0.5).movedim(-3, -1)
                frames[f"{task}\n{label}"] = (255 * x.numpy()).astype(np.uint8)
        return frame_grid(frames, "imagined vs real at steps " + ", ".join(map(str, horizons)))
    fig, axes = plt.subplots(len(rows), dims, figsize=(3.3 * dims, 2.4 * len(rows)), squeeze=False)
    for r, (task, pred, real) in enumerate(rows):
        steps = np.arange(1, len(pred) + 1)
        for c in range(min(dims, pred.shape[-1])):
            ax = axes[r, c]
            ax.plot(steps, real[:, c], "k-", label="real")
            ax.plot(steps, pred[:, c], "C1--", label="imagined")
            ax.set_title(f"{task} [{c}]", fontsize=8), ax.set_xlabel("imagined steps")
        axes[r, 0].legend(fontsize=7), axes[r, 0].set_ylabel("decoder space")
    fig.tight_layout()
    return fig
