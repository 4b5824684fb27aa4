"""Run-time device and thread settings (invertavatar/device.py)."""

from __future__ import annotations

import numpy as np
import torch

from invertavatar.device import select_device, single_thread_blas


def test_cpu_is_chosen_without_cuda(monkeypatch):
    monkeypatch.setenv("INVERTAVATAR_DEVICE", "cuda")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device().type == expected  # asking for CUDA without it falls back to the CPU


def test_single_thread_blas_limits_numpy_and_restores_it():
    from threadpoolctl import threadpool_info

    np.linalg.solve(np.eye(3), np.ones(3))  # numpy's BLAS is loaded
    blas = lambda: [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]  # noqa: E731
    before = blas()
    with single_thread_blas():
        assert blas() and all(n == 1 for n in blas())
    assert blas() == before
