from .carracing import CARRACING_ACTION_SIZE, BrownianPolicy, carracing_action, make_carracing
from .seeds import episode_seeds

__all__ = ["CARRACING_ACTION_SIZE", "BrownianPolicy", "carracing_action", "episode_seeds", "make_carracing"]
