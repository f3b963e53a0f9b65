"""Watch a trained agent: the committed release weights (results/<scale>/weights/), a few episodes, their returns.

    python -m wmlib.play carracing --episodes 3                  # V+M+C on the first 3 evaluation tracks
    python -m wmlib.play doom --agent tau=0.5 --video doom.gif   # and a GIF of the first episode
    python -m wmlib.play mujoco --agent tdmpc/dmc/cartpole-swingup --first-seed 50000
    python -m wmlib.play pets --agent gym/HalfCheetah-v5                # PETS's ensemble and CEM planner

Each file's sha256 is checked against the manifest first. Seeds default to the evaluation stage's own (so the
returns can be held against results/<scale>/.../eval*.json); --first-seed or --seeds choose others.
`python -m wmlib.evaluate` runs the same on any seed range and writes the evaluation stages' JSON.
"""
import argparse
import importlib
import sys
from pathlib import Path

import torch

from .intervals import t_interval
from .params import resolve_scale
from .plotting import save_gif
from .release import EXPERIMENTS, check_experiment, load_agent_weights, load_manifest, weights_dir


def load_player(experiment: str, agent: str | None = None, scale: str | None = None, folder: Path | None = None):
    """-> (agent name, Player, manifest). `agent`: a name in the manifest, or the start of one (the first match;
    default: the manifest's first agent); `folder` (default results/<scale>/weights/<experiment>). Sets torch to one
    thread, as the evaluation stages' workers act."""
    check_experiment(experiment)
    torch.set_num_threads(1)
    folder = Path(folder) if folder is not None else weights_dir(resolve_scale(scale), experiment)
    manifest = load_manifest(folder, experiment)
    names = list(manifest["agents"])
    if agent is None:
        name = names[0]
    else:
        name = agent if agent in names else next((n for n in names if n.startswith(agent)), agent)
    tensors, metas = load_agent_weights(folder, manifest, name)
    module = importlib.import_module(f"wmlib.release.{experiment}")
    return name, module.make_players(tensors, metas, manifest["evaluation"])[name], manifest


def parser(description: str, episodes: int | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("experiment", help=f"one of {', '.join(EXPERIMENTS)}")
    ap.add_argument("--agent", help="carracing: full | z_only; doom: tau=<tau>; mujoco: <learner>/<task>/seed<k> "
                                    "or its start, e.g. sac/gym/HalfCheetah-v5; pets: <task>/seed<k> or its start, "
                                    "e.g. dmc/walker-walk (default: the first in the manifest)")
    ap.add_argument("--episodes", type=int, default=episodes,
                    help="episodes to run" + (f" (default {episodes})" if episodes else " (default: as the stage)"))
    ap.add_argument("--first-seed", type=int, help="seeds first-seed, first-seed + 1, ... (default: the "
                                                   "evaluation stage's seeds)")
    ap.add_argument("--seeds", type=int, nargs="+", help="these seeds, one episode each")
    ap.add_argument("--scale", help="whose weights (default: params.yaml's scale, or $WMLIB_SCALE)")
    ap.add_argument("--weights", type=Path, help="a weights folder instead of results/<scale>/weights/<experiment>")
    return ap


def seeds_for(args, manifest: dict) -> list[int]:
    if args.seeds:
        return args.seeds
    n = args.episodes or len(manifest["evaluation"]["seeds"])
    if args.first_seed is not None:
        return list(range(args.first_seed, args.first_seed + n))
    stage = manifest["evaluation"]["seeds"]
    return stage[:n] if n <= len(stage) else stage + list(range(stage[-1] + 1, stage[-1] + 1 + n - len(stage)))


def report(name: str, result) -> str:
    mean, (low, high) = result.mean, t_interval(result.returns)
    lines = [f"{name}: seed {s}: return {r:.1f} ({n} steps)" for s, r, n in zip(result.seeds, result.returns,
                                                                                 result.steps)]
    return "\n".join(lines + [f"{name}: mean {mean:.1f}, 95% interval [{low:.1f}, {high:.1f}] over "
                              f"{len(result.returns)} episodes (std {result.std:.1f})"])


def play_episodes(args):
    """The agent of the parsed `args` (see `parser`) on its seeds, each episode's return and the mean's interval
    printed -> (agent name, Player, manifest, EvalResult named after the agent)."""
    name, player, manifest = load_player(args.experiment, args.agent, args.scale, args.weights)
    result = player.evaluate(seeds_for(args, manifest))
    result.method = name
    print(report(name, result))
    return name, player, manifest, result


def command(main, prog: str):
    """Run `main()` as a command: a user's mistake (unknown experiment or agent, missing weights, hash mismatch)
    ends it with one line naming `prog`, not a traceback."""
    try:
        return main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"{prog}: {e}")


def main(argv=None):
    ap = parser("Play a trained agent from the committed release weights.", episodes=3)
    ap.add_argument("--video", type=Path, help="write the first episode as this .gif (or .mp4 with imageio-ffmpeg)")
    ap.add_argument("--video-steps", type=int, help="at most this many steps in the video (default: the episode)")
    args = ap.parse_args(argv)
    name, player, _, result = play_episodes(args)
    if args.video:
        write_video(player.record(result.seeds[0], args.video_steps), args.video)
        print(f"{name}: seed {result.seeds[0]} written to {args.video}")
    return result


def write_video(frames, path: Path, fps: int = 25):
    if path.suffix == ".gif":
        return save_gif(frames, path, fps=fps)
    import imageio.v3 as iio
    try:
        iio.imwrite(path, frames, fps=fps)
    except Exception as e:  # no backend for the format (mp4 needs imageio-ffmpeg)
        raise ValueError(f"{path}: cannot write {path.suffix} ({e}); use a .gif, or `pip install imageio-ffmpeg`") \
            from e
    return path


if __name__ == "__main__":
    command(main, "wmlib.play")
