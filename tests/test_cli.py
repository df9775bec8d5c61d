import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ghostlab(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "ghostlab", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_help_shows_examples():
    proc = ghostlab("--help")
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and "ghostlab run params/demo.yaml" in proc.stdout


def test_profiles_lists_each_file_with_its_first_comment():
    proc = ghostlab("profiles")
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == len(list((ROOT / "params").glob("*.yaml")))
    demo = next(line for line in lines if line.startswith("params/demo.yaml"))
    assert "embedded default" in demo


def test_missing_params_file_is_one_line(tmp_path):
    proc = ghostlab("run", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


def test_unknown_notebook_in_only(tmp_path):
    proc = ghostlab("run", "params/tiny.yaml", "--only", "nonsense", "--out", str(tmp_path / "run"))
    assert proc.returncode == 1
    assert "no such notebook" in proc.stderr and "Traceback" not in proc.stderr
