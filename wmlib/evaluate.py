"""Evaluate a trained agent from the committed release weights on any seeds, writing the evaluation stages' JSON
(wmlib.evaluation.EvalResult: method, seeds, returns, steps, mean, std, n), so anyone can check a README number on
episodes we never ran.

    python -m wmlib.evaluate carracing --agent full --first-seed 1500000000 --episodes 100 --out cr.json

Default seeds and episodes: the evaluation stage's own; default output: scratch/evaluate/<scale>/<experiment>/.
"""
import sys
from pathlib import Path

from .paths import SCRATCH
from .play import load_player, parser, report, seeds_for


def main(argv=None):
    ap = parser("Evaluate a trained agent from the committed release weights; writes EvalResult JSON.", None)
    ap.add_argument("--out", type=Path, help="the JSON to write (default: scratch/evaluate/<scale>/<experiment>/"
                                             "<agent>.json)")
    args = ap.parse_args(argv)
    name, player, manifest = load_player(args.experiment, args.agent, args.scale, args.weights)
    result = player.evaluate(seeds_for(args, manifest))
    result.method = name
    out = args.out or SCRATCH / "evaluate" / manifest["scale"] / args.experiment / f"{name.replace('/', '_')}.json"
    result.save(out)
    print(report(name, result))
    print(f"written to {out}")
    return result


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as e:  # unknown experiment or agent, missing weights, hash mismatch
        sys.exit(f"wmlib.evaluate: {e}")
