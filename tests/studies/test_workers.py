"""Jobs in processes of their own: the thread settings they start with."""

import os

from studies.workers import THREAD_VARIABLES, thread_env


def test_thread_env_sets_the_thread_variables_inside_and_restores_them_after(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with thread_env(3):
        assert all(os.environ[name] == "3" for name in THREAD_VARIABLES)
    assert os.environ["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in os.environ
