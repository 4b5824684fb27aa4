"""Plain-PyTorch building blocks of the prior (no custom CUDA kernels, so CPU and CUDA take the same path)."""
