"""Sessions: one-shot equivalence, state round trip, grouping rules, bad input."""

from __future__ import annotations

import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.inversion.model import hidden_shapes, invert_one_shot
from invertavatar.neural.inversion.session import InversionSession, official_groups


def _render(session, frames):
    return session.render(frames.camera[0, :2], frames.condition[0, :2]).image


def test_zero_state_one_frame_session_equals_one_shot(tiny_net, frames):
    first = frames.select([0])
    session = InversionSession(tiny_net)
    session.add_frames(first)
    assert [tuple(h.shape) for h in session.hidden] == hidden_shapes(tiny_net)
    with torch.no_grad():
        ws, avatar = invert_one_shot(tiny_net, first)
    assert torch.equal(ws, session.ws)
    for a, b in zip(avatar.texture_levels + [avatar.static_planes], session.avatar().texture_levels
                    + [session.avatar().static_planes]):
        assert torch.allclose(a, b, atol=1e-6)
    # The fine stage did change the avatar (random heads are not a no-op).
    assert not torch.allclose(session.avatar().static_planes, session.avatar(use_fine=False).static_planes)


def test_state_round_trip_gives_identical_outputs(tiny_net, frames):
    session = InversionSession(tiny_net)
    session.add_frames(frames.select([0, 1, 2]))
    restored = InversionSession.from_bytes(tiny_net, session.state_bytes())
    assert restored.frames_seen == 3
    assert torch.equal(_render(session, frames), _render(restored, frames))
    session.add_frames(frames.select([3]))
    restored.add_frames(frames.select([3]))
    assert torch.equal(_render(session, frames), _render(restored, frames))


def test_stream_one_at_a_time_equals_list(tiny_net, frames):
    one = InversionSession(tiny_net)
    for i in range(4):
        one.add_frames(frames.select([i]))
    many = InversionSession(tiny_net)
    many.add_frames(frames.select([0, 1, 2, 3]))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(one.hidden, many.hidden))


def test_official_grouping():
    assert official_groups(1) == [[0, 0, 0, 0]]
    assert official_groups(2) == [[0, 1, 0, 1]]
    assert official_groups(4) == [[0, 1, 2, 3]]
    assert official_groups(8) == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert official_groups(6) == [[0, 2, 4, 0], [1, 3, 5, 1]]


def test_official_eight_frames_equal_two_interleaved_calls(tiny_net, frames):
    together = InversionSession(tiny_net, grouping="official")
    together.add_frames(frames)
    split = InversionSession(tiny_net, grouping="official")
    split.ws = tiny_net.coarse_ws(frames.image[:, 0]).detach()  # W+ comes from the first frame either way
    split.hidden = split.zero_state()
    split.add_frames(frames.select([0, 2, 4, 6]))
    split.add_frames(frames.select([1, 3, 5, 7]))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(together.hidden, split.hidden))
    # Grouped aggregation differs from streaming the same frames (documented, not an equality).
    stream = InversionSession(tiny_net)
    stream.add_frames(frames)
    assert not torch.allclose(stream.hidden[0], together.hidden[0])


def test_bad_inputs(tiny_net, frames):
    session = InversionSession(tiny_net)
    with pytest.raises(InvertAvatarError) as err:
        session.avatar()
    assert err.value.code == "empty_session"
    small = frames.select([0])
    small.image = small.image[..., :32, :32]
    with pytest.raises(InvertAvatarError):
        session.add_frames(small)
    with pytest.raises(InvertAvatarError) as err:
        InversionSession.from_bytes(tiny_net, b"not a state")
    assert err.value.code == "bad_state"
    with pytest.raises(InvertAvatarError):
        InversionSession(tiny_net, grouping="pairs")
