"""Network tests run with one torch thread.

On a 2-core machine shared with other jobs, two OpenMP threads per process oversubscribe the cores and small
convolutions wait on each other (measured: a small 2D CloFormer forward took 0.1 s with one thread and 1-7 s with
two); the tests' inputs are small, so a second thread gains little where the machine is idle. The previous setting
is restored after the session.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
