"""The models, one module each.

    vae           V: the convolutional VAE of World Models
    mdnrnn        M: the MDN-RNN
    dream         M as an environment (the dream C is trained in)
    latent_model  TD-MPC2's decoder-free latent model; twohot: discrete regression in symlog space
    rssm          the RSSM of PlaNet and Dreamer; world_model: Dreamer's world model around it
"""
