import pickle

import pytest
import torch

from ghostlab import models
from ghostlab.errors import ModelError

NAME = "ghostnet_050"


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return models.create_model(NAME, "random", num_classes=7)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model", "module_prefix"])
def test_checkpoint_forms_load(tmp_path, reference, wrap):
    state = reference.state_dict()
    if wrap == "module_prefix":
        obj = {f"module.{k}": v for k, v in state.items()}
    elif wrap:
        obj = {wrap: state, "epoch": 3}
    else:
        obj = state
    path = tmp_path / "m.pth"
    torch.save(obj, path)
    loaded = models.create_model(NAME, str(path))
    assert loaded.num_classes == 7  # taken from the checkpoint's classifier
    assert same_weights(loaded, reference)


def test_safetensors_loads(tmp_path, reference):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    assert same_weights(models.create_model(NAME, str(path)), reference)


def test_random_weights_are_eval_mode():
    m = models.create_model(NAME, "random", num_classes=3)
    assert not m.training and m.num_classes == 3


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        models.create_model(NAME, str(tmp_path / "none.pth"))


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        models.create_model(NAME, str(path))


class Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_pickle_payload_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Payload()}, f)
    with pytest.raises(ModelError, match="refused"):
        models.create_model(NAME, str(path))
    assert "payload ran" not in capsys.readouterr().out


def test_refused_pickle_shows_one_line_and_no_torch_warning(tmp_path, recwarn):
    # torch's "Detected pickle protocol 4 ..." UserWarning printed above our one-line error
    import warnings

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Payload()}, f, protocol=4)
    warnings.simplefilter("always")
    with pytest.raises(ModelError, match="refused"):
        models.read_checkpoint(path)
    assert [str(w.message) for w in recwarn.list] == []


def test_other_architecture_names_keys(tmp_path):
    import timm

    path = tmp_path / "resnet.pth"
    torch.save(timm.create_model("resnet18", num_classes=7).state_dict(), path)
    with pytest.raises(ModelError, match=r"does not fit ghostnet_050: missing .*unexpected"):
        models.create_model(NAME, str(path))


def test_class_count_mismatch(tmp_path, reference):
    path = tmp_path / "m.pth"
    torch.save(reference.state_dict(), path)
    with pytest.raises(ModelError, match="has 7 classes but the model is built for 10"):
        models.create_model(NAME, str(path), num_classes=10)


def test_pretrained_without_cache_is_one_line(monkeypatch):
    monkeypatch.setattr(models, "cached_pretrained_file", lambda name: None)
    with pytest.raises(ModelError, match="no local copy .* model.weights=/path/to/checkpoint.pth"):
        models.create_model("ghostnet_100", "pretrained")


def test_pretrained_from_local_cache(tmp_path, monkeypatch, reference):
    # timm's cache holds a 1000-class checkpoint; ghostlab must load it from disk, not the hub
    full = models.create_model("ghostnet_100", "random", num_classes=1000)
    path = tmp_path / "model.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    monkeypatch.setattr(models, "cached_pretrained_file", lambda name: path)
    assert same_weights(models.create_model("ghostnet_100", "pretrained"), full)


def test_unknown_names():
    with pytest.raises(ModelError, match="did you mean ghostnet_1"):
        models.create_model("ghostnet_10", "random")
    with pytest.raises(ModelError, match="not a GhostNet"):
        models.create_model("resnet18", "random")


def test_reference_model_facts():
    m = models.create_model("ghostnet_100", "random")
    facts = models.model_facts(m, "ghostnet_100", 224)
    assert round(facts["params"] / 1e6, 2) == 5.18
    assert facts["macs"] == pytest.approx(0.141e9, rel=0.01)
    assert facts["pretrained_cfg"]["interpolation"] == "bicubic"
    assert facts["paper"]["params"] == 5.2e6
