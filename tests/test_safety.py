"""A checkpoint cannot run code: every entry point reads checkpoints as weights only, and no
path stored inside a checkpoint is followed. The payload below would create a marker file the
moment anything unpickled it with ``weights_only=False``."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest
import torch

from tests.clirun import FAST, call


class Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety")
    marker = root / "code-ran"
    evil = root / "evil.ckpt"
    torch.save({"state_dict": {}, "dlbasics": {"payload": Payload(str(marker))}}, evil)
    with pytest.raises(pickle.UnpicklingError):  # the file is refused by a safe load ...
        torch.load(evil, weights_only=True)
    assert not marker.exists()
    run = root / "run"  # ... and a real finished run
    code, _, err = call("dlbasics.train", "model=mlp", "data=digits", "trainer.max_epochs=1",
                        "logger=none", *FAST, f"hydra.run.dir={run}")
    assert code == 0, err
    # a safe-looking checkpoint whose saved callback state points at the evil file
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for state in last["callbacks"].values():
        for key in ("best_model_path", "last_model_path", "kth_best_model_path"):
            if key in state:
                state[key] = str(evil)
        if "best_k_models" in state:
            state["best_k_models"] = {str(evil): torch.tensor(0.0)}
    pointing = root / "pointing"
    shutil.copytree(run, pointing)
    for ckpt in (pointing / "checkpoints").glob("*.ckpt"):
        torch.save(last, ckpt)
    return {"root": root, "marker": marker, "evil": evil, "run": run, "pointing": pointing}


ENTRY_POINTS = {
    "train-resume-from-file": ("train", ["model=mlp", "data=digits", "ckpt_path=EVIL"]),
    "train-finetune": ("train", ["model=mlp", "data=digits", "finetune.ckpt_path=EVIL"]),
    "eval": ("eval", ["ckpt_path=EVIL"]),
    "generate": ("generate", ["ckpt_path=EVIL"]),
    "translate": ("translate", ["ckpt_path=EVIL", "text=one"]),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_checkpoint_that_would_run_code_is_refused(entry, files, tmp_path, monkeypatch):
    module, args = ENTRY_POINTS[entry]
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path))
    code, _, err = call(f"dlbasics.{module}", *[a.replace("EVIL", str(files["evil"]))
                                                  for a in args],
                        *(FAST if module == "train" else FAST[3:]))
    assert code == 2 and "was not loaded (loading it could run code)" in err, err[-2000:]
    assert not files["marker"].exists()


def test_resume_refuses_a_run_folder_whose_newest_checkpoint_would_run_code(files, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(files["run"], folder)
    shutil.copy(files["evil"], folder / "checkpoints" / "zz-newest.ckpt")
    code, _, err = call("dlbasics.train", f"resume={folder}", *FAST)
    assert code == 2 and "could run code" in err, err[-2000:]
    assert not files["marker"].exists()


@pytest.mark.parametrize("how", ["ckpt_path", "resume"])
def test_a_path_stored_in_a_checkpoint_is_never_followed(how, files, tmp_path, monkeypatch):
    """The checkpoint loads fine; after fitting, the best checkpoint tested is this run folder's
    own, never the path its saved ModelCheckpoint state names."""
    monkeypatch.setenv("DLBASICS_LOG_DIR", str(tmp_path))
    folder = tmp_path / "copy"
    shutil.copytree(files["pointing"], folder)
    args = ([f"resume={folder}"] if how == "resume" else
            ["model=mlp", "data=digits", "trainer.max_epochs=1", "logger=none",
             f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}"])
    code, out, err = call("dlbasics.train", *args, *FAST)
    assert code == 0, err[-2000:]
    assert "test metrics" in out
    assert not files["marker"].exists()
