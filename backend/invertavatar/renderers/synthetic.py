"""Avatar bundles of a synthetic identity with a real inversion state, for tests, benchmarks and documentation
pictures where no real checkpoint exists: one synthetic frame of a random ICT identity streamed into a session of
whatever networks are given (random, or trained with ``invertavatar train``)."""

from __future__ import annotations

import numpy as np

from ..io.bundle import Bundle
from . import NEURAL_STATE_FILE


def synthetic_bundles(model, net, seed: int = 5, albedo: np.ndarray | None = None) -> tuple[Bundle, Bundle]:
    """(fit-only bundle, neural bundle) of one random identity; the neural one carries a one-frame session.

    ``albedo`` defaults to a two-colour atlas (face tiles skin-coloured, back of the head blue) so that the two
    renderers cannot look alike by accident.
    """
    from ..neural.inversion.session import InversionSession
    from ..neural.synthetic_data import SyntheticRenderer, random_identity
    from ..pipeline.avatar_mesh import mesh_arrays

    rng = np.random.default_rng(seed)
    person = random_identity(model, rng)
    session = InversionSession(net, grouping="stream")
    session.add_frames(SyntheticRenderer(model, net.prior_config).frame(person, rng, pose_range=0.0))
    mesh = mesh_arrays(model, person.identity)
    if albedo is None:
        albedo = np.zeros((256, 256, 3), np.uint8)
        albedo[:] = (190, 140, 120)
        albedo[:, 128:] = (120, 150, 190)
    head = {"id": model.name, "checksum": model.checksum}
    common = dict(mesh=mesh, albedo=albedo, coverage=np.full(albedo.shape[:2], 255, np.uint8))
    fit = Bundle(manifest={"mode": "fit", "head_model": head}, **common)
    neural = Bundle(manifest={"mode": "neural", "head_model": head},
                    state={NEURAL_STATE_FILE: session.state_bytes()}, **common)
    return fit, neural
