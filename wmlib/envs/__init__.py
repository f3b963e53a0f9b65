"""The environments, one module each, with the papers' preprocessing.

    carracing     CarRacing-v3 as 64x64 frames; the Brownian data-collection policy
    takecover     VizDoom TakeCover as 64x64 frames; episodes that survive a VizDoom crash
    mujoco_tasks  DeepMind Control (through shimmy) and gymnasium MuJoCo tasks, as state vectors or 64x64 frames
    seeds         disjoint seed ranges for data collection, training and evaluation

Import from the module (`from wmlib.envs.carracing import make_carracing`): this file imports nothing, so a
pipeline stage depends only on the environment it uses.
"""
