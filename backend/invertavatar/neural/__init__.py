"""The seed paper's neural part: the Next3D++ prior (``prior``), checkpoints, and later inversion and training."""
