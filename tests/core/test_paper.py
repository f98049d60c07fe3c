"""The paper preset against a plain, straightforward reimplementation written here.

Square variant (content 384x384, style 256x256, so no resizing is involved): the first five
Adam steps must give the same losses and the same image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models import vgg16

from stylebridge.core.images import Layer
from stylebridge.core.settings import make_settings

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def reference_paper(content, style, state_dict, steps):
    """Gatys as the paper states it, written the obvious way."""
    net = vgg16(weights=None).features
    net.load_state_dict(state_dict)
    net.eval().requires_grad_(False)

    def features(x):
        out = {}
        for i, layer in enumerate(net):
            x = layer(x)
            if i in (0, 5, 10, 17, 24):
                out[i] = x.clone()  # the next in-place ReLU would overwrite it
            if i == 29:
                out[29] = x
                return out

    def gram(f):
        _, c, h, w = f.shape
        f = f.view(c, h * w)
        return f @ f.t() / (c * h * w)

    c_norm = (content - MEAN) / STD
    s_norm = (style - MEAN) / STD
    with torch.no_grad():
        content_target = features(c_norm)[29]
        style_targets = {i: gram(f) for i, f in features(s_norm).items() if i != 29}
    x = c_norm.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        f = features(x)
        c_loss = F.mse_loss(f[29], content_target)
        s_loss = sum(F.mse_loss(gram(f[i]), style_targets[i]) for i in style_targets)
        loss = 1.0 * c_loss + 1e6 * s_loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return (x.detach() * STD + MEAN).clamp(0, 1), losses


def test_paper_preset_matches_reference_for_five_steps(engine, weights):
    gen = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, 384, 384, generator=gen)
    style = torch.rand(1, 3, 256, 256, generator=gen) ** 2
    ref_image, ref_losses = reference_paper(content, style, weights.state_dict, steps=5)

    seen: list[float] = []
    settings = make_settings("paper", steps=5)
    result = engine.stylize(
        Layer(content[0].numpy(), None, False, 8),
        [Layer(style[0].numpy(), None, False, 8)],
        settings,
        on_progress=lambda p: seen.append(p.losses["total"]),
    )
    assert seen == [pytest_approx(v) for v in ref_losses]
    assert ref_losses[-1] < ref_losses[0]  # it does optimise
    torch.testing.assert_close(torch.from_numpy(result.layer.rgb), ref_image[0], atol=2e-5, rtol=0)


def pytest_approx(value: float):
    import pytest

    return pytest.approx(value, rel=1e-5)


def test_paper_preset_values_are_the_paper():
    s = make_settings("paper")
    assert (s.size, s.style_size, s.steps, s.lr) == (384, 256, 1000, 0.01)
    assert (s.content_weight, s.style_weight, s.strength) == (1.0, 1e6, 1.0)
    assert (s.space, s.optimizer, s.precision, s.scales) == ("normalized", "adam", "fp32", (1.0,))
