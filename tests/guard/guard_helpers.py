"""A model's complete state, to prove that a refused load left it exactly as it was."""

from __future__ import annotations

from typing import Any


def model_state(model: Any) -> dict[str, Any]:
    """Everything a load could change: module classes by name, every parameter's value, dtype, device and
    `requires_grad`, buffers, training flags, and the attributes PEFT adds (`peft_config`)."""
    return {
        "modules": [(name, type(m).__name__, m.training) for name, m in model.named_modules()],
        "params": {
            name: (p.detach().clone(), p.dtype, str(p.device), p.requires_grad) for name, p in model.named_parameters()
        },
        "buffers": {name: b.detach().clone() for name, b in model.named_buffers()},
        "peft_config": hasattr(model, "peft_config"),
        "attributes": sorted(vars(model)),
    }


def assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    import torch

    assert after["modules"] == before["modules"]
    assert after["peft_config"] == before["peft_config"]
    assert after["attributes"] == before["attributes"]
    assert after["params"].keys() == before["params"].keys()
    for name, (value, dtype, device, grad) in before["params"].items():
        got = after["params"][name]
        assert (got[1], got[2], got[3]) == (dtype, device, grad), name
        assert torch.equal(got[0], value), name
    assert after["buffers"].keys() == before["buffers"].keys()
    for name, value in before["buffers"].items():
        assert torch.equal(after["buffers"][name], value), name
