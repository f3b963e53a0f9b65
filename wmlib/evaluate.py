"""Evaluate a trained agent from the committed release weights on any seeds, writing the evaluation stages' JSON
(wmlib.evaluation.EvalResult: method, seeds, returns, steps, mean, std, n), so anyone can check a README number on
episodes we never ran.

    python -m wmlib.evaluate carracing --agent full --first-seed 1500000000 --episodes 100 --out cr.json

Default seeds and episodes: the evaluation stage's own; default output: scratch/evaluate/<scale>/<experiment>/.
"""
from pathlib import Path

from .paths import SCRATCH
from .play import command, parser, play_episodes


def main(argv=None):
    ap = parser("Evaluate a trained agent from the committed release weights; writes EvalResult JSON.", None)
    ap.add_argument("--out", type=Path, help="the JSON to write (default: scratch/evaluate/<scale>/<experiment>/"
                                             "<agent>.json)")
    args = ap.parse_args(argv)
    name, _, manifest, result = play_episodes(args)
    out = args.out or SCRATCH / "evaluate" / manifest["scale"] / args.experiment / f"{name.replace('/', '_')}.json"
    result.save(out)
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    command(main, "wmlib.evaluate")
