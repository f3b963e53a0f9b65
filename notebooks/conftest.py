"""How the notebooks run under pytest (nbval). The notebooks that read each other's outputs form a chain; under
pytest-xdist (`make test` runs two workers) each chain runs in order on one worker, the longest chains first, and
the unit tests fill in around them."""
import re

from xdist.scheduler import LoadGroupScheduling

# By number, longest first; notebook 19 reads TD-MPC's model, which notebook 11 trains. Any other notebook is a
# chain of its own.
CHAINS = {"mujoco": [11, 12, 13, 14, 15, 16, 18, 19], "doom": [6, 7, 8, 9, 10, 17], "carracing": [1, 2, 3, 4, 5]}
NOTEBOOK = re.compile(r"notebooks/(\d\d)_\w+")


def notebook_chain(nodeid: str) -> str | None:
    """The chain of a notebook cell's node id (its notebook's name if in no chain); None for anything else."""
    match = NOTEBOOK.match(nodeid)
    if not match:
        return None
    number = int(match.group(1))
    return next((name for name, numbers in CHAINS.items() if number in numbers), match.group(0))


class ChainScheduling(LoadGroupScheduling):
    """xdist's `loadgroup` with each notebook chain as one unit of work. (xdist marks a group by rewriting the
    node id, which pytest 9 no longer lets it do, so the chain is read from the node id here.)"""

    def _split_scope(self, nodeid: str) -> str:
        return notebook_chain(nodeid) or super()._split_scope(nodeid)


def pytest_xdist_make_scheduler(config, log):
    return ChainScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


def pytest_collection_modifyitems(config, items):
    """The notebooks' cells first, the longest chain first (stable: the cells keep their order)."""
    rank = {name: i for i, name in enumerate(CHAINS)}

    def order(item):  # listed chains, then other notebooks, then the unit tests
        chain = notebook_chain(item.nodeid)
        return len(CHAINS) + 1 if chain is None else rank.get(chain, len(CHAINS))

    items.sort(key=order)
