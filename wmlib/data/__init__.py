"""Data on disk and in memory.

    rollouts  episodes of frames as compressed, checksummed files (World Models' random rollouts)
    replay    an in-memory replay buffer of whole episodes, sampled as sub-trajectories (TD-MPC, Dreamer)
"""
