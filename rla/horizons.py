"""Training horizons: the action-chunk lengths ``k`` each model learns from, in one place.

A training pair ``(z_t, a[t:t+k], z_{t+k})`` draws ``k`` uniformly from an inclusive range, clipped
to the steps the episode has left (:class:`rla.data.PairDataset`).
"""

WORLD_MODEL_K_RANGE = (1, 15)  # the dynamics and the baselines: the paper's longest chunk is 15 steps
AUTOENCODER_K_RANGE = (1, 20)  # wider, so every chunk a world model predicts lies inside what the autoencoder saw
