"""wmlib: World Models, Dreamer, TD-MPC and PETS replicated over one library; the README maps it."""
