"""File → Add model… (issue 32): a CompressAI checkpoint becomes a codec in every pane, encodes,
and its latents and bits heatmap show in the inspector; it is still there after a restart."""
from __future__ import annotations

import time

import pytest

from compressai_checkpoints import make_checkpoint  # compressai is imported when a test calls it
from studio_helpers import generated_image, make_window, wait_idle


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("LIC_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def _codec_names(win, pane: int) -> list[str]:
    from PySide6.QtCore import Qt

    combo = win.pane_controls[pane].codec_combo
    return [combo.itemData(i, Qt.ItemDataRole.UserRole) for i in range(combo.count())]


def _add_through_dialog(qtbot, win, files, name):
    dlg = win.show_add_model()
    dlg.choose_files([str(f) for f in files])
    qtbot.waitUntil(lambda: "guessed" in dlg.guess_label.text() or bool(dlg.error_label.text()),
                    timeout=30000)
    if name:
        dlg.name_edit.setText(name)
    return dlg


@pytest.mark.slow
def test_add_model_through_the_dialog_encode_and_inspect(qtbot, tmp_path, config):
    pytest.importorskip("compressai")  # makes the checkpoints
    cks = [tmp_path / "run1" / "checkpoint_best_loss.pth.tar", tmp_path / "q2.pth.tar"]
    cks[0].parent.mkdir()
    make_checkpoint("mbt2018-mean", cks[0], "train", seed=0)
    make_checkpoint("mbt2018-mean", cks[1], "update", seed=1)
    win = make_window(qtbot, codecs=("jpeg", "jpeg", "jpeg"))
    win.session.set_image(generated_image(), "gen.png")
    wait_idle(qtbot, win)
    dlg = _add_through_dialog(qtbot, win, cks, "")
    # the architecture was guessed from the weights, the name from the run's folder
    assert dlg.arch_combo.currentText() == "mbt2018-mean"
    assert dlg.name_edit.text() == "run1"
    dlg.name_edit.setText("my-model")
    assert dlg.add_button.isEnabled()
    with qtbot.waitSignal(dlg.model_added, timeout=60000):
        dlg.add_button.click()
    for pane in range(3):
        assert "my-model" in _codec_names(win, pane)
    assert win.session.panes[0].settings.codec == "my-model"
    wait_idle(qtbot, win)
    enc = win.session.panes[0].encoding
    assert enc is not None and enc.codec == "my-model"
    insp = enc.result.inspection if hasattr(enc, "result") else enc.inspection
    assert insp is not None and insp.y_hat.shape[0] == 24
    win.session.view.inspect_pane = 0
    win.latents.refresh()
    win.entropy.refresh()
    assert win.latents.mosaic_array is not None and win.latents.channel_array is not None
    assert win.entropy.array is not None and win.entropy.array.sum() > 0
    # after a restart the model is still in every chooser
    again = make_window(qtbot, codecs=("jpeg", "jpeg", "jpeg"))
    assert "my-model" in _codec_names(again, 1)


def test_a_bad_checkpoint_is_one_line_and_adds_nothing(qtbot, tmp_path, config):
    bad = tmp_path / "broken.pth.tar"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    win = make_window(qtbot)
    dlg = _add_through_dialog(qtbot, win, [bad], "broken")
    assert dlg.error_label.text() and len(dlg.error_label.text().splitlines()) == 1
    assert "broken.pth.tar" in dlg.error_label.text()
    assert not dlg.add_button.isEnabled()
    assert not (config / "models.json").exists()


def test_closing_the_dialog_while_its_worker_runs_is_quiet(qtbot, tmp_path, config, monkeypatch):
    """Cancel while the checkpoint is still being read: the worker's answer arrives after the
    dialog was deleted (WA_DeleteOnClose) and must not touch it (no 'Internal C++ object already
    deleted' RuntimeError in the event loop); the form is read on the GUI thread only."""
    from app.model import services
    from lic_core.errors import LicError

    def slow_guess(path):
        time.sleep(0.4)
        raise LicError(f"{path}: not a readable PyTorch checkpoint")

    monkeypatch.setattr(services, "guess_checkpoint", slow_guess)
    bad = tmp_path / "broken.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    win = make_window(qtbot)
    dlg = win.show_add_model()
    dlg.choose_files([str(bad)])
    dlg.cancel()  # closes and deletes the dialog while the guess is still running
    qtbot.waitUntil(lambda: win.controller.pool.active_count() == 0, timeout=10000)
    qtbot.wait(100)  # the worker's queued answer is delivered (to a deleted dialog)
    assert not (config / "models.json").exists()


def test_the_dialog_says_which_promise_the_chosen_architecture_has(qtbot, config):
    """bmshj2018-hyperprior, mbt2018-mean and mbt2018 code on the exact path by default (the
    same picture on every machine, issue 25): the dialog must not tell their users otherwise;
    the other architectures' files are float-path files and the dialog says so."""
    win = make_window(qtbot)
    dlg = win.show_add_model()
    dlg.arch_combo.setCurrentText("mbt2018-mean")
    assert "identical picture on every machine" in dlg.note.text()
    assert "not guaranteed" not in dlg.note.text()
    dlg.arch_combo.setCurrentText("cheng2020-anchor")
    assert "not guaranteed to decode on another machine" in dlg.note.text()
    dlg.arch_combo.setCurrentText("auto")
    assert "mbt2018" in dlg.note.text() and "not guaranteed" in dlg.note.text()
