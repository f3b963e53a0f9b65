"""Acting and learning to act.

    controller    C: the linear controller of World Models
    cmaes         CMA-ES (the `cma` package) with a checkpoint every generation
    agent         the World Models agent acting in a real environment (V encode, C, M step)
    planners      random shooting, CEM and MPPI over a latent model (TD-MPC)
    actor_critic  Dreamer's actor and critic trained on imagined trajectories
"""
