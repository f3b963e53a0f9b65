"""Acting and learning to act: controllers, CMA-ES, planners, actor-critic, one module each (the README's Layout
maps them)."""
