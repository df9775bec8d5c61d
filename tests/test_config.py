import subprocess
import sys
from pathlib import Path

import pytest

from ghostlab.config import Params, dump_params, load_params, parse_override
from ghostlab.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "params").glob("*.yaml"))


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_shipped_profile_loads(profile):
    params = load_params(profile)
    assert isinstance(params, Params)
    assert params.profile == profile.stem


def test_defaults_and_relative_paths_resolve_against_the_file(tmp_path):
    path = write(tmp_path, "data:\n  root: imagenet\nmodel:\n  weights: ckpt/m.pth\n")
    params = load_params(path)
    assert params.data.root == str(tmp_path / "imagenet")
    assert params.model.weights == str(tmp_path / "ckpt" / "m.pth")
    assert params.export.opset == 17
    assert [v.name for v in params.calibrate.variants] == ["minmax", "percentile", "entropy", "auto"]


def test_special_weights_are_not_paths(tmp_path):
    path = write(tmp_path, "data: {root: x}\nmodel: {weights: pretrained}\n")
    assert load_params(path).model.weights == "pretrained"


def test_overrides_parse_to_the_schema_type(tmp_path):
    path = write(tmp_path, "data: {root: x}\n")
    params = load_params(path, ["benchmark.batch_sizes=[1, 2]", "export.opset=13", "model.name=123",
                                "evaluate.exclude_calibration=true", "calibrate.auto_target_agreement=1"])
    assert params.benchmark.batch_sizes == [1, 2]
    assert params.export.opset == 13
    assert params.model.name == "123"
    assert params.evaluate.exclude_calibration is True
    assert params.calibrate.auto_target_agreement == 1.0


def test_unknown_key_names_key_file_and_closest(tmp_path):
    path = write(tmp_path, "data: {root: x}\nmodel:\n  nam: ghostnet_100\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    msg = str(err.value)
    assert "model.nam" in msg and "did you mean model.name?" in msg and str(path) in msg
    assert "\n" not in msg


def test_unknown_section(tmp_path):
    path = write(tmp_path, "modle: {name: x}\n")
    with pytest.raises(ConfigError, match="unknown key modle — did you mean model"):
        load_params(path)


def test_wrong_type_names_key_type_and_value(tmp_path):
    path = write(tmp_path, "data: {root: x}\nexport: {opset: seventeen}\n")
    with pytest.raises(ConfigError, match=r"export.opset must be int, got 'seventeen' \(str\)"):
        load_params(path)


def test_bool_is_not_an_int(tmp_path):
    path = write(tmp_path, "data: {root: x}\nexport: {opset: true}\n")
    with pytest.raises(ConfigError, match="export.opset must be int"):
        load_params(path)


def test_literal_choices_are_listed(tmp_path):
    path = write(tmp_path, "data: {root: x, on_bad_image: ignore}\n")
    with pytest.raises(ConfigError, match="data.on_bad_image must be 'stop' \\| 'skip'"):
        load_params(path)


def test_variant_list_is_typed(tmp_path):
    path = write(tmp_path, "data: {root: x}\ncalibrate:\n  variants:\n    - {name: a, method: kl}\n")
    with pytest.raises(ConfigError, match=r"calibrate.variants\[0\].method"):
        load_params(path)
    path = write(tmp_path, "data: {root: x}\ncalibrate:\n  variants:\n    - {method: minmax}\n")
    with pytest.raises(ConfigError, match="needs key"):
        load_params(path)


def test_missing_file_and_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    path = write(tmp_path, "model:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_params(path)


def test_python_tags_are_refused(tmp_path):
    path = write(tmp_path, "model: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="tag not allowed"):
        load_params(path)


def test_bad_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("model.name")
    path = write(tmp_path, "data: {root: x}\n")
    with pytest.raises(ConfigError, match="did you mean model.name"):
        load_params(path, ["model.nam=x"])


def test_dumped_params_reload_identically(tmp_path):
    params = load_params(ROOT / "params" / "tiny.yaml", ["model.name=ghostnet_100"])
    out = tmp_path / "frozen.yaml"
    dump_params(params, out)
    again = load_params(out)
    assert again.to_dict() | {"source": ""} == params.to_dict() | {"source": ""}


def test_cli_prints_one_line_and_exits_2():
    proc = subprocess.run([sys.executable, "-m", "ghostlab", "run", str(ROOT / "params" / "demo.yaml"),
                           "-p", "model.nam=x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "model.nam" in lines[0] and "did you mean model.name?" in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "/tmp/x", "..", ".", "", "  ", ".hidden", "a\\b"])
def test_run_name_is_a_name_not_a_path(tmp_path, name):
    path = write(tmp_path, f"data: {{root: x}}\nrun: {{name: '{name}'}}\n")
    with pytest.raises(ConfigError, match="run.name .*--out PATH"):
        load_params(path)


def test_plain_run_names_pass(tmp_path):
    path = write(tmp_path, "data: {root: x}\n")
    for name in ("tiny", "ghostnet_100-224", "a..b", "run.2"):
        assert load_params(path, [f"run.name={name}"]).run.name == name


def test_cli_refuses_a_run_name_that_escapes_the_output_root(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ghostlab", "run", str(ROOT / "params" / "tiny.yaml"),
                           "-p", "run.output_root=" + str(tmp_path / "outputs"), "-p", "run.name=../../escaped"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and "run.name" in lines[0], proc.stderr
    assert list(tmp_path.rglob("*")) == [] and not (tmp_path.parent / "escaped").exists()  # nothing written
