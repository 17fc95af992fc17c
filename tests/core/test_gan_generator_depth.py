"""A deeper GAN generator (issue 26): g_s with a trunk of identity-initialised residual
bottlenecks at the latent resolution (lic_core.transform.deepen). Invariants: it starts as the g_s
it deepens (bit for bit), its files name their depth and decode through the exact path (the same
picture in tiles), a shallow decoder warm-starts it, and nothing loads into the wrong depth."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lic_core.codecs import EncodeParams
from lic_core.codecs.learned import LearnedCodec
from lic_core.errors import LicError
from lic_core.models import build_model, load_model
from lic_core.models.lgem_exact import ExactSynthesis
from lic_core.paths import gan_weights_path
from lic_core.train.checkpoint import latest_checkpoint, load_checkpoint
from lic_core.train.finetune import (
    decoder_state,
    init_decoder_depth,
    load_init_decoder,
    match_decoder_depth,
    save_finetuned,
)
from lic_core.train.gan_decoder import card_markdown, train_gan_decoder
from lic_core.train.losses.perceptual import TinyPerceptual
from lic_core.transform.deepen import (
    base_key,
    deep_key,
    deepen_synthesis,
    extra_blocks,
    trunk_block,
)
from synthetic_photos import striped_photos
from test_gan_decoder import TINY, _image, _tiny_disc, weights_dir  # noqa: F401 - fixture

TILE_Y = (7, 9)


def _nudge_(module: torch.nn.Module, seed: int, scale: float = 0.05) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def test_a_deepened_g_s_starts_as_the_g_s_it_deepens():
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    y = torch.randn(1, model.config.M, 4, 5) * 4.0
    before = {k: v.clone() for k, v in model.g_s.state_dict().items()}
    with torch.no_grad():
        x0 = model.g_s(y)
    n0 = sum(p.numel() for p in model.g_s.parameters())
    deepen_synthesis(model.g_s, 2)
    with torch.no_grad():
        assert torch.equal(model.g_s(y), x0)  # the identity blocks add an exact zero
    state = model.g_s.state_dict()
    # every old tensor, one stage down; the trunk is all that is new
    assert all(torch.equal(state[deep_key(k)], v) for k, v in before.items())
    assert all(base_key(deep_key(k)) == k for k in before)
    new = [k for k in state if base_key(k) is None]
    assert len(state) == len(before) + len(new) and new
    assert sum(p.numel() for p in model.g_s.parameters()) > n0
    assert sorted({trunk_block(k) for k in new}) == [0, 1]
    assert all(trunk_block(deep_key(k)) is None for k in before)
    assert extra_blocks(model.g_s) == 2
    with pytest.raises(ValueError, match="deepened already"):
        deepen_synthesis(model.g_s, 1)
    # the blocks learn: a gradient reaches them through the zero convolution
    model.g_s.zero_grad()
    model.g_s(y).square().mean().backward()
    last = model.g_s.stages[0][-1].body[-1]
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0


def test_a_trained_deeper_generator_decodes_the_same_picture_in_tiles():
    torch.manual_seed(1)
    model = build_model(TINY).eval()
    deepen_synthesis(model.g_s, 1)
    _nudge_(model.g_s, 2)  # the new blocks away from the identity
    synth = ExactSynthesis.from_model(model)
    y = torch.randn(1, model.config.M, *TILE_Y, generator=torch.Generator().manual_seed(3)) * 8.0
    whole = synth.picture(y, 30000, tile=64)
    for tile in (1, 2, 3):
        assert torch.equal(synth.picture(y, 30000, tile=tile), whole), tile
    shallow = build_model(TINY).eval()
    shallow.load_state_dict({base_key(k): v for k, v in model.state_dict().items()
                             if base_key(k) is not None})  # g_s without its trunk
    assert not torch.equal(ExactSynthesis.from_model(shallow).picture(y, 30000, tile=64), whole)


def test_deeper_gan_files_name_their_depth_and_decode_checked(tmp_path, weights_dir):  # noqa: F811
    img = _image(striped_photos(tmp_path / "photos", size=80))
    model = load_model(TINY)
    deepen_synthesis(model.g_s, 1)
    _nudge_(model.g_s, 4)
    path = gan_weights_path(TINY, weights_dir)
    save_finetuned(model, path, {"kind": "test deeper GAN decoder", "preview": True},
                   card_markdown)
    codec = LearnedCodec(TINY)
    assert codec.decoders == ("mse", "gan")
    enc = codec.encode(img, EncodeParams(rate=0.5, decoder="gan"))
    dec = codec.decode(enc.data)
    assert dec.info["picture_checked"] and np.array_equal(dec.reconstruction, enc.reconstruction)
    mse = codec.decode(enc.data, decoder="mse").reconstruction
    assert not np.array_equal(mse, enc.reconstruction)

    # a warm start: a deep file needs a g_s of its depth (the trainer sizes g_s before it
    # collects the parameters it trains); a shallow file into a deep model keeps the trunk the
    # identity
    fresh = load_model(TINY)
    with pytest.raises(LicError, match="has 1 trunk blocks, this g_s 0"):
        load_init_decoder(fresh, path)
    assert init_decoder_depth(path) == 1
    match_decoder_depth(fresh, init_decoder_depth(path))
    load_init_decoder(fresh, path)
    stored = {k: v.half().float() for k, v in decoder_state(model).items()}  # fp16 on disk
    assert all(torch.equal(v, stored[k]) for k, v in decoder_state(fresh).items())
    shallow = load_model(TINY)
    _nudge_(shallow.g_s, 5)
    shallow_file = tmp_path / "shallow-gan.safetensors"
    save_finetuned(shallow, shallow_file, {"kind": "shallow"}, card_markdown)
    deep = load_model(TINY)
    deepen_synthesis(deep.g_s, 2)
    identity = copy.deepcopy(deep.g_s)
    load_init_decoder(deep, shallow_file)
    ref = load_model(TINY)
    load_init_decoder(ref, shallow_file)  # the shallow decoder as stored (fp16)
    y = torch.randn(1, deep.config.M, 3, 4) * 4.0
    with torch.no_grad():
        assert torch.equal(deep.g_s(y), ref.g_s(y))
        assert not torch.equal(deep.g_s(y), identity(y))
    # a file deeper than a g_s already deepened cannot go into it
    deep_file = tmp_path / "deep2-gan.safetensors"
    save_finetuned(deep, deep_file, {"kind": "two blocks"}, card_markdown)
    other = load_model(TINY)
    deepen_synthesis(other.g_s, 1)
    with pytest.raises(LicError, match="has 2 trunk blocks, this g_s 1"):
        load_init_decoder(other, deep_file)


def test_a_deeper_run_checkpoints_its_depth_and_refuses_another(tmp_path, weights_dir):  # noqa: F811
    data = striped_photos(tmp_path / "photos", size=80)
    run = tmp_path / "run"

    def train(steps, extra, init=None):
        m = load_model(TINY)
        return train_gan_decoder(m, data, steps, batch=1, crop=64, lr=1e-3, gan_start=1,
                                 run_dir=run, threads=1, log_every=1, log=lambda s: None,
                                 perceptual=TinyPerceptual(), disc=_tiny_disc(m), extra=extra,
                                 init_decoder=init), m

    s1, m1 = train(2, 1)
    ck = load_checkpoint(latest_checkpoint(run))
    assert ck["g_s_extra_blocks"] == 1 and ck["train"]["extra_blocks"] == 1
    assert set(ck["model"]) == set(decoder_state(m1))
    s2, m2 = train(3, None)  # a resumed run keeps its depth without being told
    assert s2["steps"] == 3 and extra_blocks(m2.g_s) == 1
    with pytest.raises(LicError, match="1 trunk blocks, this run asks for 0"):
        train(4, 0)
    # a new run from a deeper decoder file takes its depth (every trunk block trains), and one
    # asked for fewer blocks than the file holds is refused
    deep_file = tmp_path / "deep-gan.safetensors"
    save_finetuned(m2, deep_file, {"kind": "deep"}, card_markdown)
    run = tmp_path / "run2"
    trunk0 = {k: v.clone() for k, v in decoder_state(m2).items() if base_key(k[4:]) is None}
    s3, m3 = train(2, None, init=deep_file)
    assert extra_blocks(m3.g_s) == 1
    moved = decoder_state(m3)
    assert all(not torch.equal(moved[k], v.half().float()) for k, v in trunk0.items()
               if k.endswith("body.4.weight"))
    run = tmp_path / "run3"
    with pytest.raises(LicError, match="has 1 trunk blocks: --extra-blocks 0"):
        train(2, 0, init=deep_file)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_a_release_transplants_a_deeper_generator_onto_new_weights(tmp_path, weights_dir,  # noqa: F811
                                                                   depth):
    """The release train's warm start (new base + (old decoder − old base)) carries a deeper
    generator's appended blocks over as they are, and the result loads at its depth."""
    from campaign.warmstart import decoder_tensors, transplant
    from test_gan_decoder import _ship_tiny

    old_base = weights_dir / f"{TINY}.safetensors"
    model = load_model(TINY)
    deepen_synthesis(model.g_s, depth)
    _nudge_(model.g_s, 6)
    old_gan = gan_weights_path(TINY, weights_dir)
    save_finetuned(model, old_gan, {"kind": "deep"}, card_markdown)
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    _ship_tiny(new_dir, 1)
    out = transplant(old_base, old_gan, new_dir / f"{TINY}.safetensors", tmp_path / "t.safetensors")
    ob, od, nb, tt = (decoder_tensors(p) for p in (old_base, old_gan,
                                                   new_dir / f"{TINY}.safetensors", out))
    trunk = {k for k in od if base_key(k) is None}
    assert trunk and set(tt) == set(od)
    assert all(torch.equal(tt[k], od[k]) for k in trunk)
    assert all(torch.equal(tt[deep_key(k)], nb[k] + (od[deep_key(k)] - ob[k])) for k in nb)
    fresh = load_model(TINY, new_dir / f"{TINY}.safetensors")
    match_decoder_depth(fresh, init_decoder_depth(out))
    load_init_decoder(fresh, out)
    assert extra_blocks(fresh.g_s) == depth
    # the release's warm start probes it at its depth against the new base g_s
    from campaign.warmstart import choose, probe_crops

    photos = striped_photos(tmp_path / "photos", n=2, size=64)
    ws = choose("gan", TINY, weights_dir, new_dir, tmp_path / "init",
                lambda: probe_crops([str(photos)], 2, 64), log=lambda s: None)
    assert ws["from"] in ("base", "transplant") and ws["probe"]["metric"] == "lpips"
    assert set(ws["probe"]) == {"metric", "base", "transplant"}
