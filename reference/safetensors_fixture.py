"""Writes Tests/NebulaCoreTests/Fixtures/reference.safetensors with the official safetensors library.

The Swift tests read it back (they never run Python). It holds every dtype Nebula reads, edge values
(signed zero, subnormals, infinities, NaN, integer extremes), a scalar, an empty tensor, metadata with
escapes and non-ASCII text, and float values next to PyTorch's own F16/BF16 rounding of them, so the
Swift conversions are checked against PyTorch's round-to-nearest-even.

Run from the repository root:  python3 reference/safetensors_fixture.py
"""
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "Tests/NebulaCoreTests/Fixtures/reference.safetensors"


def rounding_sources(generator: torch.Generator) -> torch.Tensor:
    """Float32 values that exercise rounding: random magnitudes across (and past) the half range,
    exact halfway points between neighbouring F16 and BF16 values, and special values."""
    random = torch.randn(600, generator=generator) * torch.exp2(torch.randint(-30, 20, (600,), generator=generator).float())
    halves = torch.arange(0, 2048, dtype=torch.int32).to(torch.int16).view(torch.float16).float()  # small positive halves
    half_ties = (halves[:-1] + halves[1:]) / 2  # exactly between two halves (subnormals and first normals)
    bf = torch.tensor([1.0, 3.0, 1e-40, 3e38], dtype=torch.float32)
    bf_ties = torch.cat([(bf.view(torch.int32) + 0x8000).view(torch.float32), (bf.view(torch.int32) + 0x18000).view(torch.float32)])
    special = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan, 65504.0, 65520.0, 65519.99, 1e-8, -6e-8, 3.4028235e38])
    return torch.cat([random, half_ties[:400], bf_ties, special]).float()


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    source = rounding_sources(generator)
    tensors = {
        "f32": torch.tensor([[0.0, -0.0, 1.5], [-2.25, 3.4028235e38, 1e-45], [math.inf, -math.inf, math.nan]], dtype=torch.float32),
        "f16": source.to(torch.float16),
        "bf16": source.to(torch.bfloat16),
        "rounding_source": source,
        "i64": torch.tensor([[-(2**63), 2**63 - 1], [0, -1]], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), 2**31 - 1, 7], dtype=torch.int32),
        "scalar": torch.tensor(42.0, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "blocks.0.attn.qkv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8,
    }
    metadata = {"format": "pt", "note": "ünïcode ✓", "escapes": "a\"b\\c\nd\te"}
    save_file(tensors, str(OUT), metadata=metadata)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(source)} rounding cases)")


if __name__ == "__main__":
    main()
