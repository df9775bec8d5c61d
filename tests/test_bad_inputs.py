"""Every bad input a user can hand ghostlab: one line on stderr that says what is wrong and
what to do, a non-zero exit, no traceback, and no run folder left behind."""

import pickle

import pytest
import torch
from helpers import seed_dataset

from ghostlab import models
from ghostlab.cli import main


@pytest.fixture()
def case(tmp_path):
    """(write params text, run the CLI) for a valid tiny dataset in tmp_path/data."""
    data = seed_dataset(tmp_path / "data")

    def params(extra="", model="{name: ghostnet_050, weights: random, input_size: 32}"):
        path = tmp_path / "p.yaml"
        path.write_text(f"model: {model}\n"
                        f"data: {{root: {data}, resize: 36, crop: 32, cache_dir: {tmp_path / 'cache'}}}\n"
                        f"calibrate: {{num_images: 2}}\nrun: {{output_root: {tmp_path / 'out'}}}\n" + extra)
        return path

    return tmp_path, data, params


def run_cli(capsys, *args):
    code = main(["run", *map(str, args), "--only", "01,02"])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("ghostlab: error:")]
    return code, errors, "\n".join(err)


def expect(capsys, tmp, args, code, *words):
    got, errors, err = run_cli(capsys, *args)
    assert got == code, err
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in errors[0], errors[0]
    assert not (tmp / "out").exists() or not any((tmp / "out").iterdir()), "a bad input left a run folder"
    return errors[0]


def test_yaml_syntax_error_names_the_line(case, capsys):
    tmp, _, params = case
    path = tmp / "bad.yaml"
    path.write_text("model:\n  name: ghostnet_050\n  weights: [random\n")
    expect(capsys, tmp, [path], 2, "bad.yaml", "line", "YAML")


def test_unknown_key(case, capsys):
    tmp, _, params = case
    expect(capsys, tmp, [params("evaluate: {batch_sise: 4}\n")], 2, "evaluate.batch_sise", "did you mean evaluate.batch_size?")


def test_wrong_type(case, capsys):
    tmp, _, params = case
    expect(capsys, tmp, [params(), "-p", "evaluate.batch_size=many"], 2, "evaluate.batch_size", "int", "'many'")


def test_data_root_missing(case, capsys):
    tmp, _, params = case
    expect(capsys, tmp, [params(), "-p", f"data.root={tmp / 'nowhere'}"], 1, "nowhere", "not a folder")


def test_val_label_missing(case, capsys):
    tmp, data, params = case
    (data / "val_label.txt").unlink()
    expect(capsys, tmp, [params()], 1, "val_label.txt", "does not exist")


def test_val_label_malformed_line(case, capsys):
    tmp, data, params = case
    with open(data / "val_label.txt", "a") as f:
        f.write("ILSVRC2012_val_00000002.JPEG\n")
    expect(capsys, tmp, [params()], 1, "val_label.txt:5")


def test_label_out_of_range(case, capsys):
    tmp, data, params = case
    text = (data / "val_label.txt").read_text().replace("00000003.JPEG 0", "00000003.JPEG 7")
    (data / "val_label.txt").write_text(text)
    expect(capsys, tmp, [params()], 1, "val_label.txt:3", "7")


def test_listed_file_missing(case, capsys):
    tmp, data, params = case
    (data / "val" / "ILSVRC2012_val_00000004.JPEG").unlink()
    expect(capsys, tmp, [params()], 1, "ILSVRC2012_val_00000004.JPEG")


def test_corrupt_image(case, capsys):
    tmp, data, params = case
    (data / "val" / "ILSVRC2012_val_00000002.JPEG").write_bytes(b"\xff\xd8 not really a jpeg")
    expect(capsys, tmp, [params()], 1, "ILSVRC2012_val_00000002.JPEG", "on_bad_image")


def test_empty_dataset(case, capsys):
    tmp, data, params = case
    (data / "val_label.txt").write_text("")
    for f in (data / "val").iterdir():
        f.unlink()
    expect(capsys, tmp, [params()], 1, "no")


def test_checkpoint_missing(case, capsys):
    tmp, _, params = case
    expect(capsys, tmp, [params(), "-p", f"model.weights={tmp / 'none.pth'}"], 1, "none.pth", "does not exist")


def test_not_a_checkpoint(case, capsys):
    tmp, _, params = case
    (tmp / "notes.pth").write_text("these are my notes")
    expect(capsys, tmp, [params(), "-p", f"model.weights={tmp / 'notes.pth'}"], 1, "notes.pth", "not a PyTorch checkpoint")


def test_checkpoint_for_another_architecture(case, capsys):
    import timm

    tmp, _, params = case
    torch.save(timm.create_model("resnet18", num_classes=2).state_dict(), tmp / "resnet.pth")
    expect(capsys, tmp, [params(), "-p", f"model.weights={tmp / 'resnet.pth'}"], 1, "resnet.pth", "model.name")


def test_checkpoint_class_count_differs_from_labels(case, capsys):
    tmp, _, params = case
    torch.save(models.create_model("ghostnet_050", "random", num_classes=5).state_dict(), tmp / "five.pth")
    expect(capsys, tmp, [params(), "-p", f"model.weights={tmp / 'five.pth'}"], 1, "5 classes", "built for 2")


class Payload:
    def __reduce__(self):
        return (print, ("PAYLOAD RAN",))


def test_checkpoint_with_a_pickle_payload_is_refused(case, capsys):
    tmp, _, params = case
    with open(tmp / "evil.pth", "wb") as f:
        pickle.dump({"state_dict": Payload()}, f)
    got, errors, err = run_cli(capsys, params(), "-p", f"model.weights={tmp / 'evil.pth'}")
    assert got == 1 and "refused" in errors[0] and "PAYLOAD RAN" not in err


def test_pretrained_without_local_cache(case, capsys, monkeypatch):
    tmp, _, params = case
    monkeypatch.setattr(models, "cached_pretrained_file", lambda name: None)
    expect(capsys, tmp, [params(model="{name: ghostnet_100, weights: pretrained, input_size: 32}"),
                         "-p", "model.num_classes=1000"], 1,
           "no local copy", "model.weights=/path/to/checkpoint.pth")


def test_more_calibration_images_than_exist(case, capsys):
    tmp, _, params = case
    expect(capsys, tmp, [params(), "-p", "calibrate.num_images=50"], 2, "calibrate.num_images", "50", "4 images")


def test_output_folder_not_writable(case, capsys):
    tmp, _, params = case
    (tmp / "file").write_text("x")
    got, errors, err = run_cli(capsys, params(), "--out", tmp / "file" / "run")
    assert got == 1 and len(errors) == 1 and "cannot write the run folder" in errors[0], err


@pytest.mark.slow
def test_class_names_from_a_users_label_file_are_escaped_in_every_report(case, capsys):
    tmp, data, params = case
    evil = "<script>alert(1)</script>"
    (data / "label.txt").write_text(f"{evil}, tench\n<img src=x onerror=alert(2)>\n")
    code = main(["run", str(params()), "--only", "01,02,04"])
    assert code == 0, capsys.readouterr().err
    run_dir = tmp / "out" / "p"
    evaluate_page = (run_dir / "04_evaluate.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evaluate_page  # shown, as text
    for page in run_dir.glob("*.html"):
        text = page.read_text()
        assert evil not in text and "<img src=x" not in text, page.name
