"""SOAP with an exact eigenbasis at every refresh: a variant for comparison.

The paper (Vyas et al., 2024, Algorithm 4) and pytorch_optimizer refresh the bases with one
power-iteration step and a QR decomposition (:func:`optedu.optim.soap.power_qr`), which
tracks the eigenvectors of slowly moving factors at the cost of a QR. This variant runs a
full ``eigh`` instead: the exact eigenbasis of the current factors, at the cost of an
eigendecomposition.
"""

from __future__ import annotations

from typing import Any

import torch

from ..soap import SOAP, eigenbases


def refresh_by_eigh(factors: list[Any], bases: list[Any], exp_avg_sq: torch.Tensor, *,
                    merge_dims: bool, max_dim: int,
                    data_format: str) -> tuple[list[Any], torch.Tensor]:
    """The refresh of :class:`SOAPEigh`: every factor's eigenvectors, largest eigenvalue
    first (:func:`optedu.optim.soap.eigenbases`); Adam's second moment is kept as it is (its
    coordinate :math:`i` stays with the :math:`i`-th largest direction, as after
    :func:`~optedu.optim.soap.power_qr`'s sort)."""
    return eigenbases(factors), exp_avg_sq


class SOAPEigh(SOAP):
    """:class:`optedu.optim.soap.SOAP` refreshing its bases by a full eigendecomposition
    (:func:`refresh_by_eigh`) instead of one power-iteration step and QR. A variant for
    comparison, not a reference's rule."""

    refresh = staticmethod(refresh_by_eigh)
