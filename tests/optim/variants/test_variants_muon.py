"""optedu.optim.variants.muon.newton_schulz: Muon's iteration in other dtypes."""

import pytest
import torch

from optedu.optim.muon import NS_COEFFICIENTS, zeropower_via_newtonschulz
from optedu.optim.variants.muon import newton_schulz


@pytest.mark.parametrize("shape", [(12, 5), (5, 12), (8, 8)])
def test_in_bfloat16_it_is_the_rule_bit_for_bit(shape):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    for steps in (0, 2, 5):
        ours = newton_schulz(g, ns_steps=steps, dtype=torch.bfloat16)
        assert torch.equal(ours, zeropower_via_newtonschulz(g, ns_steps=steps))


@pytest.mark.parametrize("shape", [(12, 5), (5, 12)])
def test_in_float32_it_is_close_to_the_rule(shape):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    ours = newton_schulz(g)
    rule = zeropower_via_newtonschulz(g).float()
    assert ours.dtype == torch.float32
    assert (ours - rule).norm() < 0.03 * rule.norm()


def test_float64_cubic_reaches_the_polar_factor():
    g = torch.randn(9, 4, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    out = newton_schulz(g, (1.5, -0.5, 0.0), 60, dtype=torch.float64)
    assert (out - u @ vh).abs().max() < 1e-10


def test_without_normalisation_large_singular_values_blow_up():
    g = torch.eye(3, dtype=torch.float64) * 2.0          # σ = 2 > 1
    out = newton_schulz(g, NS_COEFFICIENTS, 5, dtype=torch.float64,
                        normalise=False)
    assert not torch.isfinite(out).all() or out.abs().max() > 1e10
    fine = newton_schulz(g, NS_COEFFICIENTS, 5, dtype=torch.float64)
    assert fine.abs().max() < 1.2
