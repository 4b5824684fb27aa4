"""Reconstruction jobs: frames → bundle, with progress, cancellation and per-stage timing."""

from .job import JobResult, JobSpec, run_job

__all__ = ["JobResult", "JobSpec", "run_job"]
