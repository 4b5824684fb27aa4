"""MediaPipe's native INFO/W0000 chatter is dropped from stderr; everything else written there is kept."""

from __future__ import annotations

import os
import subprocess
import sys

from invertavatar.detect.native_logs import is_chatter, quiet_native_stderr

CHATTER = ["W0000 00:00:1796256150.379094    6057 face_landmarker_graph.cc:181] Sets FaceBlendshapesGraph ...",
           "I0000 00:00:1796256150.379094    6057 gl_context.cc:369] GL version: 3.2",
           "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
           "WARNING: Logging before InitGoogle() is written to STDERR"]
KEPT = ["E0000 00:00:1796256150.3 6057 graph.cc:12] a real error", "Traceback (most recent call last):",
        "error: No face was found in x.jpg."]


def test_chatter_is_recognised_and_errors_are_not():
    assert all(is_chatter(line) for line in CHATTER)
    assert not any(is_chatter(line) for line in KEPT)


def test_quiet_block_keeps_what_is_not_chatter(capfd):
    with quiet_native_stderr():
        os.write(2, ("\n".join(CHATTER + KEPT) + "\n").encode())
    err = capfd.readouterr().err
    assert all(line in err for line in KEPT)
    assert not any(line in err for line in CHATTER)


def test_a_detector_run_prints_no_mediapipe_lines():
    code = ("from skimage import data\nfrom invertavatar.detect import make_detector\n"
            "with make_detector() as d:\n    d.detect(data.astronaut())\n    d.detect(data.astronaut()[:400])\n"
            "d2 = make_detector()\nd2.detect(data.astronaut())\n")  # the last one is closed at exit
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert not [line for line in run.stderr.splitlines() if is_chatter(line)], run.stderr
    assert "W0000" not in run.stderr and "INFO:" not in run.stderr
