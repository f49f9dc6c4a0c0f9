"""`jupyter lab` (installed by set-up from the lock) starts offline and opens notebooks/."""
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from causalmix.config import REPO_ROOT

JUPYTER = Path(sys.executable).parent / "jupyter"


def test_jupyter_lab_is_installed():
    r = subprocess.run([str(JUPYTER), "lab", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip()[:1].isdigit(), r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyter_lab_serves_the_notebooks(tmp_path):
    """A real JupyterLab server on localhost: the lab page loads and the contents API lists notebooks/."""
    port, token = _free_port(), secrets.token_hex(8)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    proc = subprocess.Popen([str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0", "--allow-root",
                             f"--ServerApp.root_dir={REPO_ROOT / 'notebooks'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        listing, deadline = None, time.monotonic() + 60
        while listing is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=5) as r:
                    listing = json.load(r)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert listing is not None, f"jupyter lab did not answer: {proc.stderr.read() if proc.poll() is not None else ''}"
        names = {c["name"] for c in listing["content"]}
        for nb in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
            assert nb.name in names, (nb.name, names)
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and "JupyterLab" in r.read().decode()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
