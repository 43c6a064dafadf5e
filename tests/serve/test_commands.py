"""`triptych serve` as a command: bad arguments are one line and exit 2; a real process serves."""

import re
import subprocess
import sys
import time

import httpx

from triptych.serve.cli import bind


def test_bad_arguments_are_one_line_exit_2(run_cli, tmp_path, checkpoints):
    status, out, err = run_cli("serve")
    assert status == 2 and "give at least one of --text DIR" in err
    status, out, err = run_cli("serve", "--text", tmp_path / "nope")
    assert status == 2 and "no such checkpoint directory" in err and out == ""
    status, out, err = run_cli("serve", "--text", checkpoints["vision"])
    assert status == 2 and "a vision checkpoint, expected text" in err
    status, out, err = run_cli("serve", "--text", checkpoints["text"], "--queue-depth", "0")
    assert status == 2 and "--queue-depth 0: not allowed (allowed: >= 1)" in err
    taken = bind("127.0.0.1", 0)
    try:
        status, out, err = run_cli("serve", "--text", checkpoints["text"], "--port", taken.getsockname()[1])
        assert status == 2 and "cannot listen on 127.0.0.1" in err
    finally:
        taken.close()


def test_a_dtype_the_cpu_cannot_run_is_refused_before_serving(models, monkeypatch):
    """TRIPTYCH_INFERENCE_DTYPE=bfloat16 on a CPU without bf16 kernels: one line when the
    app is made (`triptych serve` prints it, exit 2), not a broken model thread
    answering every request with 500. (Through the command, a regression would
    serve forever instead of failing: hence the app.)"""
    import pytest

    from triptych import hardware
    from triptych.errors import UserError
    from triptych.serve.app import create_app

    monkeypatch.setattr(hardware, "bf16_kernels", lambda: False)
    monkeypatch.setenv("TRIPTYCH_INFERENCE_DTYPE", "bfloat16")
    with pytest.raises(UserError, match="TRIPTYCH_INFERENCE_DTYPE=bfloat16: this CPU"):
        create_app(models)


def test_the_command_serves_until_stopped(checkpoints):
    proc = subprocess.Popen([sys.executable, "-m", "triptych.cli", "serve", "--vision", str(checkpoints["vision"]),
                             "--port", "0", "--no-batching", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1)
        assert "serving vision" in line and "batching off" in line
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = httpx.get(url + "/healthz").json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health["domains"] == ["vision"]
        assert httpx.get(url + "/v1/models").json()["limits"]["max_batch"] == 1
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
        assert proc.wait(30) in (0, -15)
        assert "Traceback" not in proc.stderr.read()
